using System.Diagnostics;
using System.Globalization;
using System.Text;
using FastIngest.Outbound;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastIngest.Benchmarks.Outbound;

/// <summary>
/// <c>sendbook N DATADIR [INDEXBYTES]</c>: fills <c>DATADIR/outbound</c> and <c>DATADIR/outbound-index</c> with
/// <c>N</c> remembered sends, each queued, submitted and accepted by Meta (a wamid), as the send tier writes them,
/// then checkpoints the index so that they are all out of memory (the state a server is in after running for a
/// while). Start the server on <c>DATADIR</c> afterwards to measure its start-up time and RSS with N sends
/// remembered (with <c>FastIngest:Storage:SendIndexBytes</c> = INDEXBYTES, default 512 MiB, and the default
/// <c>SendMemoryBytes</c>, 16 MiB: a store opened with other sizes than it was written with does not recover and is rebuilt).
/// </summary>
internal static class SendBookFill
{
    public static async Task RunAsync(long count, string dataDir, long indexBytes)
    {
        Directory.CreateDirectory(dataDir);
        var retention = TimeSpan.FromDays(7);
        var started = Stopwatch.StartNew();
        using var index = new SendIndex(Path.Combine(dataDir, "outbound-index"), indexBytes, 16L << 20, retention, TimeProvider.System, NullLogger.Instance);
        using var book = new OutboundBook(Path.Combine(dataDir, "outbound"), index, 64 * 1024 + 4096, 16L << 20, 0, retention, NullLogger.Instance);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var pending = new List<Task>(4096);
        for (long i = 0; i < count; i++)
        {
            var to = "1" + (6_500_000_000L + i).ToString(CultureInfo.InvariantCulture);
            var body = Encoding.UTF8.GetBytes($$$$"""{"messaging_product":"whatsapp","to":"{{{{to}}}}","type":"template","template":{"name":"order_update","language":{"code":"en_US"}}}""");
            var (message, _, durable) = await book.AddAsync("t1", "100000000000001", "order-" + i.ToString(CultureInfo.InvariantCulture), to, "template", null, "v23.0", body, now);
            pending.Add(FollowAsync(book, message, durable, now, i));
            if (pending.Count == 4096)
            {
                await Task.WhenAll(pending);
                pending.Clear();
                while (book.Lifecycle.TryRead(out var item))
                    book.MarkEmitted(item.StepAddress, 1);
            }
            if (i % 1_000_000 == 999_999)
                Console.WriteLine($"{i + 1:N0} sends in {started.Elapsed.TotalSeconds:0} s");
        }
        await Task.WhenAll(pending);
        await book.WhenRecordedAsync();
        // As the server's pump would have: every lifecycle event emitted.
        while (book.Lifecycle.TryRead(out var item))
            book.MarkEmitted(item.StepAddress, 1);
        // An hour later: every answered send has gone quiet and leaves memory; the index covers all of them.
        await book.CheckpointAsync(now + 3_600_000, 0);
        Console.WriteLine($"{count:N0} sends written in {started.Elapsed.TotalSeconds:0} s; held in memory after the checkpoint: {book.Count}; outbound log {DirBytes(Path.Combine(dataDir, "outbound")) >> 20} MiB, index {DirBytes(Path.Combine(dataDir, "outbound-index")) >> 20} MiB");
    }

    private static async Task FollowAsync(OutboundBook book, OutboundMessage message, Task durable, long now, long i)
    {
        await durable.ConfigureAwait(false);
        _ = book.RecordAsync(message, new OutboundStep(OutboundStatus.Submitted, now + 1, 0, 0, null));
        await book.RecordAsync(message, new OutboundStep(OutboundStatus.Accepted, now + 2, 0, 0, null), "wamid.FILL" + i.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
    }

    private static long DirBytes(string dir) => new DirectoryInfo(dir).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
}
