using System.Globalization;
using System.IO.Hashing;

namespace FastIngest.Storage;

/// <summary>
/// Checksums of what a FASTER KV store's recovery reads (file <c>manifest</c> in the store's directory), so that a
/// damaged store is found at open instead of answering lookups wrongly: FASTER checks neither its hash index nor its
/// log records, and a flipped byte there silently loses keys (for the dedupe store: events delivered again).
/// </summary>
/// <remarks>
/// Written after each completed checkpoint, replaced atomically. Lines: <c>file {path under checkpoints/} {bytes}
/// {XxHash3 hex}</c> for every file of the checkpoint (index and log metadata), and <c>log {from} {until} {XxHash3
/// hex}</c> for each range of whole pages of the store's log that a checkpoint made read-only and flushed (each range
/// is hashed once, from the segment files, and never spans a segment, so cutting the log's head drops whole ranges).
/// The page holding the tail is covered once a later page has begun.
/// </remarks>
internal sealed class KvManifest
{
    private readonly string _directory;
    private readonly int _segmentBits;
    private readonly int _pageBits;
    private readonly List<(long From, long Until, ulong Hash)> _ranges = [];

    /// <summary>Loads the manifest of the store in <paramref name="directory"/> whose log segments are <c>hlog.log.{n}</c> of <paramref name="segmentBytes"/>, in pages of <paramref name="pageBytes"/> (powers of two, as FASTER rounds them down).</summary>
    public KvManifest(string directory, long segmentBytes, long pageBytes)
    {
        _directory = directory;
        _pageBits = 63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)pageBytes);
        _segmentBits = 63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)segmentBytes);
        foreach (var line in Lines())
        {
            var p = line.Split(' ');
            if (p.Length == 4 && p[0] == "log"
                && long.TryParse(p[1], NumberStyles.None, CultureInfo.InvariantCulture, out var from)
                && long.TryParse(p[2], NumberStyles.None, CultureInfo.InvariantCulture, out var until)
                && ulong.TryParse(p[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var hash))
                _ranges.Add((from, until, hash));
        }
    }

    private string[] Lines() => (AtomicFile.Read(Path.Combine(_directory, "manifest")) ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Checks every file and log range the manifest lists against the disk.</summary>
    /// <exception cref="IOException">A file is missing, of another length, or does not hash as recorded (the message names it).</exception>
    public void Verify()
    {
        foreach (var line in Lines())
        {
            var p = line.Split(' ');
            if (p[0] == "file" && p.Length == 4)
            {
                var path = Path.Combine(_directory, "checkpoints", p[1]);
                if (!File.Exists(path))
                    throw new IOException($"{path}: missing (the store's manifest lists it)");
                var length = new FileInfo(path).Length;
                if (length.ToString(CultureInfo.InvariantCulture) != p[2])
                    throw new IOException($"{path}: {length} bytes, the store's manifest says {p[2]}");
                if (HashFile(path).ToString("x16", CultureInfo.InvariantCulture) != p[3])
                    throw new IOException($"{path}: its checksum does not match the store's manifest (the file is damaged)");
            }
        }
        foreach (var (from, until, hash) in _ranges)
        {
            if (HashLog(from, until) != hash)
                throw new IOException($"{SegmentPath(from)}: log range [{from}, {until}) does not match its checksum in the store's manifest (the file is damaged)");
        }
    }

    /// <summary>
    /// After a checkpoint: hashes the log from where the last range ended (or <paramref name="begin"/>) to
    /// <paramref name="flushedUntil"/>, drops ranges below <paramref name="begin"/>, hashes the checkpoint's files, and
    /// writes the manifest.
    /// </summary>
    /// <exception cref="IOException">A file cannot be read, or the manifest cannot be written.</exception>
    public void Record(long begin, long flushedUntil, Guid token)
    {
        _ranges.RemoveAll(r => r.Until <= begin);
        // Only whole pages: FASTER writes the page holding the tail again (from memory, after more records and after
        // recovery), so its bytes on disk are final only once a later page has begun.
        flushedUntil &= ~((1L << _pageBits) - 1);
        var at = Math.Max(begin, _ranges.Count > 0 ? _ranges[^1].Until : begin);
        while (at < flushedUntil)
        {
            var segmentEnd = ((at >> _segmentBits) + 1) << _segmentBits;
            var until = Math.Min(flushedUntil, segmentEnd);
            _ranges.Add((at, until, HashLog(at, until)));
            at = until;
        }
        var text = new System.Text.StringBuilder();
        var current = token.ToString();
        var checkpoints = Path.Combine(_directory, "checkpoints");
        if (Directory.Exists(checkpoints))
        {
            string[] files;
            try
            {
                files = [.. Directory.EnumerateFiles(checkpoints, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)];
            }
            catch (DirectoryNotFoundException)
            {
                files = []; // a whole outdated checkpoint went while we listed: list again next time
            }
            foreach (var file in files)
            {
                var relative = Path.GetRelativePath(checkpoints, file);
                if (relative.Contains(' ', StringComparison.Ordinal) || TokenOf(relative) != current)
                    continue;
                try
                {
                    text.Append(CultureInfo.InvariantCulture, $"file {relative} {new FileInfo(file).Length} {HashFile(file):x16}\n");
                }
                catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
                {
                    // FASTER deletes the outdated checkpoint as the new one completes; recovery will not read it.
                }
            }
        }
        foreach (var (from, until, hash) in _ranges)
            text.Append(CultureInfo.InvariantCulture, $"log {from} {until} {hash:x16}\n");
        AtomicFile.Write(Path.Combine(_directory, "manifest"), text.ToString());
        RemoveCheckpointsBut(current);
    }

    /// <summary>The checkpoint token of a path under <c>checkpoints/</c> (<c>index-checkpoints/{token}/…</c>, <c>cpr-checkpoints/{token}/…</c>), or null.</summary>
    private static string? TokenOf(string relative)
    {
        var parts = relative.Split(Path.DirectorySeparatorChar);
        return parts.Length >= 3 ? parts[1] : null;
    }

    /// <summary>The checkpoint the manifest records (its token), or null when it records none.</summary>
    private string? RecordedToken()
    {
        foreach (var line in Lines())
        {
            var p = line.Split(' ');
            if (p[0] == "file" && p.Length == 4 && TokenOf(p[1]) is { } token)
                return token;
        }
        return null;
    }

    /// <summary>
    /// Before recovery: removes every checkpoint the manifest does not record (a newer one that a crash or a shutdown's
    /// cut left, perhaps half-written: FASTER would recover it, and a torn hash index crashes FASTER's recovery with an
    /// access violation). Without a manifest no checkpoint was ever recorded (the first one was cut before it was), so
    /// every checkpoint goes and the store starts empty, rebuilt by its owner (a store kept from before manifests loses
    /// its checkpoint the same way, once).
    /// </summary>
    public void PruneUnrecorded() => RemoveCheckpointsBut(RecordedToken());

    private void RemoveCheckpointsBut(string? keep)
    {
        foreach (var kind in new[] { "index-checkpoints", "cpr-checkpoints" })
        {
            var dir = Path.Combine(_directory, "checkpoints", kind);
            if (!Directory.Exists(dir))
                continue;
            foreach (var tokenDir in Directory.EnumerateDirectories(dir))
            {
                if (Path.GetFileName(tokenDir) == keep)
                    continue;
                try
                {
                    Directory.Delete(tokenDir, recursive: true);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                }
            }
        }
    }

    private string SegmentPath(long address) => Path.Combine(_directory, $"hlog.log.{address >> _segmentBits}");

    private ulong HashLog(long from, long until)
    {
        var path = SegmentPath(from);
        if (!File.Exists(path))
            throw new IOException($"{path}: missing (the store's manifest covers [{from}, {until}) in it)");
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var hash = new XxHash3();
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            var offset = from & ((1L << _segmentBits) - 1);
            var left = until - from;
            while (left > 0)
            {
                var n = RandomAccess.Read(handle, buffer.AsSpan(0, (int)Math.Min(buffer.Length, left)), offset);
                if (n <= 0)
                    throw new IOException($"{path}: shorter than the log range [{from}, {until}) the store's manifest covers in it");
                hash.Append(buffer.AsSpan(0, n));
                offset += n;
                left -= n;
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
        return hash.GetCurrentHashAsUInt64();
    }

    private static ulong HashFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16);
        var hash = new XxHash3();
        hash.Append(stream);
        return hash.GetCurrentHashAsUInt64();
    }
}
