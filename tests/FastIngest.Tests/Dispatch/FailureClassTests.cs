using System.Net;
using System.Text.Json;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Dispatch;

/// <summary>
/// Each failure class against a real bot: permanent refusals go straight to the dead-letter queue, server errors
/// retry until <c>MaxAttempts</c>, <c>Retry-After</c> is honoured, and a dead letter survives a restart and can be
/// replayed to the bot with its original event id.
/// </summary>
public sealed class FailureClassTests : IAsyncLifetime
{
    private const string Token = "admin-token-0123456789";
    private readonly TempDir _dir = new();
    private BotServer _bot = null!;

    public async Task InitializeAsync() => _bot = await BotServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _bot.DisposeAsync();
        _dir.Dispose();
    }

    private Task<IngestServer> Start(IDictionary<string, string?>? extra = null, TimeProvider? time = null)
    {
        var settings = new Dictionary<string, string?> { ["FastIngest:AdminToken"] = Token };
        foreach (var kv in extra ?? new Dictionary<string, string?>())
            settings[kv.Key] = kv.Value;
        return IngestServer.StartAsync(_dir.Path, [new TestTenant("t1", ForwardUrl: _bot.Url)], settings, time: time);
    }

    private static async Task<JsonElement> Admin(IngestServer server, HttpMethod method, string path, HttpStatusCode expected = HttpStatusCode.OK)
    {
        var (status, body) = await server.AdminAsync(method, path, Token);
        Assert.True(expected == status, $"{method} {path}: {(int)status} {body}");
        return body;
    }

    private static async Task<JsonElement> WaitForDeadLetters(IngestServer server, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var list = await Admin(server, HttpMethod.Get, "/admin/deadletters");
            if (list.GetProperty("count").GetInt32() >= count)
                return list;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"dead letters: {list}");
            await Task.Delay(50);
        }
    }

    [Theory]
    [InlineData(400)]
    [InlineData(404)]
    [InlineData(410)]
    [InlineData(422)]
    public async Task A_4xx_goes_to_the_dead_letter_queue_without_retries(int status)
    {
        _bot.Respond = id => id == "msg:wamid.SENTINEL" ? 200 : status;
        await using var server = await Start();
        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("t1", Payloads.Text("wamid.REFUSED"), "app-secret")).StatusCode);

        var list = await WaitForDeadLetters(server, 1);
        var entry = list.GetProperty("items")[0];
        Assert.Equal("msg:wamid.REFUSED", entry.GetProperty("eventId").GetString());
        Assert.Equal("t1", entry.GetProperty("tenant").GetString());
        Assert.Equal(1, entry.GetProperty("attempts").GetInt32());
        Assert.Contains($"HTTP {status}", entry.GetProperty("reason").GetString(), StringComparison.Ordinal);
        // The same customer's next message travels behind the refused one: once it is in, no retry is coming.
        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("t1", Payloads.Text("wamid.SENTINEL"), "app-secret")).StatusCode);
        await _bot.WaitForEventAsync("msg:wamid.SENTINEL");
        Assert.Single(_bot.Requests, r => r.EventId == "msg:wamid.REFUSED");
    }

    [Theory]
    [InlineData(500)]
    [InlineData(503)]
    [InlineData(408)]
    public async Task Server_errors_retry_until_MaxAttempts_then_dead_letter(int status)
    {
        _bot.Respond = _ => status;
        await using var server = await Start(new Dictionary<string, string?> { ["FastIngest:Tenants:0:Forward:MaxAttempts"] = "3" });
        await server.PostAsync("t1", Payloads.Text("wamid.FLAKY"), "app-secret");

        var entry = (await WaitForDeadLetters(server, 1)).GetProperty("items")[0];
        Assert.Equal(3, entry.GetProperty("attempts").GetInt32());
        Assert.Contains("MaxAttempts", entry.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Equal(3, _bot.Requests.Count);
    }

    [Fact]
    public async Task Events_older_than_MaxAge_dead_letter_on_their_next_failure()
    {
        _bot.Respond = _ => 500;
        await using var server = await Start(new Dictionary<string, string?> { ["FastIngest:Tenants:0:Forward:MaxAge"] = "00:00:00.3" });
        await server.PostAsync("t1", Payloads.Text("wamid.OLD"), "app-secret");
        var entry = (await WaitForDeadLetters(server, 1)).GetProperty("items")[0];
        Assert.Contains("MaxAge", entry.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.True(_bot.Requests.Count >= 2, "retried while young");
    }

    [Theory]
    [InlineData(429)]
    [InlineData(503)]
    public async Task Retry_After_is_honoured_over_the_backoff(int status)
    {
        // On the server's own clock, moved by the test: the retry comes at the bot's 1 s, not the 50 ms backoff.
        var clock = new ManualClock();
        var calls = 0;
        _bot.Respond = id => id == "msg:wamid.SLOWDOWN" && Interlocked.Increment(ref calls) == 1 ? status : 200;
        _bot.RetryAfter = "1";
        await using var server = await Start(time: clock);
        await server.PostAsync("t1", Payloads.Text("wamid.SLOWDOWN"), "app-secret");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (server.Engine.DispatchStats()[0].Retried == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the first attempt never failed");
            await Task.Delay(10);
        }

        clock.Advance(TimeSpan.FromMilliseconds(900)); // the backoff (50-200 ms) is long past, Retry-After is not
        if (status == 429)
        {
            // A 429 speaks for the whole bot: the breaker holds every send until the bot's time is up.
            Assert.Equal(FastIngest.Dispatch.CircuitState.Open, server.Engine.DispatchStats()[0].Circuit);
        }
        else
        {
            // A 503 holds this customer only: another customer's message (the sentinel) goes through meanwhile.
            await server.PostAsync("t1", Payloads.Text("wamid.SENTINEL", from: "16505559876"), "app-secret");
            await _bot.WaitForEventAsync("msg:wamid.SENTINEL");
        }
        Assert.Single(_bot.Requests, r => r.EventId == "msg:wamid.SLOWDOWN");

        clock.Advance(TimeSpan.FromMilliseconds(100));
        await _bot.WaitForEventAsync("msg:wamid.SLOWDOWN");
        Assert.Equal(2, _bot.Requests.Count(r => r.EventId == "msg:wamid.SLOWDOWN"));
    }

    [Fact]
    public async Task Dead_letters_survive_a_restart_and_replay_to_the_bot_with_the_same_event_id()
    {
        _bot.Respond = _ => 400;
        byte[] forwarded;
        await using (var server = await Start())
        {
            await server.PostAsync("t1", Payloads.Text("wamid.LATER", text: "keep me"), "app-secret");
            await server.PostAsync("t1", Payloads.Text("wamid.OTHER"), "app-secret");
            await WaitForDeadLetters(server, 2);
            forwarded = _bot.Requests.First(r => r.EventId == "msg:wamid.LATER").Body;
        }

        _bot.Respond = _ => 200;
        await using (var server = await Start())
        {
            var list = await Admin(server, HttpMethod.Get, "/admin/deadletters?tenant=t1");
            Assert.Equal(2, list.GetProperty("count").GetInt32());
            var id = list.GetProperty("items").EnumerateArray().First(e => e.GetProperty("eventId").GetString() == "msg:wamid.LATER").GetProperty("id").GetInt64();

            var shown = await Admin(server, HttpMethod.Get, $"/admin/deadletters/{id}");
            Assert.Equal(JsonDocument.Parse(forwarded).RootElement.GetRawText(), shown.GetProperty("payload").GetRawText());

            var replay = await Admin(server, HttpMethod.Post, $"/admin/deadletters/replay?id={id}");
            Assert.Equal(1, replay.GetProperty("replayed").GetInt32());
            var delivered = await _bot.WaitForDeliveredAsync(1);
            Assert.Equal("msg:wamid.LATER", delivered[0].EventId);
            Assert.Equal(forwarded, delivered[0].Body);

            var left = await Admin(server, HttpMethod.Get, "/admin/deadletters");
            Assert.Equal(1, left.GetProperty("count").GetInt32());
            var otherId = left.GetProperty("items")[0].GetProperty("id").GetInt64();
            await Admin(server, HttpMethod.Delete, $"/admin/deadletters/{otherId}");
            await Admin(server, HttpMethod.Delete, $"/admin/deadletters/{otherId}", HttpStatusCode.NotFound);
            Assert.Equal(0, (await Admin(server, HttpMethod.Get, "/admin/deadletters")).GetProperty("count").GetInt32());
        }

        await using (var server = await Start())
        {
            Assert.Equal(0, (await Admin(server, HttpMethod.Get, "/admin/deadletters")).GetProperty("count").GetInt32());
            // The replayed event was acked: not forwarded again after the restart (the sentinel, same customer, is
            // read from the log after it).
            await server.PostAsync("t1", Payloads.Text("wamid.SENTINEL"), "app-secret");
            await _bot.WaitForEventAsync("msg:wamid.SENTINEL");
            Assert.Single(_bot.Delivered, r => r.EventId == "msg:wamid.LATER");
            Assert.Equal(2, _bot.Delivered.Count);
        }
    }
}
