using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;

namespace FastIngest.Load;

/// <summary>A FastIngest server started as a child process (<c>dotnet FastIngest.Server.dll</c>) on a fresh data directory.</summary>
internal sealed class ServerProcess : IDisposable
{
    private readonly Process _process;

    private ServerProcess(Process process, string url, string dataDir, bool ownsDataDir)
    {
        _process = process;
        Url = url;
        DataDir = dataDir;
        _ownsDataDir = ownsDataDir;
    }

    private readonly bool _ownsDataDir;

    public string Url { get; }

    public string DataDir { get; }

    public int Pid => _process.Id;

    /// <summary>Resident set size of the server, bytes (from /proc; 0 where unavailable).</summary>
    public long RssBytes()
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
            }
        }
        catch (IOException)
        {
        }
        return 0;
    }

    /// <summary>
    /// Starts the server on <paramref name="port"/> with <paramref name="settings"/>: on a fresh data directory (removed
    /// at <see cref="Dispose"/>), or on <paramref name="dataDir"/> (kept); pinned to <paramref name="cpus"/>
    /// (<c>taskset -c</c>) when given.
    /// </summary>
    public static async Task<ServerProcess> StartAsync(string serverDll, int port, IReadOnlyList<string> settings, string? dataDir = null, string? cpus = null)
    {
        if (!File.Exists(serverDll))
            throw new FileNotFoundException($"FastIngest server not built: {serverDll} (dotnet build -c Release src/FastIngest.Server)");
        var owns = dataDir is null;
        dataDir ??= Path.Combine(Path.GetTempPath(), "fastingest-load-" + Guid.NewGuid().ToString("N"));
        var url = $"http://127.0.0.1:{port}";
        var psi = new ProcessStartInfo(cpus is null ? "dotnet" : "taskset")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(serverDll)!,
        };
        if (cpus is not null)
        {
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(cpus);
            psi.ArgumentList.Add("dotnet");
        }
        psi.ArgumentList.Add(serverDll);
        psi.ArgumentList.Add("--urls");
        psi.ArgumentList.Add(url);
        psi.ArgumentList.Add($"--FastIngest:DataDir={dataDir}");
        psi.ArgumentList.Add("--Logging:LogLevel:Default=Warning");
        foreach (var s in settings)
            psi.ArgumentList.Add(s);
        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start the server");
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine("[server] " + e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine("[server] " + e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
                throw new InvalidOperationException($"server exited with code {process.ExitCode}");
            try
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync("127.0.0.1", port).ConfigureAwait(false);
                return new ServerProcess(process, url, dataDir, owns);
            }
            catch (SocketException)
            {
                await Task.Delay(100).ConfigureAwait(false);
            }
        }
        process.Kill(entireProcessTree: true);
        throw new TimeoutException("server did not start listening within 60 s");
    }

    /// <summary>SIGTERM and wait for a clean exit (up to 30 s; then SIGKILL).</summary>
    public void Stop()
    {
        if (_process.HasExited)
            return;
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]))
            kill?.WaitForExit();
        if (!_process.WaitForExit(30_000))
            _process.Kill(entireProcessTree: true);
    }

    /// <summary>Stops the server, then removes the data directory if this started it on a fresh one.</summary>
    public void Dispose()
    {
        try
        {
            Stop();
        }
        finally
        {
            _process.Dispose();
            if (_ownsDataDir)
            {
                try
                {
                    Directory.Delete(DataDir, recursive: true);
                }
                catch (IOException)
                {
                }
            }
        }
    }
}
