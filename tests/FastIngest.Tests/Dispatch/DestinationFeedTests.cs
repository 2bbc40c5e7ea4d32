using FastIngest.Tests.Destinations;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Dispatch;

/// <summary>
/// The shared read of the log (<c>DestinationFeed</c>): a destination that has caught up is fed by the projection
/// follower's one read instead of scanning the log itself; when its queue fills (a slow bot), the feed lets it go to
/// its own scan at the record it could not take, and it comes back once caught up. Across those hand-overs no event
/// is lost, none is delivered twice, and each customer's events keep their order.
/// </summary>
public sealed class DestinationFeedTests
{
    [Fact]
    public async Task A_destination_handed_between_the_shared_read_and_its_own_scan_loses_repeats_and_reorders_nothing()
    {
        await using var bot = await BotServer.StartAsync();
        using var dir = new TempDir();
        var webhook = DestinationTest.Webhook("bot", bot.Url);
        webhook["Concurrency"] = "1";
        webhook["QueueCapacity"] = "2";
        var settings = DestinationTest.Tenant(0, "t1", webhook);
        await using var server = await DestinationTest.StartAsync(dir.Path, settings);
        var feed = server.Engine.Feed;
        await Eventually.TrueAsync(() => Task.FromResult(feed.Attached == 1));

        // A slow bot: the queue (2 events) fills behind it, and the feed must let the destination go.
        var slow = true;
        bot.Delay = _ => Volatile.Read(ref slow) ? TimeSpan.FromMilliseconds(100) : TimeSpan.Zero;
        const int events = 60;
        for (var i = 0; i < events; i++)
            (await server.PostAsync("t1", Payloads.Text($"wamid.F{i:D3}", from: $"{100 + i % 3}"), DestinationTest.AppSecret)).EnsureSuccessStatusCode();
        await Eventually.TrueAsync(() => Task.FromResult(feed.Detaches >= 1));
        Volatile.Write(ref slow, false);

        await bot.WaitForDistinctAsync(events, TimeSpan.FromSeconds(60));
        // Caught up again: fed, and a sentinel per customer comes through the feed.
        await Eventually.TrueAsync(() => Task.FromResult(feed.Attached == 1));
        for (var c = 0; c < 3; c++)
            (await server.PostAsync("t1", Payloads.Text($"wamid.S{c}", from: $"{100 + c}"), DestinationTest.AppSecret)).EnsureSuccessStatusCode();
        for (var c = 0; c < 3; c++)
            await bot.WaitForEventAsync($"msg:wamid.S{c}");

        var delivered = bot.Delivered.Select(r => r.EventId!).ToList();
        Assert.Equal(events + 3, delivered.Count);
        Assert.Equal(events + 3, delivered.Distinct().Count());
        for (var c = 0; c < 3; c++)
        {
            var mine = delivered.Where(id => id.StartsWith("msg:wamid.F", StringComparison.Ordinal) && int.Parse(id[11..], System.Globalization.CultureInfo.InvariantCulture) % 3 == c).ToList();
            Assert.Equal(mine.Order(StringComparer.Ordinal), mine);
        }
    }
}
