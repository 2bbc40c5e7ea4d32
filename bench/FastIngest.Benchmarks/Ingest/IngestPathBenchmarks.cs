using BenchmarkDotNet.Attributes;
using FastIngest.Configuration;
using FastIngest.Ingest;
using FastIngest.Storage;
using FastIngest.Tenancy;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastIngest.Benchmarks.Ingest;

/// <summary>
/// The whole in-process ingest path without HTTP: verify the signature, parse, dedupe and append, for a 1 KB
/// payload carrying a new event, and for a repeat of an accepted one. New events come from 16,384 pre-signed bodies
/// replayed under a different tenant each lap (the dedupe key includes the tenant), so stores stay warm and every
/// invocation is a real miss-and-append. Warm-up first fills one lap of the log's and the store's memory.
/// </summary>
/// <remarks>
/// Allocated counts all threads: the commit thread's per-flush bookkeeping in FASTER shows here, shared by the
/// requests of one group commit; the ingest thread itself allocates nothing (the allocation gate test checks it).
/// </remarks>
[MemoryDiagnoser]
public class IngestPathBenchmarks
{
    private const int Distinct = 16384;
    private const int Laps = 1024;
    private byte[][] _bodies = [];
    private string[] _signatures = [];
    private Tenant[] _tenants = [];
    private string _dir = "";
    private EventLog _log = null!;
    private EventLog _quarantine = null!;
    private DedupeStore _dedupe = null!;
    private IngestPipeline _pipeline = null!;
    private long _next;

    [GlobalSetup]
    public void Setup()
    {
        _bodies = Enumerable.Range(0, Distinct).Select(i => BenchPayloads.TextMessage(i)).ToArray();
        _tenants = Enumerable.Range(0, Laps).Select(t => new Tenant(new TenantOptions { Id = $"bench{t}", AppSecret = BenchPayloads.Secret, VerifyToken = "v" })).ToArray();
        _signatures = _bodies.Select(b => WebhookSignature.Sign(_tenants[0].AppSecret, b)).ToArray();
        _dir = Path.Combine(Path.GetTempPath(), "fastingest-bench-" + Guid.NewGuid().ToString("N"));
        _log = new EventLog(Path.Combine(_dir, "events"), "events", 64 * 1024, 1L << 26, NullLogger.Instance);
        _quarantine = new EventLog(Path.Combine(_dir, "quarantine"), "quarantine", 64 * 1024, 1L << 22, NullLogger.Instance);
        _dedupe = new DedupeStore(Path.Combine(_dir, "dedupe"), 1L << 25, 1L << 26, NullLogger.Instance);
        _pipeline = new IngestPipeline(_log, _quarantine, _dedupe, TimeSpan.FromDays(7), 1, _log.TailAddress, TimeProvider.System, NullLogger.Instance);
        for (var i = 0; i < 80_000; i++)
            NewEvent1KB();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _log.Dispose();
        _quarantine.Dispose();
        _dedupe.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark]
    public IngestStatus NewEvent1KB()
    {
        var i = _next++;
        return Ingest(_tenants[i / Distinct % Laps], (int)(i % Distinct));
    }

    [Benchmark]
    public IngestStatus RepeatedEvent1KB() => Ingest(_tenants[0], 0);

    private IngestStatus Ingest(Tenant tenant, int i)
    {
        var body = _bodies[i];
        if (WebhookSignature.Verify(_signatures[i], tenant.InboundHmac, body) != SignatureCheck.Valid)
            throw new InvalidOperationException("signature");
        var outcome = _pipeline.Accept(tenant, body, body.Length);
        while (outcome.Status == IngestStatus.Backpressure)
        {
            Thread.Yield();
            outcome = _pipeline.Accept(tenant, body, body.Length);
        }
        return outcome.Status;
    }
}
