using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace FastIngest.Tests.Support;

/// <summary>
/// A real program the tests start (a broker, a worker): its stdout and stderr lines are kept (the last 400, for the
/// failure message), <see cref="WaitForLineAsync"/> waits for one that says it is ready, and dispose kills its
/// process tree.
/// </summary>
internal sealed class ChildProcess : IDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _tail = new();
    private readonly ConcurrentQueue<string> _stdout = new();
    private readonly SemaphoreSlim _line = new(0);
    private readonly string _what;

    private ChildProcess(Process process, string what)
    {
        _process = process;
        _what = what;
    }

    /// <summary>Called with every stdout line as it arrives (before <see cref="WaitForLineAsync"/> sees it).</summary>
    public Action<string>? OnStdout { get; set; }

    /// <summary>stdout lines so far.</summary>
    public IReadOnlyList<string> Stdout => [.. _stdout];

    public bool HasExited => _process.HasExited;

    /// <summary>Starts <paramref name="file"/>; fails with the install hint when it is not on this machine.</summary>
    public static ChildProcess Start(string file, IEnumerable<string> args, string? workingDirectory = null, IDictionary<string, string>? env = null, Action<string>? onStdout = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        foreach (var kv in env ?? new Dictionary<string, string>())
            psi.Environment[kv.Key] = kv.Value;
        Process process;
        try
        {
            process = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException($"cannot start {file} ({ex.Message}): run scripts/install-test-deps.sh", ex);
        }
        var child = new ChildProcess(process, Path.GetFileName(file) + " " + string.Join(' ', args)) { OnStdout = onStdout };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
                return;
            child.OnStdout?.Invoke(e.Data);
            child._stdout.Enqueue(e.Data);
            child.Keep(e.Data);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                child.Keep(e.Data);
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    private void Keep(string line)
    {
        _tail.Enqueue(line);
        while (_tail.Count > 400)
            _tail.TryDequeue(out _);
        _line.Release();
    }

    /// <summary>The last lines it wrote (stdout and stderr), for a failure message.</summary>
    public string Tail => string.Join('\n', _tail);

    /// <summary>Waits until a line (stdout or stderr) satisfies <paramref name="ready"/>; throws with its output when it exits first or after <paramref name="timeout"/>.</summary>
    public async Task WaitForLineAsync(Func<string, bool> ready, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!_tail.Any(ready))
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"{_what} exited with {_process.ExitCode} before it was ready:\n{Tail}");
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
                throw new TimeoutException($"{_what} not ready after {timeout.TotalSeconds:0} s:\n{Tail}");
            await _line.WaitAsync(left < TimeSpan.FromMilliseconds(250) ? left : TimeSpan.FromMilliseconds(250));
        }
    }

    /// <summary>Closes its stdin (the workers stop cleanly on end of input).</summary>
    public void CloseInput() => _process.StandardInput.Close();

    /// <summary>SIGKILL of the whole tree: no shutdown code runs.</summary>
    public void Kill()
    {
        if (_process.HasExited)
            return;
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    /// <summary>
    /// Sends <paramref name="signal"/> (<c>STOP</c>, <c>CONT</c>) to the process and every descendant (found through
    /// <c>/proc/*/stat</c>): SIGSTOP freezes a server with its sockets open, so peers see no error, only silence.
    /// </summary>
    public void Signal(string signal)
    {
        var children = new Dictionary<int, List<int>>();
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
                continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var ppid = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
                (children.TryGetValue(ppid, out var list) ? list : children[ppid] = []).Add(pid);
            }
            catch (IOException)
            {
                // gone meanwhile
            }
        }
        var tree = new List<int> { _process.Id };
        for (var i = 0; i < tree.Count; i++)
            tree.AddRange(children.GetValueOrDefault(tree[i]) ?? []);
        using var kill = Process.Start("kill", ["-" + signal, .. tree.Select(p => p.ToString(System.Globalization.CultureInfo.InvariantCulture))])!;
        kill.WaitForExit();
    }

    /// <summary>A TCP port on loopback that nothing listens on right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        try
        {
            Kill();
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
        _line.Dispose();
    }
}
