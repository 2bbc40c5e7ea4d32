using FastIngest.Ingest;
using FastIngest.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastIngest.Tests.Support;

/// <summary>The event log, quarantine log and dedupe store of one ingest pipeline, in a temp directory.</summary>
internal sealed class Stores : IDisposable
{
    private readonly TempDir _dir = new();

    public Stores(int maxRecordBytes = 1 << 20, long logMemoryBytes = 1 << 24, long dedupeIndexBytes = 1 << 16, long dedupeMemoryBytes = 1 << 22)
    {
        Log = new EventLog(_dir.Sub("events"), "events", maxRecordBytes, logMemoryBytes, NullLogger.Instance);
        Quarantine = new EventLog(_dir.Sub("quarantine"), "quarantine", 1 << 20, 1 << 24, NullLogger.Instance);
        Dedupe = new DedupeStore(_dir.Sub("dedupe"), dedupeIndexBytes, dedupeMemoryBytes, NullLogger.Instance);
    }

    public EventLog Log { get; }

    public EventLog Quarantine { get; }

    public DedupeStore Dedupe { get; }

    /// <summary>A pipeline over these stores; <paramref name="recoveredTail"/> defaults to the log's current tail.</summary>
    public IngestPipeline Pipeline(int boot = 1, long? recoveredTail = null)
        => new(Log, Quarantine, Dedupe, TimeSpan.FromDays(7), boot, recoveredTail ?? Log.TailAddress, TimeProvider.System, NullLogger.Instance);

    public void Dispose()
    {
        Log.Dispose();
        Quarantine.Dispose();
        Dedupe.Dispose();
        _dir.Dispose();
    }
}
