using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Outbound;

/// <summary>
/// Lifecycle events across a real process's death: a step that is durable in the outbound log has its event reach
/// the bot exactly once, whether the process is SIGKILLed or SIGTERMed before the event got into the event log.
/// The fault <c>hold-lifecycle-events</c> (<c>FASTINGEST_FAULTS</c>) keeps every event out of the event log in the
/// first run, which is the widest form of "the process died between the step and its event".
/// </summary>
public sealed class LifecycleCrashTests : SendTierTest
{
    private const string Customer = "16505550071";
    private string[] Settings() => ServerProcessHost.OneTenant(Dir.Path, Bot.Url,
        $"--FastIngest:Outbound:GraphUrl={Graph.Url}",
        $"--FastIngest:Tenants:0:Outbound:PhoneNumberIds:0={OutboundTests.Phone}",
        $"--FastIngest:Tenants:0:Outbound:AccessToken={OutboundTests.MetaToken}",
        $"--FastIngest:Tenants:0:Outbound:BotToken={OutboundTests.BotToken}");

    private static HttpClient Client(ServerProcessHost server) => new() { BaseAddress = server.Url };

    private static async Task<string> SendAsync(HttpClient client, string text)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/graph/v23.0/{OutboundTests.Phone}/messages") { Content = new ByteArrayContent(OutboundTests.Text(Customer, text)) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", OutboundTests.BotToken);
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return doc.RootElement.GetProperty("messages")[0].GetProperty("id").GetString()!;
    }

    private static async Task<JsonElement> WaitForStatusAsync(HttpClient client, string id, string status)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/outbound/{id}");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", OutboundTests.BotToken);
            using var response = await client.SendAsync(request);
            var shown = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
            if (response.IsSuccessStatusCode && shown.GetProperty("status").GetString() == status)
                return shown;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{id} stayed {shown}");
            await Task.Delay(50);
        }
    }

    private string[] Lifecycle(string id) => [.. Bot.Delivered
        .Select(r => JsonDocument.Parse(r.Body).RootElement.GetProperty("entry")[0].GetProperty("changes")[0])
        .Where(c => c.GetProperty("field").GetString() == "fastingest_outbound")
        .Select(c => c.GetProperty("value"))
        .Where(v => v.GetProperty("id").GetString() == id)
        .Select(v => v.GetProperty("status").GetString()!)];

    /// <summary>A send accepted and then sent, delivered and read, in a process whose lifecycle events are held back.</summary>
    private async Task<string> SendAndFollowToReadAsync(ServerProcessHost server)
    {
        using var client = Client(server);
        using (var inbound = await client.SendAsync(Payloads.Webhook("t1", Payloads.InboundAt("wamid.CRASHIN", Customer), "app-secret")))
            Assert.Equal(HttpStatusCode.OK, inbound.StatusCode);
        await Bot.WaitForEventAsync("msg:wamid.CRASHIN");
        var id = await SendAsync(client, "before the crash");
        await Graph.WaitForAcceptedAsync(1);
        var wamid = (await WaitForStatusAsync(client, id, "accepted")).GetProperty("wamid").GetString()!;
        var t0 = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await FakeGraphApi.PostStatusesAsync(client, "t1", "app-secret", wamid, Customer, ("sent", t0 + 1), ("delivered", t0 + 2), ("read", t0 + 3));
        await WaitForStatusAsync(client, id, "read"); // every step is durable in the outbound log
        return id;
    }

    /// <summary>After the restart: a second send to the same customer is the sentinel (its lifecycle travels behind the first one's).</summary>
    private async Task AssertEachEventArrivedOnceAsync(string id)
    {
        using var again = await ServerProcessHost.StartAsync(Settings());
        using var client = Client(again);
        var sentinel = await SendAsync(client, "sentinel");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Lifecycle(sentinel).Length == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the sentinel's lifecycle never arrived; the first send's: [{string.Join(", ", Lifecycle(id))}]");
            await Task.Delay(25);
        }
        Assert.Equal(["accepted", "sent", "delivered", "read"], Lifecycle(id));
    }

    [Fact]
    public async Task A_SIGKILL_after_the_steps_and_before_their_events_loses_no_lifecycle_event()
    {
        string id;
        using (var server = await ServerProcessHost.StartAsync(Settings(), new Dictionary<string, string> { ["FASTINGEST_FAULTS"] = "hold-lifecycle-events" }))
        {
            id = await SendAndFollowToReadAsync(server);
            server.Kill();
        }
        Assert.Empty(Lifecycle(id));
        await AssertEachEventArrivedOnceAsync(id);
    }

    [Fact]
    public async Task A_SIGTERM_with_steps_whose_events_are_not_written_yet_loses_none_of_them()
    {
        string id;
        using (var server = await ServerProcessHost.StartAsync(Settings(), new Dictionary<string, string> { ["FASTINGEST_FAULTS"] = "hold-lifecycle-events" }))
        {
            id = await SendAndFollowToReadAsync(server);
            server.Terminate();
            Assert.True(server.Process.WaitForExit(60_000), "did not exit within 60 s of SIGTERM");
            Assert.Equal(0, server.Process.ExitCode);
        }
        await AssertEachEventArrivedOnceAsync(id);
    }
}
