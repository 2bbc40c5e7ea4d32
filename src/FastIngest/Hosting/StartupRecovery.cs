using System.Buffers;
using System.Text;
using FastIngest.Dispatch;
using FastIngest.Ingest;
using FastIngest.Storage;
using FastIngest.Tenancy;
using Microsoft.Extensions.Logging;

namespace FastIngest.Hosting;

/// <summary>The start-up read of the event log: what the engine needs to know of it before the first request.</summary>
internal static class StartupRecovery
{
    /// <summary>
    /// Reads the log once from its begin to the recovered tail: collects acks, puts back the dedupe marks of batches
    /// the last checkpoint did not cover, and finds records of tenants no longer configured. Returns the address the
    /// log must not be truncated past (the first such orphan), or <see cref="long.MaxValue"/>.
    /// </summary>
    public static long Run(EventLog log, long recoveredTail, DedupeStore dedupe, IngestPipeline pipeline, TenantRegistry tenants, AckSet acked, ILogger logger)
    {
        var replayFrom = dedupe.ReplayFrom;
        var orphanCap = long.MaxValue;
        var replayed = 0;
        var session = dedupe.Rent();
        try
        {
            using var iter = log.Scan(log.BeginAddress, recoveredTail);
            while (iter.GetNext(MemoryPool<byte>.Shared, out var owner, out var length, out var address, out _))
            {
                using (owner)
                {
                    var record = owner.Memory.Span[..length];
                    switch (LogRecordFormat.TypeOf(record))
                    {
                        case LogRecordType.Ack:
                            acked.Add(AckRecord.Read(record));
                            break;
                        case LogRecordType.Batch:
                            var stored = StoredPayload.Read(record);
                            if (tenants.Find(stored.Tenant) is null && orphanCap == long.MaxValue)
                            {
                                orphanCap = address;
                                EngineLog.OrphanRecords(logger, Encoding.UTF8.GetString(stored.Tenant), address);
                            }
                            if (address >= replayFrom && pipeline.WithinTtl(stored.ReceivedUnixMs))
                            {
                                var mark = pipeline.ReplayMark(stored.ReceivedUnixMs, address);
                                for (var i = 0; i < stored.EventCount; i++)
                                    DedupeStore.Put(session, stored.KeyAt(i), mark);
                                replayed += stored.EventCount;
                            }
                            break;
                    }
                }
            }
        }
        finally
        {
            dedupe.Return(session);
        }
        EngineLog.Recovered(logger, log.BeginAddress, recoveredTail, acked.Count, acked.Skipped, replayed);
        return orphanCap;
    }
}
