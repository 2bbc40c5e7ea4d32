using System.Diagnostics;
using System.Net;

namespace FastIngest.Tests.Support;

/// <summary>
/// The FastIngest executable (<c>dotnet FastIngest.Server.dll</c>, built next to the tests) as a child process on a
/// loopback port, for what only a real process shows: SIGKILL, SIGTERM, exit codes.
/// </summary>
internal sealed class ServerProcessHost : IDisposable
{
    private readonly Process _process;

    private ServerProcessHost(Process process, Uri url, System.Collections.Concurrent.ConcurrentQueue<string> output)
    {
        _process = process;
        Url = url;
        _output = output;
    }

    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _output;

    /// <summary>Lines the process wrote to stdout and stderr so far (console logging).</summary>
    public IReadOnlyList<string> Output => [.. _output];

    public Uri Url { get; }

    public Process Process => _process;

    /// <summary>
    /// Command-line settings for one tenant <c>t1</c> (app secret <c>app-secret</c>) forwarding to
    /// <paramref name="botUrl"/> under <c>forward-secret</c>, with its data in <paramref name="dataDir"/>, followed by
    /// <paramref name="more"/>.
    /// </summary>
    public static string[] OneTenant(string dataDir, string botUrl, params string[] more) =>
    [
        $"--FastIngest:DataDir={dataDir}",
        "--FastIngest:Tenants:0:Id=t1",
        "--FastIngest:Tenants:0:AppSecret=app-secret",
        "--FastIngest:Tenants:0:VerifyToken=v",
        $"--FastIngest:Tenants:0:Forward:Url={botUrl}",
        "--FastIngest:Tenants:0:Forward:Secret=forward-secret",
        .. more,
    ];

    public static async Task<ServerProcessHost> StartAsync(IEnumerable<string> settings, IDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        var port = ChildProcess.FreePort();
        var url = new Uri($"http://127.0.0.1:{port}");
        var dll = Path.Combine(AppContext.BaseDirectory, "FastIngest.Server.dll");
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        if (workingDirectory is not null)
            psi.WorkingDirectory = workingDirectory;
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add("--urls");
        psi.ArgumentList.Add(url.ToString().TrimEnd('/'));
        psi.ArgumentList.Add("--Logging:LogLevel:Default=Warning");
        foreach (var s in settings)
            psi.ArgumentList.Add(s);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            psi.Environment[key] = value;
        var process = Process.Start(psi)!;
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) output.Enqueue(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) output.Enqueue(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(1) };
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if (process.HasExited)
                throw new InvalidOperationException($"server exited with {process.ExitCode} during start-up");
            try
            {
                if ((await probe.GetAsync(new Uri(url, "/healthz"))).StatusCode == HttpStatusCode.OK)
                    return new ServerProcessHost(process, url, output);
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }
            if (DateTime.UtcNow > deadline)
            {
                process.Kill();
                throw new TimeoutException("server did not answer /healthz within 30 s");
            }
            await Task.Delay(100);
        }
    }

    /// <summary>
    /// Starts the server with <paramref name="settings"/> on a port of its own choosing and waits (up to 60 s) for it
    /// to exit, as a start-up that must fail does: its exit code and the non-empty lines it wrote to stderr.
    /// </summary>
    public static async Task<(int ExitCode, string[] Errors)> RunUntilExitAsync(IEnumerable<string> settings)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "FastIngest.Server.dll"));
        psi.ArgumentList.Add("--urls");
        psi.ArgumentList.Add("http://127.0.0.1:0");
        foreach (var s in settings)
            psi.ArgumentList.Add(s);
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        await stdout;
        return (process.ExitCode, (await stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    /// <summary>SIGTERM: the graceful shutdown. Returns at once; see <see cref="Process"/> for the exit.</summary>
    public void Terminate()
    {
        if (Kill(_process.Id, 15) != 0)
            throw new InvalidOperationException($"kill(SIGTERM) failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    /// <summary>SIGKILL: no shutdown code runs.</summary>
    public void Kill()
    {
        _process.Kill();
        _process.WaitForExit();
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }
        _process.Dispose();
    }
}
