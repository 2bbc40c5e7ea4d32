using FastIngest.Tests.Destinations;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Dispatch;

/// <summary>
/// Each destination's delivered watermark (<c>DataDir/positions</c>, written at every checkpoint): after a restart a
/// destination's reader starts there, and only acks above the watermarks are held in memory, so one destination that
/// is far behind (its events keep the log from being cut) costs no memory for the acks of the others.
/// </summary>
public sealed class DeliveryPositionsTests
{
    [Fact]
    public async Task After_a_restart_behind_a_dead_destination_the_acks_of_the_healthy_one_are_not_held_and_nothing_is_sent_again()
    {
        await using var bot = await BotServer.StartAsync();
        await using var dead = await BotServer.StartAsync();
        await dead.GoDownAsync();
        using var dir = new TempDir();
        var settings = DestinationTest.Tenant(0, "t1", DestinationTest.Webhook("bot", bot.Url), DestinationTest.Webhook("dead", dead.Url));
        const int events = 40;
        await using (var server = await DestinationTest.StartAsync(dir.Path, settings))
        {
            for (var i = 0; i < events; i++)
                (await server.PostAsync("t1", Payloads.Text($"wamid.P{i}", from: $"{100 + i % 4}"), DestinationTest.AppSecret)).EnsureSuccessStatusCode();
            await bot.WaitForDistinctAsync(events);
            // Every delivery acked (nothing outstanding), then a checkpoint records the positions. The stop's final
            // checkpoint would too, but on a loaded machine it can miss the shutdown budget, and positions are only a
            // start-up shortcut (the acks in the log still hold): this test is about using them, not about the budget.
            var toBot = server.Engine.Dispatchers.Single(d => d.Destination.Name == "bot");
            await Eventually.TrueAsync(() => Task.FromResult(toBot.LowWater == toBot.ScannedUntil));
            await server.Engine.CheckpointAndTruncateAsync();
        }

        await using (var again = await DestinationTest.StartAsync(dir.Path, settings))
        {
            // The dead destination kept the whole log; the bot's acks in it are below the bot's watermark.
            Assert.Equal(0, again.Engine.AcksKeptAtStart);
            Assert.Equal(events, again.Engine.AcksSkippedAtStart);

            // Sentinels from every customer: once the bot has them it has read everything after its watermark.
            for (var c = 0; c < 4; c++)
                (await again.PostAsync("t1", Payloads.Text($"wamid.S{c}", from: $"{100 + c}"), DestinationTest.AppSecret)).EnsureSuccessStatusCode();
            for (var c = 0; c < 4; c++)
                await bot.WaitForEventAsync($"msg:wamid.S{c}");
            Assert.Equal(events + 4, bot.Delivered.Count);
            Assert.Equal(events + 4, bot.Delivered.Select(r => r.EventId).Distinct().Count());

            // The dead destination, back, still gets everything it never had, once.
            await dead.ComeBackAsync();
            await dead.WaitForDistinctAsync(events + 4, TimeSpan.FromSeconds(60));
            Assert.Equal(events + 4, dead.Delivered.Count);
        }
    }
}
