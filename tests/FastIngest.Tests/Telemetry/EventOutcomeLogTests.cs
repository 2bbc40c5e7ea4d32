using System.Net;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Telemetry;

/// <summary>
/// Every accepted event gets one structured line with its final outcome, on the <c>FastIngest.Events</c> category,
/// which an operator can switch off on its own (checked on the real process's console log).
/// </summary>
public sealed class EventOutcomeLogTests
{
    private static async Task<IReadOnlyList<string>> Run(string eventsLevel)
    {
        using var dir = new TempDir();
        await using var bot = await BotServer.StartAsync();
        bot.Respond = id => id!.Contains("REFUSED", StringComparison.Ordinal) ? 400 : 200;
        using var server = await ServerProcessHost.StartAsync(ServerProcessHost.OneTenant(dir.Path, bot.Url,
            $"--Logging:LogLevel:FastIngest.Events={eventsLevel}",
            "--Logging:Console:FormatterName=simple",
            "--Logging:Console:FormatterOptions:SingleLine=true"));
        using var client = new HttpClient { BaseAddress = server.Url };
        foreach (var wamid in new[] { "wamid.LOGGED", "wamid.REFUSED" })
        {
            using var request = Payloads.Webhook("t1", Payloads.Text(wamid), "app-secret");
            Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(request)).StatusCode);
        }
        await bot.WaitForDeliveredAsync(1);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (bot.Requests.Count < 2 && DateTime.UtcNow < deadline)
            await Task.Delay(50);
        await Task.Delay(500); // the console logger writes on its own thread
        return server.Output;
    }

    [Fact]
    public async Task One_line_per_event_with_its_outcome()
    {
        var lines = (await Run("Information")).Where(l => l.Contains("FastIngest.Events", StringComparison.Ordinal)).ToList();
        Assert.Single(lines, l => l.Contains("Event msg:wamid.LOGGED of tenant t1: delivered after 1 attempts", StringComparison.Ordinal));
        Assert.Single(lines, l => l.Contains("Event msg:wamid.REFUSED of tenant t1: dead_lettered after 1 attempts", StringComparison.Ordinal));
        Assert.Equal(2, lines.Count);
    }

    [Fact]
    public async Task The_operator_can_switch_it_off()
        => Assert.DoesNotContain(await Run("None"), l => l.Contains("FastIngest.Events", StringComparison.Ordinal));
}
