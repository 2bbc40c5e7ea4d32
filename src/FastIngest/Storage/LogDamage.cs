using System.Globalization;

namespace FastIngest.Storage;

/// <summary>
/// A range of a FasterLog's addresses that recovery found unreadable and cut out: <c>[From, Until)</c>, in bytes of
/// the log's address space. Records in it are gone; readers of the log skip it (<see cref="LogScan"/>).
/// </summary>
/// <param name="From">First address cut out (where the first bad record, or the zeros, began).</param>
/// <param name="Until">First address after it: the next record that verified, or the recovered tail.</param>
/// <param name="Error">What recovery saw there (FASTER's error: a bad checksum, an invalid length, an uninitialized page, a log shorter than it was when closed).</param>
public sealed record LogDamage(long From, long Until, string Error)
{
    /// <summary>Bytes of the log cut out.</summary>
    public long Bytes => Until - From;
}

/// <summary>
/// The durable list of a log's cut-out ranges (<see cref="LogDamage"/>), file <c>damage</c> in the log's directory:
/// one line per range, <c>{from} {until} {error}</c>, replaced atomically (rename, then directory fsync). Ranges wholly
/// below the log's begin address (truncated away) are dropped on load.
/// </summary>
internal static class LogHoles
{
    public static List<LogDamage> Load(string directory, long beginAddress)
    {
        var holes = new List<LogDamage>();
        if (AtomicFile.Read(Path.Combine(directory, "damage")) is not { } text)
            return holes;
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(' ', 3);
            if (parts.Length >= 2
                && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var from)
                && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var until)
                && until > from && until > beginAddress)
                holes.Add(new LogDamage(from, until, parts.Length > 2 ? parts[2] : ""));
        }
        holes.Sort((a, b) => a.From.CompareTo(b.From));
        return holes;
    }

    /// <summary><paramref name="address"/>, or the end of the cut-out range it falls in (ranges sorted by start).</summary>
    public static long Skip(IReadOnlyList<LogDamage> holes, long address)
    {
        foreach (var hole in holes)
        {
            if (address >= hole.From && address < hole.Until)
                address = hole.Until;
        }
        return address;
    }

    public static void Save(string directory, IReadOnlyList<LogDamage> holes)
    {
        var text = string.Concat(holes.Select(h => string.Create(CultureInfo.InvariantCulture, $"{h.From} {h.Until} {h.Error.Replace('\n', ' ')}\n")));
        AtomicFile.Write(Path.Combine(directory, "damage"), text);
    }
}
