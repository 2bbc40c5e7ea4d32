using System.Diagnostics;
using System.Globalization;
using System.Text;
using FastIngest.Configuration;
using FastIngest.Dispatch;
using FastIngest.Ingest;
using FastIngest.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastIngest.Benchmarks.Dispatch;

/// <summary>
/// <c>backlog N DATADIR</c>: fills <c>DATADIR</c> as a server leaves it after taking <c>N</c> webhook events of tenant
/// <c>t1</c> (one inbound text message a payload, 50,000 customers) while its destination <c>bot</c> delivered every
/// one and its destination <c>dead</c> none: the event log holds each batch and the bot's ack of it (the dead
/// destination keeps the whole log from being cut), the dedupe store holds every event's mark and is checkpointed at
/// the tail, and
/// <c>DATADIR/positions</c> has the bot's delivered watermark at the tail and the dead one's at the begin. Start the
/// server on it with <c>bench/backlog-startup.sh</c> to measure start-up time and RSS behind one dead destination;
/// removing <c>positions</c> first gives the same start without watermarks (every ack held, every reader from the begin).
/// </summary>
internal static class BacklogFill
{
    public static async Task RunAsync(long count, string dataDir)
    {
        Directory.CreateDirectory(dataDir);
        var options = new FastIngestOptions();
        var started = Stopwatch.StartNew();
        var tenant = Encoding.UTF8.GetBytes("t1");
        var bot = FastIngest.Destinations.DestinationSpec.IdOf("bot");
        var tenantHash = AckRecord.TenantHashOf(tenant);
        using var log = new FastIngest.Storage.EventLog(Path.Combine(dataDir, "events"), "events", options.MaxBodyBytes + 64 * 1024, Math.Max(options.Storage.LogMemoryBytes, 4L * (options.MaxBodyBytes + 64 * 1024)), NullLogger.Instance);
        var begin = log.BeginAddress;
        using var dedupe = new DedupeStore(Path.Combine(dataDir, "dedupe"), options.Storage.DedupeIndexBytes, options.Storage.DedupeMemoryBytes, NullLogger.Instance, options.DedupeTtl);
        var session = dedupe.Rent();
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (long i = 0; i < count; i++)
        {
            var wamid = "wamid.BACKLOG" + i.ToString("D10", CultureInfo.InvariantCulture);
            var from = (16_505_000_000L + i % 50_000).ToString(CultureInfo.InvariantCulture);
            var body = Encoding.UTF8.GetBytes($$$"""{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Customer"},"wa_id":"{{{from}}}"}],"messages":[{"from":"{{{from}}}","id":"{{{wamid}}}","timestamp":"{{{now / 1000}}}","type":"text","text":{"body":"order status please"}}]},"field":"messages"}]}]}""");
            var key = EventIdentity.Key(tenant, Encoding.ASCII.GetBytes("msg:" + wamid));
            var batch = new BatchRecord(tenant, now, [0], [key], 1, body, body.Length);
            long address;
            while (!log.TryAppend(batch, out address))
                log.CommitAndWait();
            DedupeStore.Put(session, key, new DedupeEntry { SeenUnixMs = now, LogAddress = address, Boot = 1 });
            while (!log.TryAppend(new AckRecord(address, 0, bot, tenantHash), out _))
                log.CommitAndWait();
            if (i % 100_000 == 99_999)
                log.CommitAndWait();
            if (i % 1_000_000 == 999_999)
                Console.WriteLine($"{i + 1:N0} events in {started.Elapsed.TotalSeconds:0} s");
        }
        log.CommitAndWait();
        var tail = log.TailAddress;
        dedupe.Return(session);
        await dedupe.CheckpointAsync(() => tail);
        DeliveryPositions.Save(dataDir, tail, [("t1", "bot", tail), ("t1", "dead", begin)]);
        Console.WriteLine($"{count:N0} events and their bot acks written in {started.Elapsed.TotalSeconds:0} s; event log [{begin}, {tail}), {DirBytes(Path.Combine(dataDir, "events")) >> 20} MiB on disk");
    }

    private static long DirBytes(string dir) => new DirectoryInfo(dir).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
}
