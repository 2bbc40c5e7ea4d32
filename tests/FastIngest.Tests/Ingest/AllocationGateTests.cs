using System.Globalization;
using FastIngest.Configuration;
using FastIngest.Ingest;
using FastIngest.Tenancy;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Ingest;

/// <summary>
/// The allocation gate, in the manner of Garnet's BDN perf tests but counting bytes, not time: the in-process
/// ingest path (verify, parse, dedupe, append) runs thousands of times after warm-up and
/// <see cref="GC.GetAllocatedBytesForCurrentThread"/> must not move.
/// </summary>
/// <remarks>
/// FASTER allocates a few hundred bytes of I/O bookkeeping when a log page fills (once per 32 MiB here), on
/// whichever thread crosses it. So each case measures up to five short windows and passes on the first that
/// allocated nothing: a page turn spoils one window at most, while any per-request allocation spoils them all.
/// </remarks>
public sealed class AllocationGateTests : IDisposable
{
    private const int MaxWindows = 5;
    private readonly Stores _stores = new(maxRecordBytes: 16 << 20, logMemoryBytes: 128L << 20, dedupeIndexBytes: 1 << 22, dedupeMemoryBytes: 256L << 20);
    private readonly IngestPipeline _pipeline;
    private readonly List<Tenant> _tenants = [];

    public AllocationGateTests() => _pipeline = _stores.Pipeline();

    public void Dispose()
    {
        _stores.Dispose();
        foreach (var t in _tenants)
            t.Dispose();
    }

    public static TheoryData<string, int> Shapes() => new()
    {
        { "text-1KB", 500 },
        { "statuses-20", 200 },
        { "statuses-64KB", 20 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Ingest_path_allocates_nothing_per_request(string shape, int window)
    {
        // Distinct bodies, replayed under a new tenant each lap, so that every request holds new events.
        var bodies = Enumerable.Range(0, window).Select(i => Body(shape, i)).ToArray();
        var signatures = bodies.Select(b => WebhookSignature.Sign("gate-secret", b)).ToArray();
        var lap = 0;
        long Run()
        {
            var tenant = new Tenant(new TenantOptions { Id = $"gate{lap++}", AppSecret = "gate-secret", VerifyToken = "v" });
            _tenants.Add(tenant);
            _ = tenant.InboundHmac; // the per-thread HMAC context is made once, before measuring
            var wrong = 0; // no asserts inside the window: xunit's comparers allocate
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < bodies.Length; i++)
            {
                if (WebhookSignature.Verify(signatures[i], tenant.InboundHmac, bodies[i]) != SignatureCheck.Valid)
                    wrong++;
                var outcome = _pipeline.Accept(tenant, bodies[i], bodies[i].Length);
                while (outcome.Status == IngestStatus.Backpressure)
                {
                    Thread.Sleep(1);
                    outcome = _pipeline.Accept(tenant, bodies[i], bodies[i].Length);
                }
                if (outcome.Status != IngestStatus.Accepted || outcome.NewEvents == 0)
                    wrong++;
            }
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.Equal(0, wrong);
            return allocated;
        }

        for (var warm = 0; warm < 3; warm++)
            Run();
        var seen = new List<long>();
        for (var w = 0; w < MaxWindows; w++)
        {
            var allocated = Run();
            if (allocated == 0)
                return;
            seen.Add(allocated);
        }
        Assert.Fail($"{shape}: every window allocated ({string.Join(", ", seen)} bytes per {window} requests)");
    }

    private static byte[] Body(string shape, int n) => shape switch
    {
        "text-1KB" => Payloads.Messages(($"wamid.GATE{n:D8}", "16505551234", new string('x', 700))),
        "statuses-20" => Payloads.Statuses(Enumerable.Range(0, 20).Select(i => ($"wamid.GATE{n:D8}.{i}", i % 2 == 0 ? "sent" : "delivered", "1650555" + i.ToString("D4", CultureInfo.InvariantCulture))).ToArray()),
        _ => Statuses64KB(n),
    };

    private static byte[] Statuses64KB(int n)
    {
        byte[] Make(int count) => Payloads.Statuses(Enumerable.Range(0, count).Select(i => ($"wamid.GATE{n:D8}.{i:D4}", "read", "16505550000")).ToArray());
        var perStatus = Make(101).Length - Make(100).Length;
        var body = Make((62 * 1024 - Make(0).Length) / perStatus);
        Assert.InRange(body.Length, 60 * 1024, 64 * 1024);
        return body;
    }
}
