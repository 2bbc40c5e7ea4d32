using System.Net;
using FastIngest.Configuration;
using FastIngest.Storage;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Storage;

/// <summary>
/// A footprint that fits the disk it is given. Before, on a 40 MB disk the first checkpoint (~59 MB of index files
/// at the default sizes) filled it and took the event log down, and the quota was only checked by a 1 s sample that
/// let a burst overshoot it. Now a checkpoint that would not fit is skipped (counted, logged once, on
/// <c>/readyz</c>) and the quota holds at append time.
/// </summary>
[Collection(nameof(RunsAlone))] // a full disk stalls the process-wide storage writer
public sealed class FootprintTests : BotTest
{
    [Fact]
    public async Task On_a_disk_too_small_for_a_checkpoint_it_is_skipped_and_webhooks_go_on()
    {
        // Default index sizes except the dedupe store's: one checkpoint writes ~25 MiB, with the log's reserve it needs
        // ~57 MiB free, on a 40 MiB disk.
        using var disk = SmallDisk.Mount(40);
        await using var server = await IngestServer.StartAsync(disk.DataDir, [new TestTenant("acme", ForwardUrl: Bot.Url)]);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        string text;
        while (!(text = await (await server.Client.GetAsync("/readyz")).Content.ReadAsStringAsync()).Contains("checkpoint skipped", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, $"no checkpoint skipped; /readyz: {text}");
            await Task.Delay(100);
        }
        for (var i = 0; i < 53; i++)
            Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", Payloads.Text($"wamid.SMALL{i:D3}", from: $"1555{i % 10:D4}"), "app-secret")).StatusCode);
        await Bot.WaitForDistinctAsync(53);
        var ready = await (await server.Client.GetAsync("/readyz")).Content.ReadAsStringAsync();
        Assert.DoesNotContain("writes failing", ready, StringComparison.Ordinal);
        Assert.Null(server.Engine.StorageStall);
        Assert.True(server.Engine.CheckpointsSkipped >= 1);
        Assert.Contains("fastingest_checkpoints_skipped_total", await server.Client.GetStringAsync("/metrics"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_quota_holds_at_append_time_not_a_second_later()
    {
        using var dir = new TempDir();
        var sizes = new StorageOptions { LogMemoryBytes = 2 << 20, DedupeIndexBytes = 1 << 16, StateIndexBytes = 1 << 16, WindowIndexBytes = 1 << 16 };
        var quota = StorageFootprint.FixedDiskBytes(sizes) + (8L << 20);
        var settings = new Dictionary<string, string?>
        {
            ["FastIngest:Storage:LogMemoryBytes"] = sizes.LogMemoryBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["FastIngest:Storage:StateIndexBytes"] = "65536",
            ["FastIngest:Storage:WindowIndexBytes"] = "65536",
            ["FastIngest:Storage:MaxDiskBytes"] = quota.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["FastIngest:CheckpointInterval"] = "01:00:00",
        };
        // The bot is unreachable: nothing is delivered, so nothing is truncated; the log only grows.
        await using var server = await IngestServer.StartAsync(dir.Path, [new TestTenant("acme", ForwardUrl: "http://127.0.0.1:9/down")], settings);
        var padding = new string('x', 60_000);
        var next = 0;
        var refused = 0;
        var senders = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            while (Volatile.Read(ref refused) == 0)
            {
                var n = Interlocked.Increment(ref next);
                Assert.True(n < 5000, "the quota never refused a webhook");
                using var response = await server.PostAsync("acme", Payloads.Text($"wamid.Q{n:D5}", text: padding), "app-secret");
                if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
                    Interlocked.Exchange(ref refused, 1);
                else
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
        })).ToArray();
        await Task.WhenAll(senders);
        server.Engine.Log.CommitAndWait();
        var onDisk = new DirectoryInfo(dir.Path).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
        // What was in flight when the quota was reached may still land: 8 requests of ~60 KB, and page rounding.
        Assert.True(onDisk <= quota + (2L << 20), $"DataDir holds {onDisk} bytes, over the quota {quota} by {onDisk - quota}");
    }
}
