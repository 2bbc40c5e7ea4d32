using System.Globalization;

namespace FastIngest.Storage;

/// <summary>
/// One process per data directory: an exclusive lock on <c>DataDir/lock</c> (on Linux, .NET opens a file with
/// <see cref="FileShare.None"/> under an advisory <c>flock(LOCK_EX | LOCK_NB)</c>), taken before anything else in the
/// directory is opened and held until <see cref="Dispose"/> or the process ends (the kernel drops it on a crash). The
/// holder writes its pid to <c>DataDir/lock.pid</c>, so a second process can say who holds it.
/// </summary>
public sealed class DataDirLock : IDisposable
{
    private readonly FileStream _lock;

    private DataDirLock(FileStream held) => _lock = held;

    /// <summary>Takes the lock of <paramref name="dataDir"/> (which must exist).</summary>
    /// <exception cref="IOException">Another process holds it; the message names the directory and, when known, its pid.</exception>
    public static DataDirLock Acquire(string dataDir)
    {
        FileStream held;
        try
        {
            held = new FileStream(Path.Combine(dataDir, "lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex)
        {
            var pid = File.Exists(Path.Combine(dataDir, "lock.pid")) ? File.ReadAllText(Path.Combine(dataDir, "lock.pid")).Trim() : "unknown";
            throw new IOException($"'{dataDir}' is in use by another FastIngest process (pid {pid}); one process per data directory", ex);
        }
        File.WriteAllText(Path.Combine(dataDir, "lock.pid"), Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        return new DataDirLock(held);
    }

    /// <summary>Releases the lock.</summary>
    public void Dispose() => _lock.Dispose();
}
