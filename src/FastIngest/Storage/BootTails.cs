using System.Buffers.Binary;

namespace FastIngest.Storage;

/// <summary>
/// The durable table of each process start's recovered event-log tail (file <c>DataDir/boot-tails</c>): one 16-byte
/// record per boot, <c>[boot i32][FNV-1a 32 of the boot and tail u32][tail i64]</c>, little-endian, appended and fsynced (file and
/// directory) before the boot takes any request. It says which dedupe marks of earlier boots are real: a mark that
/// boot b made for a record at address A counts only if A is below the tail that the next recorded boot recovered,
/// which is everything boot b got committed (the lowest tail of any later boot, when a later one found the log damaged). A mark a checkpoint saved for a record that never reached disk stays
/// void whatever later boots write at that address.
/// </summary>
public sealed class BootTails
{
    private const int RecordBytes = 16;
    private readonly int[] _boots;
    private readonly long[] _tails;

    private readonly long[] _lowestFrom;

    private BootTails(int[] boots, long[] tails)
    {
        _boots = boots;
        _tails = tails;
        // _lowestFrom[i]: the lowest tail of boots i and later (the hot path's lookup is one binary search).
        _lowestFrom = new long[tails.Length];
        for (var i = tails.Length - 1; i >= 0; i--)
            _lowestFrom[i] = i == tails.Length - 1 ? tails[i] : Math.Min(tails[i], _lowestFrom[i + 1]);
    }

    /// <summary>Boots recorded, this one included.</summary>
    public int Count => _boots.Length;

    /// <summary>
    /// Reads the table under <paramref name="dataDir"/>, appends (<paramref name="boot"/>, <paramref name="recoveredTail"/>)
    /// durably and returns the whole table. A torn or damaged last record (a power loss mid-append) is ignored.
    /// </summary>
    /// <exception cref="IOException">The file cannot be read or written.</exception>
    public static BootTails Record(string dataDir, int boot, long recoveredTail)
    {
        var path = Path.Combine(dataDir, "boot-tails");
        var existed = File.Exists(path);
        var bytes = existed ? File.ReadAllBytes(path) : [];
        var boots = new List<int>(bytes.Length / RecordBytes + 1);
        var tails = new List<long>(bytes.Length / RecordBytes + 1);
        var valid = 0;
        for (var at = 0; at + RecordBytes <= bytes.Length; at += RecordBytes)
        {
            var r = bytes.AsSpan(at, RecordBytes);
            if (BinaryPrimitives.ReadUInt32LittleEndian(r[4..]) != Crc(r))
                break;
            var b = BinaryPrimitives.ReadInt32LittleEndian(r);
            if (b >= boot || (boots.Count > 0 && b <= boots[^1]))
                break;
            boots.Add(b);
            tails.Add(BinaryPrimitives.ReadInt64LittleEndian(r[8..]));
            valid = at + RecordBytes;
        }
        Span<byte> record = stackalloc byte[RecordBytes];
        BinaryPrimitives.WriteInt32LittleEndian(record, boot);
        BinaryPrimitives.WriteInt64LittleEndian(record[8..], recoveredTail);
        BinaryPrimitives.WriteUInt32LittleEndian(record[4..], Crc(record));
        using (var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.None))
        {
            file.SetLength(valid);
            file.Position = valid;
            file.Write(record);
            file.Flush(flushToDisk: true);
        }
        if (!existed)
            DirectorySync.Flush(dataDir);
        boots.Add(boot);
        tails.Add(recoveredTail);
        return new BootTails([.. boots], [.. tails]);
    }

    /// <summary>
    /// The event-log address below which every record appended by boot <paramref name="boot"/> was committed: the
    /// recovered tail of the first recorded boot after it. For a boot the table does not reach past (only the current
    /// one, or boots from before the table existed), the newest recorded tail.
    /// </summary>
    /// <remarks>
    /// Tails only grow, except where a later boot found the log damaged or shorter (it records where the intact log
    /// ended): so the bound is the lowest tail recorded by any boot after <paramref name="boot"/>, and a mark for a
    /// record that damage later took away is void, which lets Meta's resend of that event in again.
    /// </remarks>
    public long CommittedBy(int boot)
    {
        var i = Array.BinarySearch(_boots, boot);
        var next = i >= 0 ? i + 1 : ~i;
        return next < _tails.Length ? _lowestFrom[next] : _tails[^1];
    }

    /// <summary>The highest tail recovered by a boot before <paramref name="boot"/> (0 if none): how far the log is known to have reached.</summary>
    public long HighestBefore(int boot)
    {
        long max = 0;
        for (var j = 0; j < _boots.Length && _boots[j] < boot; j++)
            max = Math.Max(max, _tails[j]);
        return max;
    }

    private static uint Crc(ReadOnlySpan<byte> record)
    {
        Span<byte> rest = stackalloc byte[12];
        record[..4].CopyTo(rest);
        record[8..16].CopyTo(rest[4..]);
        return Internal.Fnv1a.Hash32(rest);
    }
}
