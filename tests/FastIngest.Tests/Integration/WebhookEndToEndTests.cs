using System.Net;
using System.Text;
using FastIngest.Ingest;
using FastIngest.Parsing;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Integration;

/// <summary>The real server on loopback, a real HTTP server as the bot, signed payloads in, forwards out.</summary>
public sealed class WebhookEndToEndTests : IAsyncLifetime
{
    private readonly TempDir _data = new();
    private BotServer _bot = null!;

    public async Task InitializeAsync() => _bot = await BotServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _bot.DisposeAsync();
        _data.Dispose();
    }

    private TestTenant Tenant(string id = "acme") => new(id, ForwardUrl: _bot.Url);

    /// <summary>
    /// Posts a sentinel message from <paramref name="from"/> and waits for it: the same customer's events are
    /// delivered in log order, so anything of that customer recorded before it has arrived too.
    /// </summary>
    private async Task SentinelAsync(IngestServer server, string from, string tenant = "acme")
    {
        var wamid = $"wamid.SENTINEL{from}";
        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync(tenant, Payloads.Text(wamid, from: from), "app-secret")).StatusCode);
        await _bot.WaitForEventAsync("msg:" + wamid);
    }

    private IEnumerable<string?> NonSentinels => _bot.Requests.Select(r => r.EventId).Where(id => !id!.Contains("SENTINEL", StringComparison.Ordinal));

    [Fact]
    public async Task Handshake_answers_the_challenge_for_the_right_token_only()
    {
        await using var server = await IngestServer.StartAsync(_data.Path, [Tenant()]);

        var ok = await server.Client.GetAsync("/webhooks/acme?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444");
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal("1158201444", await ok.Content.ReadAsStringAsync());
        Assert.Equal("text/plain", ok.Content.Headers.ContentType?.MediaType);

        var wrongToken = await server.Client.GetAsync("/webhooks/acme?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1");
        Assert.Equal(HttpStatusCode.Forbidden, wrongToken.StatusCode);
        var wrongMode = await server.Client.GetAsync("/webhooks/acme?hub.mode=unsubscribe&hub.verify_token=verify-me&hub.challenge=1");
        Assert.Equal(HttpStatusCode.Forbidden, wrongMode.StatusCode);
        var noToken = await server.Client.GetAsync("/webhooks/acme?hub.mode=subscribe&hub.challenge=1");
        Assert.Equal(HttpStatusCode.Forbidden, noToken.StatusCode);
        var unknown = await server.Client.GetAsync("/webhooks/nobody?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task Signed_payload_is_forwarded_once_Meta_shaped_and_signed_with_the_forward_secret()
    {
        await using var server = await IngestServer.StartAsync(_data.Path, [Tenant()]);
        var body = Payloads.Text("wamid.ONE", text: "héllo 👋");

        var response = await server.PostAsync("acme", body, "app-secret");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var got = Assert.Single(await _bot.WaitForDeliveredAsync(1));
        Assert.Equal("msg:wamid.ONE", got.EventId);
        Assert.Equal("application/json", got.ContentType);
        Assert.Equal(SignatureCheck.Valid, WebhookSignature.Verify(got.Signature, "forward-secret"u8, got.Body));
        using var events = new EventBuffer();
        Assert.True(WebhookParser.Parse(got.Body, events).Success);
        var e = Assert.Single(events.Events.ToArray());
        Assert.Equal("wamid.ONE", e.Id.GetString(got.Body));
        Assert.Equal("héllo 👋", e.TextBody.GetString(got.Body));
        Assert.Equal(Payloads.PhoneNumberId, e.PhoneNumberId.GetString(got.Body));
        Assert.Equal("16505551234", events.Contacts[e.MatchedContact].WaId.GetString(got.Body));

        await SentinelAsync(server, "16505551234");
        Assert.Single(NonSentinels);
    }

    [Fact]
    public async Task Same_payload_twice_and_same_event_in_two_payloads_are_forwarded_once()
    {
        await using var server = await IngestServer.StartAsync(_data.Path, [Tenant()]);
        var first = Payloads.Messages(("wamid.A", "111", "a"));
        var overlapping = Payloads.Messages(("wamid.A", "111", "a, other bytes"), ("wamid.B", "222", "b"));
        var statuses = Payloads.Statuses(("wamid.OUT", "sent", "111"), ("wamid.OUT", "delivered", "111"), ("wamid.OUT", "sent", "111"));

        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", first, "app-secret")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", first, "app-secret")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", overlapping, "app-secret")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", statuses, "app-secret")).StatusCode);

        await _bot.WaitForDeliveredAsync(4);
        await SentinelAsync(server, "111");
        await SentinelAsync(server, "222");
        Assert.Equal(
            ["msg:wamid.A", "msg:wamid.B", "status:wamid.OUT:delivered", "status:wamid.OUT:sent"],
            NonSentinels.Order());
    }

    [Fact]
    public async Task Concurrent_deliveries_of_one_event_are_forwarded_once()
    {
        await using var server = await IngestServer.StartAsync(_data.Path, [Tenant()]);
        var body = Payloads.Text("wamid.RACE");

        var responses = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => server.PostAsync("acme", body, "app-secret")));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        await _bot.WaitForDeliveredAsync(1);
        await SentinelAsync(server, "16505551234");
        Assert.Single(NonSentinels);
    }

    [Theory]
    [InlineData("wrong-secret", null)]
    [InlineData(null, null)]
    [InlineData(null, "sha256=zz")]
    [InlineData(null, "md5=0123")]
    public async Task Bad_signature_is_401_and_nothing_is_recorded_or_forwarded(string? secret, string? rawHeader)
    {
        await using var server = await IngestServer.StartAsync(_data.Path, [Tenant()]);

        var bad = await server.PostAsync("acme", Payloads.Text("wamid.FORGED"), secret, rawHeader);
        Assert.Equal(HttpStatusCode.Unauthorized, bad.StatusCode);

        // A good payload from the same customer, sent after it, is the sentinel: it arrives alone, so the forged one
        // never entered the log (it would have been delivered first).
        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", Payloads.Text("wamid.REAL"), "app-secret")).StatusCode);
        await _bot.WaitForEventAsync("msg:wamid.REAL");
        Assert.Equal(["msg:wamid.REAL"], _bot.Requests.Select(r => r.EventId));
    }

    [Fact]
    public async Task Signature_of_another_tenant_is_401()
    {
        await using var server = await IngestServer.StartAsync(_data.Path, [Tenant("a"), new TestTenant("b", AppSecret: "b-secret", ForwardUrl: _bot.Url)]);
        var response = await server.PostAsync("a", Payloads.Text("wamid.X"), "b-secret");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task Bot_failing_for_a_while_gets_the_event_once_it_recovers_and_only_once()
    {
        await using var server = await IngestServer.StartAsync(_data.Path, [Tenant()]);
        var failures = 0;
        _bot.Respond = _ => Interlocked.Increment(ref failures) <= 3 ? 500 : 200;

        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", Payloads.Text("wamid.FLAKY"), "app-secret")).StatusCode);

        var delivered = await _bot.WaitForDeliveredAsync(1);
        Assert.Equal("msg:wamid.FLAKY", Assert.Single(delivered).EventId);
        Assert.Equal(4, _bot.Requests.Count);
        await SentinelAsync(server, "16505551234");
        Assert.Equal(4, NonSentinels.Count());
    }

    [Fact]
    public async Task Accepted_but_unforwarded_events_are_forwarded_after_a_restart_and_delivered_ones_are_not()
    {
        _bot.Respond = id => id == "msg:wamid.LATE" ? 503 : 200;
        await using (var server = await IngestServer.StartAsync(_data.Path, [Tenant()]))
        {
            Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", Payloads.Text("wamid.EARLY"), "app-secret")).StatusCode);
            await _bot.WaitForDeliveredAsync(1);
            Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", Payloads.Text("wamid.LATE"), "app-secret")).StatusCode);
            while (!_bot.Requests.Any(r => r.EventId == "msg:wamid.LATE"))
                await Task.Delay(20);
        }

        _bot.Respond = _ => 200;
        var before = _bot.Requests.Count;
        await using (var server = await IngestServer.StartAsync(_data.Path, [Tenant()]))
        {
            var delivered = await _bot.WaitForDeliveredAsync(2);
            await SentinelAsync(server, "16505551234");
            var after = _bot.Requests.Skip(before).Select(r => r.EventId).Where(id => !id!.Contains("SENTINEL", StringComparison.Ordinal)).ToList();
            Assert.Equal(["msg:wamid.LATE"], after);
            Assert.Equal(["msg:wamid.EARLY", "msg:wamid.LATE"], delivered.Select(r => r.EventId));
        }
    }

    [Fact]
    public async Task A_retry_of_an_old_payload_after_a_restart_is_still_a_duplicate()
    {
        var old = Payloads.Messages(("wamid.OLD1", "111", "x"), ("wamid.OLD2", "222", "y"));
        await using (var server = await IngestServer.StartAsync(_data.Path, [Tenant()]))
        {
            Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", old, "app-secret")).StatusCode);
            await _bot.WaitForDeliveredAsync(2);
        }

        await using (var server = await IngestServer.StartAsync(_data.Path, [Tenant()]))
        {
            Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", old, "app-secret")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", Payloads.Text("wamid.NEW"), "app-secret")).StatusCode);
            await _bot.WaitForDeliveredAsync(3);
            await SentinelAsync(server, "111");
            await SentinelAsync(server, "222");
            Assert.Equal(["msg:wamid.NEW", "msg:wamid.OLD1", "msg:wamid.OLD2"], NonSentinels.Order());
        }
    }

    [Fact]
    public async Task A_dead_bot_of_one_tenant_does_not_hold_up_another_tenant()
    {
        // Two bots at two URLs (so two breakers): the dead tenant's refuses every connection.
        await using var deadBot = await BotServer.StartAsync();
        await deadBot.GoDownAsync();
        await using var server = await IngestServer.StartAsync(_data.Path, [new TestTenant("dead", ForwardUrl: deadBot.Url, Concurrency: 4), Tenant("alive")]);
        for (var i = 0; i < 50; i++)
            Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("dead", Payloads.Text($"wamid.DEAD{i}", from: $"1650555{i:D4}"), "app-secret")).StatusCode);
        for (var i = 0; i < 20; i++)
            Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("alive", Payloads.Text($"wamid.LIVE{i}", from: $"{i}"), "app-secret")).StatusCode);

        var delivered = await _bot.WaitForDeliveredAsync(20);
        Assert.All(delivered, d => Assert.StartsWith("msg:wamid.LIVE", d.EventId, StringComparison.Ordinal));
        var stats = server.Engine.DispatchStats().Single(d => d.Tenant == "dead");
        Assert.Equal(50, stats.BacklogEvents); // nothing of it got through, and it held nothing of the other up
        Assert.NotEqual(FastIngest.Dispatch.CircuitState.Closed, stats.Circuit);
        Assert.Equal(FastIngest.Dispatch.CircuitState.Closed, server.Engine.DispatchStats().Single(d => d.Tenant == "alive").Circuit);
    }

    [Fact]
    public async Task A_slow_bot_of_one_tenant_does_not_slow_down_another_tenant()
    {
        // The slow tenant's bot holds every request for 20 s; the other tenant's events must all be delivered while
        // the slow bot has not answered a single one: their latency is bounded by their own bot, not the other's.
        await using var slowBot = await BotServer.StartAsync();
        slowBot.Delay = _ => TimeSpan.FromSeconds(20);
        await using var server = await IngestServer.StartAsync(_data.Path, [new TestTenant("slow", ForwardUrl: slowBot.Url, Concurrency: 4), Tenant("alive")],
            new Dictionary<string, string?> { ["FastIngest:Tenants:0:Forward:Timeout"] = "00:00:30", ["FastIngest:ShutdownTimeout"] = "00:00:01" });
        for (var i = 0; i < 40; i++)
            Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("slow", Payloads.Text($"wamid.SLOW{i}", from: $"1650555{i:D4}"), "app-secret")).StatusCode);
        for (var i = 0; i < 20; i++)
            Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("alive", Payloads.Text($"wamid.QUICK{i}", from: $"{i}"), "app-secret")).StatusCode);

        await _bot.WaitForDeliveredAsync(20, TimeSpan.FromSeconds(15));
        Assert.Empty(slowBot.Requests); // it records a request only once it answers (or is cut): none yet
        Assert.Equal(40, server.Engine.DispatchStats().Single(d => d.Tenant == "slow").BacklogEvents);
    }

    [Fact]
    public async Task Authentic_unparseable_payload_is_quarantined_and_answered_200_but_not_forwarded()
    {
        await using var server = await IngestServer.StartAsync(_data.Path, [Tenant()]);
        var garbage = Encoding.UTF8.GetBytes("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":");

        var response = await server.PostAsync("acme", garbage, "app-secret");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, server.Engine.Pipeline.QuarantinedCount);
        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", Payloads.Text("wamid.AFTER"), "app-secret")).StatusCode);
        await _bot.WaitForDeliveredAsync(1);
        Assert.Equal(["msg:wamid.AFTER"], _bot.Requests.Select(r => r.EventId));
    }

    [Fact]
    public async Task Oversized_body_is_413_unknown_tenant_404_wrong_method_405_wrong_content_type_415()
    {
        await using var server = await IngestServer.StartAsync(_data.Path, [Tenant()]);
        // Expect: 100-continue lets the client hear the 413 before it sends a body the server will not read.
        var huge = new HttpRequestMessage(HttpMethod.Post, "/webhooks/acme") { Content = new ByteArrayContent(new byte[300 * 1024]) };
        huge.Headers.ExpectContinue = true;
        huge.Headers.TryAddWithoutValidation("X-Hub-Signature-256", WebhookSignature.Sign("app-secret", new byte[300 * 1024]));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await server.Client.SendAsync(huge)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await server.PostAsync("nobody", Payloads.Text("wamid.Q"), "app-secret")).StatusCode);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await server.Client.PutAsync("/webhooks/acme", new ByteArrayContent([]))).StatusCode);
        var form = new StringContent("a=b", Encoding.UTF8, "application/x-www-form-urlencoded");
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, (await server.Client.PostAsync("/webhooks/acme", form)).StatusCode);
    }

    [Fact]
    public async Task Without_a_forward_url_events_are_written_one_Meta_shaped_payload_a_line_to_the_tenant_file()
    {
        await using var server = await IngestServer.StartAsync(_data.Path, [new TestTenant("quick")]);
        var body = Encoding.UTF8.GetBytes("""
            {
              "object": "whatsapp_business_account",
              "entry": [ { "id": "1", "changes": [ { "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": { "display_phone_number": "1", "phone_number_id": "2" },
                "messages": [
                  { "from": "3", "id": "wamid.F1", "timestamp": "1", "type": "text", "text": { "body": "line one" } },
                  { "from": "3", "id": "wamid.F2", "timestamp": "2", "type": "text", "text": { "body": "line two" } }
                ] } } ] } ]
            }
            """);

        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("quick", body, "app-secret")).StatusCode);

        var file = Path.Combine(_data.Path, "out", "quick.jsonl");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        string[] lines = [];
        while (DateTime.UtcNow < deadline)
        {
            lines = File.Exists(file) ? File.ReadAllLines(file).Where(l => l.Length > 0).ToArray() : [];
            if (lines.Length >= 2)
                break;
            await Task.Delay(50);
        }
        Assert.Equal(2, lines.Length);
        var ids = lines.Select(l =>
        {
            var bytes = Encoding.UTF8.GetBytes(l);
            using var events = new EventBuffer();
            Assert.True(WebhookParser.Parse(bytes, events).Success);
            return Assert.Single(events.Events.ToArray()).Id.GetString(bytes);
        });
        Assert.Equal(["wamid.F1", "wamid.F2"], ids.Order());
    }

    [Fact]
    public async Task Ingest_keeps_answering_while_the_dedupe_store_checkpoints_under_concurrent_load()
    {
        // Regression: FASTER runs checkpoint steps on the threads that call it; one such step on a request thread
        // that held dedupe stripe locks waited for a checkpoint-file write queued on the thread pool, which the
        // requests blocked on those locks had filled. Checkpoints every 100 ms under 32 concurrent senders.
        await using var server = await IngestServer.StartAsync(_data.Path, [Tenant()],
            new Dictionary<string, string?> { ["FastIngest:CheckpointInterval"] = "00:00:00.1" });
        server.Client.Timeout = TimeSpan.FromSeconds(30);
        const int senders = 32, each = 40;

        var statuses = await Task.WhenAll(Enumerable.Range(0, senders).Select(async s =>
        {
            var codes = new List<HttpStatusCode>();
            for (var i = 0; i < each; i++)
                codes.Add((await server.PostAsync("acme", Payloads.Text($"wamid.LOAD{s}x{i}", from: $"{s}"), "app-secret")).StatusCode);
            return codes;
        }));

        Assert.All(statuses.SelectMany(c => c), c => Assert.Equal(HttpStatusCode.OK, c));
        // Every event arrives (a delivery cut by the 2 s test timeout under load may arrive twice, same event id).
        var delivered = await _bot.WaitForDistinctAsync(senders * each, TimeSpan.FromSeconds(60));
        Assert.Equal(senders * each, delivered.Select(d => d.EventId).Distinct().Count());
        Assert.All(delivered, d => Assert.StartsWith("msg:wamid.LOAD", d.EventId, StringComparison.Ordinal));
    }
}
