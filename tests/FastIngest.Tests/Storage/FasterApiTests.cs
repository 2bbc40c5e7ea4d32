using FastIngest.Storage;
using FastIngest.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastIngest.Tests.Storage;

/// <summary>
/// Exercises every FASTER API the engine uses (FasterLog: enqueue, group commit, scan, wait, truncate, recovery;
/// FasterKV: sessions, read, upsert, pending reads from disk, full checkpoint, recovery), so that the pinned
/// System.Interactive.Async under Microsoft.FASTER.Core 2.6.5 is proven at run time.
/// </summary>
public sealed class FasterApiTests
{
    private static readonly byte[] s_tenant = "t1"u8.ToArray();

    private static BatchRecord Batch(byte[] body, int events = 1)
    {
        var indices = Enumerable.Range(0, events).ToArray();
        var keys = indices.Select(i => new DedupeKey((ulong)i + 1, 7)).ToArray();
        return new BatchRecord(s_tenant, 1234, indices, keys, events, body, body.Length);
    }

    [Fact]
    public async Task EventLog_commits_scans_truncates_and_recovers()
    {
        using var dir = new TempDir();
        long first, second, third;
        using (var log = new EventLog(dir.Path, "events", 1 << 16, 1 << 24, NullLogger.Instance))
        {
            Assert.True(log.TryAppend(Batch("{\"a\":1}"u8.ToArray(), 2), out first));
            Assert.True(log.TryAppend(new AckRecord(first, 1), out second));
            Assert.True(log.TryAppend(Batch("{\"b\":2}"u8.ToArray()), out third));
            await log.WaitForCommitAsync(third).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(log.CommittedUntilAddress > third);

            var seen = ReadAll(log, log.BeginAddress);
            Assert.Equal([first, second, third], seen.Select(s => s.Address));
            var payload = StoredPayload.Read(seen[0].Bytes);
            Assert.Equal("{\"a\":1}", System.Text.Encoding.UTF8.GetString(payload.Body));
            Assert.Equal(2, payload.EventCount);
            Assert.Equal(new DedupeKey(2, 7), payload.KeyAt(1));
            Assert.Equal(1, payload.EventIndexAt(1));
            var ack = AckRecord.Read(seen[1].Bytes);
            Assert.Equal((first, 1), (ack.BatchAddress, ack.EventIndex));

            // FasterLogScanIterator.UnsafeGetNext / UnsafeRelease (LogScan.GetNextIf: a destination's reader looks at
            // every record in place and copies out only its tenant's batches): the same records and addresses, the
            // wanted ones copied byte for byte, the others not copied at all.
            using (var scan = log.Scan(log.BeginAddress))
            {
                var looked = new List<(long Address, long Next, byte[]? Copy)>();
                while (scan.GetNextIf(0, static (_, r) => LogRecordFormat.TypeOf(r) == LogRecordType.Batch, System.Buffers.MemoryPool<byte>.Shared, out var owner, out var length, out var at, out var next))
                {
                    using (owner)
                        looked.Add((at, next, owner?.Memory.Span[..length].ToArray()));
                }
                var nexts = new List<long>();
                using (var copying = log.Scan(log.BeginAddress))
                {
                    while (copying.GetNext(System.Buffers.MemoryPool<byte>.Shared, out var owner, out _, out _, out var next))
                    {
                        owner.Dispose();
                        nexts.Add(next);
                    }
                }
                Assert.Equal([first, second, third], looked.Select(l => l.Address));
                Assert.Equal(nexts, looked.Select(l => l.Next));
                Assert.Equal(seen[0].Bytes, looked[0].Copy);
                Assert.Null(looked[1].Copy);
                Assert.Equal(seen[2].Bytes, looked[2].Copy);
            }

            log.TruncateUntil(second);
            log.CommitAndWait();
        }

        using (var log = new EventLog(dir.Path, "events", 1 << 16, 1 << 24, NullLogger.Instance))
        {
            Assert.Equal(second, log.BeginAddress);
            Assert.True(log.CommittedUntilAddress > third);
            var seen = ReadAll(log, log.BeginAddress);
            Assert.Equal([second, third], seen.Select(s => s.Address));
            // A random read (FasterLog.ReadAsync, the send tier's cold sends): from disk after the reopen, the same bytes
            // as the scan's; below the begin (truncated) or past the committed tail, nothing.
            Assert.Equal(seen[1].Bytes, await log.ReadAsync(third));
            Assert.Null(await log.ReadAsync(first));
            Assert.Null(await log.ReadAsync(log.CommittedUntilAddress + 64));

            // A live iterator wakes up for a record committed after it started waiting.
            using var iter = log.Scan(log.CommittedUntilAddress);
            var wait = iter.WaitAsync().AsTask();
            Assert.True(log.TryAppend(Batch("{}"u8.ToArray()), out var fourth));
            await wait.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(iter.GetNext(out byte[] entry, out _, out var address));
            Assert.Equal(fourth, address);
            Assert.Equal(LogRecordType.Batch, LogRecordFormat.TypeOf(entry));
        }
    }

    [Fact]
    public async Task A_commit_waiter_is_released_when_CommitAndWait_made_its_record_durable_first()
    {
        // CommitAndWait (checkpoints, shutdown) commits through FASTER directly. FASTER then drops the commit thread's
        // own request for the same records as redundant; before, the commit thread took that for "nothing to do" and
        // went to sleep, and a waiter for those records was released only by some later append: on a quiet log (the
        // send tier's), never. Seen as a send's step waiting forever and a GET hanging 100 s in the send tier's tests.
        using var dir = new TempDir();
        using var log = new EventLog(dir.Path, "events", 1 << 16, 1 << 24, NullLogger.Instance);
        log.HoldCommits(); // the commit thread wakes for the append below and waits here
        Assert.True(log.TryAppend(Batch("{\"x\":1}"u8.ToArray()), out var address));
        log.CommitAndWait(); // FASTER's own commit makes it durable
        var waiting = log.WaitForCommitAsync(address).AsTask();
        log.ReleaseCommits(); // the commit thread's request is now redundant
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!waiting.IsCompleted)
        {
            Assert.True(DateTime.UtcNow < deadline, "the waiter of a record CommitAndWait made durable was never released");
            await Task.Delay(10);
        }
        await waiting;
    }

    [Fact]
    public async Task An_event_log_copied_mid_run_recovers_every_committed_record_though_its_commit_metadata_file_lags()
    {
        // FASTER's fast-commit mode with the metadata file written at most once a second (SparseLogCommitManager):
        // a crash image taken right after many group commits holds an older metadata file, and recovery must scan
        // forward to the newest commit record in the log itself.
        using var dir = new TempDir();
        var source = dir.Sub("live");
        var image = dir.Sub("image");
        var addresses = new List<long>();
        using (var log = new EventLog(source, "events", 1 << 16, 1 << 24, NullLogger.Instance))
        {
            for (var i = 0; i < 300; i++)
            {
                Assert.True(log.TryAppend(Batch(System.Text.Encoding.UTF8.GetBytes($"{{\"n\":{i}}}")), out var at));
                addresses.Add(at);
                await log.WaitForCommitAsync(at).AsTask().WaitAsync(TimeSpan.FromSeconds(10)); // one group commit each
                await Task.Yield(); // off the log's commit thread
            }
            // The process "dies" here: the files as they are now, with no clean close.
            Directory.CreateDirectory(image);
            foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
            {
                var to = Path.Combine(image, Path.GetRelativePath(source, file));
                Directory.CreateDirectory(Path.GetDirectoryName(to)!);
                File.Copy(file, to);
            }
        }
        using (var recovered = new EventLog(image, "events", 1 << 16, 1 << 24, NullLogger.Instance))
        {
            Assert.Empty(recovered.Damage);
            Assert.Equal(addresses, ReadAll(recovered, recovered.BeginAddress).Select(r => r.Address));
        }
    }

    [Fact]
    public void EventLog_refuses_a_record_larger_than_a_page()
    {
        using var dir = new TempDir();
        using var log = new EventLog(dir.Path, "events", 1 << 16, 1 << 24, NullLogger.Instance);
        Assert.Throws<InvalidOperationException>(() => log.TryAppend(Batch(new byte[log.MaxRecordBytes + 1]), out _));
    }

    [Fact]
    public async Task DedupeStore_reads_upserts_checkpoints_and_recovers_including_keys_read_back_from_disk()
    {
        using var dir = new TempDir();
        const int keys = 200_000; // ~10 MB of records: more than the 1 MiB in memory, so reads go to disk
        using (var store = new DedupeStore(dir.Path, 1 << 16, 1 << 20, NullLogger.Instance))
        {
            Assert.Equal(0, store.ReplayFrom);
            var s = store.Rent();
            for (var i = 0; i < keys; i++)
                DedupeStore.Put(s, new DedupeKey((ulong)i, 1), new DedupeEntry { SeenUnixMs = i, LogAddress = i * 10L, Boot = 1 });
            Assert.True(DedupeStore.TryGet(s, new DedupeKey(5, 1), out var early)); // on disk by now
            Assert.Equal(50, early.LogAddress);
            Assert.False(DedupeStore.TryGet(s, new DedupeKey(5, 2), out _));
            store.Return(s);
            Assert.Equal(4242, await store.CheckpointAsync(() => 4242));
        }

        using (var store = new DedupeStore(dir.Path, 1 << 16, 1 << 20, NullLogger.Instance))
        {
            Assert.Equal(4242, store.ReplayFrom);
            var s = store.Rent();
            Assert.True(DedupeStore.TryGet(s, new DedupeKey(keys - 1, 1), out var last));
            Assert.Equal((keys - 1) * 10L, last.LogAddress);
            Assert.True(DedupeStore.TryGet(s, new DedupeKey(3, 1), out var old));
            Assert.Equal(3, old.SeenUnixMs);
            store.Return(s);
        }
    }

    private static List<(long Address, byte[] Bytes)> ReadAll(EventLog log, long from)
    {
        var result = new List<(long, byte[])>();
        using var iter = log.Scan(from, log.CommittedUntilAddress);
        while (iter.GetNext(out byte[] entry, out var length, out var address))
            result.Add((address, entry.AsSpan(0, length).ToArray()));
        return result;
    }
}
