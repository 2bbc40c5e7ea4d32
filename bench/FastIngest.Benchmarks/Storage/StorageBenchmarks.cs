using BenchmarkDotNet.Attributes;
using FastIngest.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastIngest.Benchmarks.Storage;

/// <summary>Dedupe lookups (hit and miss, as the ingest path does them: rent a session, read, return) and log appends.</summary>
[MemoryDiagnoser]
public class StorageBenchmarks
{
    private const int Keys = 1 << 20;
    private string _dir = "";
    private DedupeStore _dedupe = null!;
    private EventLog _log = null!;
    private readonly byte[] _body = BenchPayloads.TextMessage(1);
    private readonly byte[] _tenant = "bench"u8.ToArray();
    private readonly int[] _indices = [0];
    private readonly DedupeKey[] _keys = [new(1, 2)];
    private ulong _next;

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "fastingest-bench-" + Guid.NewGuid().ToString("N"));
        _dedupe = new DedupeStore(Path.Combine(_dir, "dedupe"), 1L << 25, 1L << 26, NullLogger.Instance);
        _log = new EventLog(Path.Combine(_dir, "events"), "events", 64 * 1024, 1L << 26, NullLogger.Instance);
        var s = _dedupe.Rent();
        for (ulong i = 0; i < Keys; i++)
            DedupeStore.Put(s, new DedupeKey(i * 0x9E3779B97F4A7C15UL, i), new DedupeEntry { SeenUnixMs = 1, LogAddress = 1, Boot = 1 });
        _dedupe.Return(s);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _log.Dispose();
        _dedupe.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark]
    public bool DedupeHit()
    {
        var i = _next++ % Keys;
        var s = _dedupe.Rent();
        var found = DedupeStore.TryGet(s, new DedupeKey(i * 0x9E3779B97F4A7C15UL, i), out _);
        _dedupe.Return(s);
        return found;
    }

    [Benchmark]
    public bool DedupeMiss()
    {
        var i = _next++;
        var s = _dedupe.Rent();
        var found = DedupeStore.TryGet(s, new DedupeKey(i * 0x9E3779B97F4A7C15UL, ~i), out _);
        _dedupe.Return(s);
        return found;
    }

    /// <summary>Appends a 1 KB batch record to the in-memory tail (the commit thread flushes behind it).</summary>
    [Benchmark]
    public long LogAppend1KB()
    {
        long address;
        while (!_log.TryAppend(new BatchRecord(_tenant, 1, _indices, _keys, 1, _body, _body.Length), out address))
            Thread.Yield();
        return address;
    }
}
