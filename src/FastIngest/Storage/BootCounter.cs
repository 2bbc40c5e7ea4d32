using System.Globalization;

namespace FastIngest.Storage;

/// <summary>
/// Counts process starts on one data directory (file <c>boot</c>). Dedupe marks carry the boot that made them, so a
/// mark that a checkpoint saved before its log record was committed can be told apart after a crash.
/// </summary>
public static class BootCounter
{
    /// <summary>Reads, increments and durably writes the counter under <paramref name="dataDir"/>; returns the new value (1 on a new directory).</summary>
    /// <exception cref="IOException">The file cannot be read or written.</exception>
    public static int Next(string dataDir)
    {
        var path = Path.Combine(dataDir, "boot");
        var current = 0;
        if (File.Exists(path) && int.TryParse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
            current = parsed;
        var next = current + 1;
        AtomicFile.Write(path, next.ToString(CultureInfo.InvariantCulture));
        return next;
    }
}

/// <summary>Small files replaced atomically: written to a temp file, flushed to disk, renamed over the old one.</summary>
internal static class AtomicFile
{
    public static void Write(string path, string content)
    {
        var tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(content);
            fs.Write(bytes);
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
        DirectorySync.FlushParent(path); // the rename itself must survive a power loss
    }

    public static string? Read(string path) => File.Exists(path) ? File.ReadAllText(path) : null;
}
