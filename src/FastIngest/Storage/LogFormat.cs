namespace FastIngest.Storage;

/// <summary>
/// Which record format a log directory holds (file <c>format</c> in it): <c>fasterlog-checksum-per-entry</c> for
/// every log created by this version or later, whose records carry FASTER's per-entry checksum (8 bytes of XOR over
/// the length and payload, verified on every read). A directory that already holds a log but no <c>format</c> file
/// was written before checksums: it is opened as it is (without them), because its records cannot be read otherwise.
/// </summary>
internal static class LogFormat
{
    private const string PerEntry = "fasterlog-checksum-per-entry\n";

    /// <summary>Whether the log in <paramref name="directory"/> is (or, being new, will be) checksummed per entry; records the format of a new one.</summary>
    public static bool PerEntryChecksums(string directory)
    {
        var marker = Path.Combine(directory, "format");
        if (AtomicFile.Read(marker) is { } text)
            return text == PerEntry;
        var existing = Directory.EnumerateFiles(directory, "log.*").Any() || Directory.Exists(Path.Combine(directory, "commits"));
        if (existing)
            return false;
        AtomicFile.Write(marker, PerEntry);
        return true;
    }
}
