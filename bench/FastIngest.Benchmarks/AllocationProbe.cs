using Stopwatch = System.Diagnostics.Stopwatch;
using FastIngest.Configuration;
using FastIngest.Ingest;
using FastIngest.Storage;
using FastIngest.Tenancy;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastIngest.Benchmarks;

/// <summary>
/// <c>-- probe [count]</c>: drives the in-process ingest path (verify, parse, dedupe, append) on one thread, new
/// events only, and prints the bytes allocated on that thread and on all threads (the commit thread's share is
/// FASTER's per-commit bookkeeping, paid once per group commit, not per request), and the mean time per request.
/// </summary>
internal static class AllocationProbe
{
    /// <summary>Allocation of each storage operation alone, on the calling thread.</summary>
    private static void Components(int count)
    {
        var dir = Path.Combine(Path.GetTempPath(), "fastingest-probe-" + Guid.NewGuid().ToString("N"));
        using (var log = new EventLog(Path.Combine(dir, "events"), "events", 64 * 1024, 1L << 26, NullLogger.Instance))
        using (var dedupe = new DedupeStore(Path.Combine(dir, "dedupe"), 1L << 25, 1L << 26, NullLogger.Instance))
        {
            var s = dedupe.Rent();
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < count; i++)
                DedupeStore.Put(s, new DedupeKey((ulong)i * 0x9E3779B97F4A7C15UL, (ulong)i), new DedupeEntry { LogAddress = i });
            Console.WriteLine($"dedupe put (new keys): {(double)(GC.GetAllocatedBytesForCurrentThread() - before) / count:F3} B/op");
            before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < count; i++)
                DedupeStore.TryGet(s, new DedupeKey((ulong)i * 0x9E3779B97F4A7C15UL, ~(ulong)i), out _);
            Console.WriteLine($"dedupe get (misses):   {(double)(GC.GetAllocatedBytesForCurrentThread() - before) / count:F3} B/op");
            dedupe.Return(s);
            var body = BenchPayloads.TextMessage(1);
            var tenant = "t"u8.ToArray();
            int[] idx = [0];
            DedupeKey[] keys = [default];
            for (var i = 0; i < 80_000; i++)
            {
                while (!log.TryAppend(new BatchRecord(tenant, 1, idx, keys, 1, body, body.Length), out _))
                    Thread.Yield();
            }
            before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < count; i++)
            {
                while (!log.TryAppend(new BatchRecord(tenant, 1, idx, keys, 1, body, body.Length), out _))
                    Thread.Yield();
            }
            Console.WriteLine($"log append (1 KB):     {(double)(GC.GetAllocatedBytesForCurrentThread() - before) / count:F3} B/op");
        }
        Directory.Delete(dir, recursive: true);
    }

    public static void Run(int count)
    {
        Components(count);
        const int distinct = 16384;
        var bodies = Enumerable.Range(0, distinct).Select(i => BenchPayloads.TextMessage(i)).ToArray();
        var tenants = Enumerable.Range(0, (count + 80_000) / distinct + 2)
            .Select(t => new Tenant(new TenantOptions { Id = $"bench{t}", AppSecret = BenchPayloads.Secret, VerifyToken = "v" })).ToArray();
        var signatures = bodies.Select(b => WebhookSignature.Sign(tenants[0].AppSecret, b)).ToArray();
        var dir = Path.Combine(Path.GetTempPath(), "fastingest-probe-" + Guid.NewGuid().ToString("N"));
        using (var log = new EventLog(Path.Combine(dir, "events"), "events", 64 * 1024, 1L << 26, NullLogger.Instance))
        using (var quarantine = new EventLog(Path.Combine(dir, "quarantine"), "quarantine", 64 * 1024, 1L << 22, NullLogger.Instance))
        using (var dedupe = new DedupeStore(Path.Combine(dir, "dedupe"), 1L << 25, 1L << 26, NullLogger.Instance))
        {
            var pipeline = new IngestPipeline(log, quarantine, dedupe, TimeSpan.FromDays(7), 1, log.TailAddress, TimeProvider.System, NullLogger.Instance);
            void One(int i)
            {
                var body = bodies[i % distinct];
                var tenant = tenants[i / distinct];
                if (WebhookSignature.Verify(signatures[i % distinct], tenant.InboundHmac, body) != SignatureCheck.Valid)
                    throw new InvalidOperationException("signature");
                while (pipeline.Accept(tenant, body, body.Length).Status == IngestStatus.Backpressure)
                    Thread.Yield();
            }
            // Warm-up: one lap of the event log's in-memory pages (64 MiB), which it allocates as it first fills them.
            const int warmup = 80_000;
            for (var i = 0; i < warmup; i++)
                One(i);
            var thread0 = GC.GetAllocatedBytesForCurrentThread();
            var total0 = GC.GetTotalAllocatedBytes(precise: true);
            var sw = Stopwatch.StartNew();
            for (var i = warmup; i < warmup + count; i++)
                One(i);
            sw.Stop();
            var thread = GC.GetAllocatedBytesForCurrentThread() - thread0;
            var total = GC.GetTotalAllocatedBytes(precise: true) - total0;
            Console.WriteLine($"requests: {count}, mean: {sw.Elapsed.TotalMicroseconds / count:F2} us/request");
            Console.WriteLine($"allocated on the ingest thread: {thread} bytes ({(double)thread / count:F3} B/request)");
            Console.WriteLine($"allocated on all threads:       {total} bytes ({(double)total / count:F3} B/request)");
        }
        Directory.Delete(dir, recursive: true);
    }
}
