using System.Net;
using System.Net.Http.Headers;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Outbound;

/// <summary>
/// What the send tier writes to the log while Meta is failing, read from a real server process's console: a line per
/// tenant and error code at most every 10 s, saying how many were held back, not one per attempt (a Meta outage
/// with a campaign queued would write one warning per send per retry).
/// </summary>
public sealed class SendLogTests : SendTierTest
{
    [Fact]
    public async Task Retries_during_a_Meta_outage_are_logged_once_per_tenant_and_code_not_once_per_attempt()
    {
        using var server = await ServerProcessHost.StartAsync(ServerProcessHost.OneTenant(Dir.Path, Bot.Url,
            $"--FastIngest:Outbound:GraphUrl={Graph.Url}",
            "--FastIngest:Outbound:InitialBackoff=00:00:00.05",
            "--FastIngest:Outbound:MaxBackoff=00:00:00.2",
            $"--FastIngest:Tenants:0:Outbound:PhoneNumberIds:0={OutboundTests.Phone}",
            $"--FastIngest:Tenants:0:Outbound:AccessToken={OutboundTests.MetaToken}",
            $"--FastIngest:Tenants:0:Outbound:BotToken={OutboundTests.BotToken}"));
        using var client = new HttpClient { BaseAddress = server.Url };
        const int Sends = 20;
        for (var i = 0; i < Sends; i++)
        {
            var to = $"1650557{i:D4}";
            Graph.Fail(to, 503, 131000, "Something went wrong", times: 3); // each send fails 3 times, then goes
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/graph/v23.0/{OutboundTests.Phone}/messages") { Content = new ByteArrayContent(OutboundTests.Template(to)) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", OutboundTests.BotToken);
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }
        await Graph.WaitForAcceptedAsync(Sends); // 60 failed attempts, then every send accepted

        int Retried() => server.Output.Count(l => l.Contains("retry in", StringComparison.Ordinal) && l.Contains("attempt", StringComparison.Ordinal));
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Retried() == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "no retry was logged at all");
            await Task.Delay(20);
        }
        Assert.InRange(Retried(), 1, 3); // before: 60, one per failed attempt
        Assert.Equal(Sends * 4, Graph.Sends.Count); // nothing was left out: each send's 3 failures and its success
    }
}
