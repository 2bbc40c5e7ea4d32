using FastIngest.Tests.Support;

namespace FastIngest.Tests.Destinations;

/// <summary>
/// One tenant, three webhook destinations, each with its own position, acks, breaker and dead letters: one is down
/// for the whole first part, one refuses one event forever. The bot gets everything at once; the refused event is
/// dead-lettered for its destination alone; replaying that destination's dead letters (through the command line)
/// sends it there and to no other destination.
/// </summary>
public sealed class DestinationIsolationTests
{
    private const string Token = "admin-token-0123456789";

    [Fact]
    public async Task A_dead_destination_never_delays_the_bot_and_a_replay_of_one_destinations_dead_letters_reaches_it_alone()
    {
        await using var bot = await BotServer.StartAsync();
        await using var analytics = await BotServer.StartAsync();
        await using var picky = await BotServer.StartAsync();
        await analytics.GoDownAsync(); // refused connections until it comes back
        picky.Respond = id => id == "msg:wamid.POISON" ? 400 : 200;
        using var dir = new TempDir();
        var settings = DestinationTest.Tenant(0, "t1",
            DestinationTest.Webhook("bot", bot.Url),
            new(DestinationTest.Webhook("analytics", analytics.Url)) { ["BreakDuration"] = "00:00:00.5", ["MaxAttempts"] = "0" },
            DestinationTest.Webhook("picky", picky.Url));
        settings["FastIngest:AdminToken"] = Token;
        await using var server = await DestinationTest.StartAsync(dir.Path, settings);

        (await server.PostAsync("t1", Payloads.Text("wamid.POISON", from: "100"), DestinationTest.AppSecret)).EnsureSuccessStatusCode();
        for (var i = 0; i < 20; i++)
            (await server.PostAsync("t1", Payloads.Text($"wamid.E{i}", from: (200 + i % 5).ToString(System.Globalization.CultureInfo.InvariantCulture)), DestinationTest.AppSecret)).EnsureSuccessStatusCode();

        // Analytics is down all along: the bot has everything, and picky everything but the one it refuses.
        await bot.WaitForDistinctAsync(21);
        await picky.WaitForDistinctAsync(20);
        await Eventually.TrueAsync(() => Task.FromResult(server.Engine.DeadLetters.List("t1", "picky").Count == 1));
        Assert.Empty(analytics.Requests);
        Assert.Equal(0, await DestinationTest.ForwardedAsync(server, "t1", "analytics"));
        Assert.Empty(server.Engine.DeadLetters.List("t1", "bot"));

        var url = server.Client.BaseAddress!.ToString();
        var (code, output) = await Admin.AdminApiTests.Cli("list", "--tenant", "t1", "--destination", "picky", "--url", url, "--token", Token);
        Assert.Equal(0, code);
        Assert.Contains("\"destination\":\"picky\"", output, StringComparison.Ordinal);
        Assert.Contains("\"eventId\":\"msg:wamid.POISON\"", output, StringComparison.Ordinal);
        (code, output) = await Admin.AdminApiTests.Cli("list", "--tenant", "t1", "--destination", "bot", "--url", url, "--token", Token);
        Assert.Contains("\"count\":0", output, StringComparison.Ordinal);

        picky.Respond = _ => 200;
        (code, output) = await Admin.AdminApiTests.Cli("replay", "--tenant", "t1", "--destination", "picky", "--url", url, "--token", Token);
        Assert.Equal(0, code);
        Assert.Contains("\"replayed\":1", output, StringComparison.Ordinal);
        await picky.WaitForEventAsync("msg:wamid.POISON");

        // Sentinel: the same customer's next event is recorded after the replay; once every destination has it, each
        // has read past the replayed record.
        await analytics.ComeBackAsync();
        (await server.PostAsync("t1", Payloads.Text("wamid.AFTER", from: "100"), DestinationTest.AppSecret)).EnsureSuccessStatusCode();
        await bot.WaitForEventAsync("msg:wamid.AFTER");
        await analytics.WaitForEventAsync("msg:wamid.AFTER", TimeSpan.FromSeconds(60));
        await analytics.WaitForDistinctAsync(22, TimeSpan.FromSeconds(60));

        Assert.Single(bot.Delivered, r => r.EventId == "msg:wamid.POISON");
        Assert.Single(analytics.Delivered, r => r.EventId == "msg:wamid.POISON");
        Assert.Single(picky.Delivered, r => r.EventId == "msg:wamid.POISON");
        Assert.Equal(22, bot.Delivered.Count);
    }
}
