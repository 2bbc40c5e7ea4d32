using FastIngest.Storage;
using FastIngest.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastIngest.Tests.Storage;

/// <summary>
/// Steady traffic through the dedupe store for many TTLs: the log's head holding only expired marks is cut
/// (<c>ShiftBeginAddress</c>) and its segment files deleted by the next checkpoint, so disk stays bounded; marks
/// within the TTL survive the cuts and a restart.
/// </summary>
public sealed class DedupeReclaimTests
{
    private const int PerRound = 4000; // ~190 KB of records a round
    private static readonly TimeSpan s_ttl = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan s_round = TimeSpan.FromSeconds(1);

    private static DedupeKey Key(int round, int i) => new((ulong)(round * 1_000_000 + i), 0xFEED);

    private static long FilesBytes(string dir) => new DirectoryInfo(dir).EnumerateFiles("hlog.log*").Sum(Length);

    /// <summary>A segment's size, 0 once it is gone: a checkpoint may delete a cut segment while the test lists them.</summary>
    private static long Length(FileInfo f)
    {
        try
        {
            return f.Length;
        }
        catch (FileNotFoundException)
        {
            return 0;
        }
    }

    [Fact]
    public async Task Expired_marks_are_cut_and_disk_stays_bounded_while_live_marks_survive_cuts_and_restarts()
    {
        using var dir = new TempDir();
        var clock = new ManualClock();
        const int rounds = 40;
        long maxLogBytes = 0, maxFileBytes = 0, written = 0;
        using (var store = new DedupeStore(dir.Path, 1 << 16, 1 << 18, NullLogger.Instance, s_ttl, clock))
        {
            for (var r = 0; r < rounds; r++)
            {
                var s = store.Rent();
                var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
                for (var i = 0; i < PerRound; i++)
                    DedupeStore.Put(s, Key(r, i), new DedupeEntry { SeenUnixMs = now, LogAddress = r, Boot = 1 });
                store.Return(s);
                written += PerRound;
                await store.CheckpointAsync(() => 0);
                maxLogBytes = Math.Max(maxLogBytes, store.LogBytes);
                maxFileBytes = Math.Max(maxFileBytes, FilesBytes(dir.Path));
                clock.Advance(s_round);
            }

            Assert.True(store.BeginAddress > 0, "the head was never cut");
            // 40 rounds were written; the TTL covers 5 of them. Bounded: what the TTL needs plus slack (sampling
            // granularity, page snapping, the in-memory part), far below everything written.
            var totalBytes = written * 48L;
            Assert.True(maxLogBytes < totalBytes / 3, $"log peaked at {maxLogBytes} bytes of {totalBytes} written");
            Assert.True(maxFileBytes < totalBytes / 3, $"files peaked at {maxFileBytes} bytes of {totalBytes} written");

            var session = store.Rent();
            Assert.False(DedupeStore.TryGet(session, Key(0, 7), out _)); // cut: long expired
            for (var r = rounds - 4; r < rounds; r++)
                Assert.True(DedupeStore.TryGet(session, Key(r, 7), out _), $"round {r} is within the TTL and must still count");
            store.Return(session);
        }

        using (var store = new DedupeStore(dir.Path, 1 << 16, 1 << 18, NullLogger.Instance, s_ttl, clock))
        {
            Assert.True(store.BeginAddress > 0, "the cut did not survive the restart");
            var session = store.Rent();
            for (var r = rounds - 4; r < rounds; r++)
                Assert.True(DedupeStore.TryGet(session, Key(r, 9), out _), $"round {r} lost in the restart");
            Assert.False(DedupeStore.TryGet(session, Key(1, 9), out _));
            store.Return(session);
        }
    }

    [Fact]
    public void The_age_map_keeps_a_sample_per_64th_of_the_TTL_and_survives_a_restart()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "age-map");
        var map = new LogAgeMap(path, TimeSpan.FromSeconds(64));
        for (var t = 0; t < 200; t++)
            map.Record(t * 500L, 1000L + t); // every 0.5 s; spacing is 1 s
        Assert.Equal(100, map.Count);
        Assert.Equal(0, map.ExpiredBelow(63_999));
        Assert.Equal(1000, map.ExpiredBelow(64_000));
        Assert.Equal(1000 + 20, new LogAgeMap(path, TimeSpan.FromSeconds(64)).ExpiredBelow(64_000 + 10_000));
        map.Record(200_000, 500); // an address that went backwards (a restored older store) is not a valid sample
        Assert.Equal(90, new LogAgeMap(path, TimeSpan.FromSeconds(64)).Count); // 10 dropped by the cut above, none added
    }
}
