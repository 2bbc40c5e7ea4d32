using System.Net;
using System.Net.Http.Headers;
using FastIngest.Ingest;
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
        using var server = await ServerProcessHost.StartAsync(
        [
            $"--FastIngest:DataDir={dir.Path}",
            "--FastIngest:Tenants:0:Id=t1",
            "--FastIngest:Tenants:0:AppSecret=app-secret",
            "--FastIngest:Tenants:0:VerifyToken=v",
            $"--FastIngest:Tenants:0:Forward:Url={bot.Url}",
            "--FastIngest:Tenants:0:Forward:Secret=forward-secret",
            $"--Logging:LogLevel:FastIngest.Events={eventsLevel}",
            "--Logging:Console:FormatterName=simple",
            "--Logging:Console:FormatterOptions:SingleLine=true",
        ]);
        using var client = new HttpClient { BaseAddress = server.Url };
        foreach (var wamid in new[] { "wamid.LOGGED", "wamid.REFUSED" })
        {
            var body = Payloads.Text(wamid);
            using var request = new HttpRequestMessage(HttpMethod.Post, "/webhooks/t1") { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            request.Headers.TryAddWithoutValidation(WebhookSignature.HeaderName, WebhookSignature.Sign("app-secret", body));
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
