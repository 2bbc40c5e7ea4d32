namespace FastIngest.Storage;

/// <summary>
/// <c>fsync</c> of a directory, so that a file just created or renamed in it survives a power loss: POSIX makes a
/// file's data durable with <c>fsync</c> on the file, but its directory entry only with <c>fsync</c> on the directory.
/// Used after every file recovery depends on is created or renamed (boot counter, boot tails, log segments,
/// checkpoint metadata). A no-op where the platform has no such call.
/// </summary>
internal static partial class DirectorySync
{
    private const int ReadOnly = 0, Directory = 0x10000, CloseOnExec = 0x80000;

    /// <summary>Makes the entries of <paramref name="directory"/> durable.</summary>
    /// <exception cref="IOException">The directory cannot be opened or synced.</exception>
    public static void Flush(string directory)
    {
        if (!OperatingSystem.IsLinux())
            return;
        var flags = ReadOnly | CloseOnExec | (System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? 0x4000 : Directory);
        var fd = SysOpen(directory, flags);
        if (fd < 0)
            throw new IOException($"cannot open directory '{directory}' to sync it (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})");
        try
        {
            if (SysFsync(fd) != 0)
                throw new IOException($"fsync of directory '{directory}' failed (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})");
        }
        finally
        {
            _ = SysClose(fd);
        }
    }

    /// <summary>Flushes the directory that holds <paramref name="path"/>.</summary>
    public static void FlushParent(string path) => Flush(Path.GetDirectoryName(Path.GetFullPath(path))!);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8)]
    private static partial int SysOpen(string path, int flags);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int SysFsync(int fd);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int SysClose(int fd);
}
