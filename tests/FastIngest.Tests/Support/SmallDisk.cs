using System.Diagnostics;

namespace FastIngest.Tests.Support;

/// <summary>
/// A real, small file system for disk-fault tests: a tmpfs of <c>megabytes</c> MiB mounted on a fresh temp directory
/// (root, or sudo without a password, is needed to mount; the CI machine has it). <see cref="Fill"/> fills it to the
/// last byte with a ballast file (the disk is full: writes fail with ENOSPC), <see cref="Free"/> deletes the ballast;
/// <see cref="ReadOnly"/> remounts it read-only (EROFS) and <see cref="ReadWrite"/> back. Unmounted on dispose.
/// </summary>
internal sealed class SmallDisk : IDisposable
{
    private readonly string _ballast;

    private SmallDisk(string path)
    {
        Path = path;
        _ballast = System.IO.Path.Combine(path, "ballast");
    }

    public string Path { get; }

    /// <summary>Where the server's data directory goes (a subdirectory: the mount point itself stays the test's).</summary>
    public string DataDir => System.IO.Path.Combine(Path, "data");

    public static SmallDisk Mount(int megabytes)
    {
        var path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"fastingest-disk-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        Run("mount", "-t", "tmpfs", "-o", $"size={megabytes}m", "tmpfs", path);
        return new SmallDisk(path);
    }

    /// <summary>Fills the file system: the ballast grows until the kernel refuses a byte more.</summary>
    public void Fill()
    {
        using var file = new FileStream(_ballast, FileMode.Append, FileAccess.Write, FileShare.None, 1);
        var chunk = new byte[64 * 1024];
        try
        {
            while (true)
                file.Write(chunk);
        }
        catch (IOException)
        {
        }
        try
        {
            while (true)
                file.Write(chunk, 0, 1);
        }
        catch (IOException)
        {
        }
    }

    public void Free() => File.Delete(_ballast);

    public void ReadOnly() => Run("mount", "-o", "remount,ro", Path);

    public void ReadWrite() => Run("mount", "-o", "remount,rw", Path);

    private static void Run(string command, params string[] args)
    {
        var asRoot = Environment.UserName == "root";
        var psi = new ProcessStartInfo(asRoot ? command : "sudo") { UseShellExecute = false, RedirectStandardError = true };
        if (!asRoot)
        {
            psi.ArgumentList.Add("-n");
            psi.ArgumentList.Add(command);
        }
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{command} {string.Join(' ', args)} failed ({p.ExitCode}): {error.Trim()} (disk-fault tests mount a tmpfs: they need root or passwordless sudo)");
    }

    public void Dispose()
    {
        try
        {
            Run("umount", "-l", Path);
            Directory.Delete(Path, recursive: true);
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or UnauthorizedAccessException)
        {
        }
    }
}
