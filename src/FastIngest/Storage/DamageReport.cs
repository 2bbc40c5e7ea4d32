using System.Text.Json;

namespace FastIngest.Storage;

/// <summary>One damaged file or range that start-up found and handled, open until an operator clears it.</summary>
/// <param name="Id">Its number in the report (1, 2, ...).</param>
/// <param name="Store">What was damaged: <c>events</c>, <c>quarantine</c>, <c>deadletter</c>, <c>outbound</c> (logs), <c>dedupe</c>, <c>state</c>, <c>window</c> (stores rebuilt or started empty).</param>
/// <param name="FoundAt">When start-up found it (UTC).</param>
/// <param name="Detail">What was lost and what was done, one line.</param>
public sealed record DamageEntry(long Id, string Store, DateTimeOffset FoundAt, string Detail);

/// <summary>
/// The durable list of damage found at start-up (file <c>DataDir/damage-report</c>, one JSON object per line:
/// <c>{"id","store","foundAt","detail"}</c>). While it has entries <c>/readyz</c> fails with each one, across
/// restarts, until an operator clears it (<c>POST /admin/damage/clear</c>, or <c>fastingest damage clear</c>):
/// damage is never silent, and never stays unseen because a restart came first.
/// </summary>
public sealed class DamageReport
{
    private readonly string _path;
    private readonly List<DamageEntry> _open;
    private readonly Dictionary<string, long> _foundSinceStart = new(StringComparer.Ordinal);
    private readonly object _gate = new();

    /// <summary>Loads the report under <paramref name="dataDir"/> (a line that does not parse is kept as its text).</summary>
    public DamageReport(string dataDir)
    {
        _path = Path.Combine(dataDir, "damage-report");
        _open = [];
        if (AtomicFile.Read(_path) is not { } text)
            return;
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            try
            {
                if (JsonSerializer.Deserialize(line, DamageJson.Default.DamageEntry) is { } entry)
                    _open.Add(entry);
            }
            catch (JsonException)
            {
                _open.Add(new DamageEntry(_open.Count + 1, "report", DateTimeOffset.UnixEpoch, line));
            }
        }
    }

    /// <summary>The open entries, oldest first.</summary>
    public IReadOnlyList<DamageEntry> Open
    {
        get
        {
            lock (_gate)
                return [.. _open];
        }
    }

    /// <summary>Damage found since this process started, by store (for <c>fastingest_storage_damage_total</c>).</summary>
    public IReadOnlyList<KeyValuePair<string, long>> FoundSinceStart
    {
        get
        {
            lock (_gate)
                return [.. _foundSinceStart];
        }
    }

    /// <summary>Adds an entry durably (before the server takes a request).</summary>
    /// <exception cref="IOException">The report cannot be written.</exception>
    public DamageEntry Add(string store, string detail, DateTimeOffset now)
    {
        lock (_gate)
        {
            var entry = new DamageEntry(_open.Count == 0 ? 1 : _open[^1].Id + 1, store, now, detail);
            _open.Add(entry);
            _foundSinceStart[store] = _foundSinceStart.GetValueOrDefault(store) + 1;
            Save();
            return entry;
        }
    }

    /// <summary>Clears every open entry (the operator has seen them); returns how many.</summary>
    /// <exception cref="IOException">The report cannot be written.</exception>
    public int Clear()
    {
        lock (_gate)
        {
            var n = _open.Count;
            _open.Clear();
            Save();
            return n;
        }
    }

    private void Save()
        => AtomicFile.Write(_path, string.Concat(_open.Select(e => JsonSerializer.Serialize(e, DamageJson.Default.DamageEntry) + "\n")));
}

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
[System.Text.Json.Serialization.JsonSerializable(typeof(DamageEntry))]
internal sealed partial class DamageJson : System.Text.Json.Serialization.JsonSerializerContext;
