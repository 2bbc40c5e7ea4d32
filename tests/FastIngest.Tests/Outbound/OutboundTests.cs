using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Outbound;

/// <summary>
/// The send tier against the real server, a real bot and a fake Graph API on loopback: queue and lifecycle,
/// idempotency, the 24-hour window, rates, fairness, Meta's error classes, restarts and the holding message.
/// </summary>
[Collection(nameof(RunsAlone))] // its rate checks read the fake Graph API's wall-clock arrival times (the buckets are System.Threading.RateLimiting's, on real timers)
public sealed class OutboundTests : IAsyncLifetime
{
    internal const string Secret = "app-secret";
    internal const string Phone = Payloads.PhoneNumberId;
    internal const string Phone2 = "200000000000002";
    internal const string MetaToken = "meta-access-token";
    internal const string BotToken = "bot-token-0123456789";
    internal const string BotToken2 = "bot-token-tenant-two";
    private const string AdminToken = "admin-token-0123456789";
    private readonly TempDir _dir = new();
    private FakeGraphApi _graph = null!;
    private BotServer _bot = null!;
    private IngestServer? _server;

    public async Task InitializeAsync()
    {
        _graph = await FakeGraphApi.StartAsync();
        _graph.Token = MetaToken;
        _bot = await BotServer.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync();
        await _bot.DisposeAsync();
        await _graph.DisposeAsync();
        _dir.Dispose();
    }

    private IngestServer Server => _server!;

    private async Task StartAsync(Dictionary<string, string?>? more = null, TimeProvider? time = null, string? settingsFile = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["FastIngest:AdminToken"] = AdminToken,
            ["FastIngest:Outbound:GraphUrl"] = _graph.Url,
            ["FastIngest:Outbound:InitialBackoff"] = "00:00:00.05",
            ["FastIngest:Outbound:MaxBackoff"] = "00:00:00.3",
            ["FastIngest:Outbound:RateRecoveryInterval"] = "00:00:00.2",
            ["FastIngest:Outbound:PausedRetryInterval"] = "00:00:00.5",
            ["FastIngest:Tenants:0:Outbound:PhoneNumberIds:0"] = Phone,
            ["FastIngest:Tenants:0:Outbound:AccessToken"] = MetaToken,
            ["FastIngest:Tenants:0:Outbound:BotToken"] = BotToken,
            ["FastIngest:Tenants:1:Outbound:PhoneNumberIds:0"] = Phone2,
            ["FastIngest:Tenants:1:Outbound:AccessToken"] = MetaToken,
            ["FastIngest:Tenants:1:Outbound:BotToken"] = BotToken2,
        };
        foreach (var kv in more ?? [])
            settings[kv.Key] = kv.Value;
        _server = await IngestServer.StartAsync(_dir.Path,
            [new TestTenant("t1", Secret, ForwardUrl: _bot.Url), new TestTenant("t2", "secret-two")], settings, time: time, settingsFile: settingsFile);
    }

    private async Task RestartAsync(Dictionary<string, string?>? more = null)
    {
        await _server!.DisposeAsync();
        _server = null;
        await StartAsync(more);
    }

    internal static byte[] Text(string to, string text = "hello there")
        => Encoding.UTF8.GetBytes($$$"""{"messaging_product":"whatsapp","recipient_type":"individual","to":"{{{to}}}","type":"text","text":{"body":"{{{text}}}"}}""");

    internal static byte[] Template(string to, string name = "order_update")
        => Encoding.UTF8.GetBytes($$$$"""{"messaging_product":"whatsapp","to":"{{{{to}}}}","type":"template","template":{"name":"{{{{name}}}}","language":{"code":"en_US"}}}""");

    private async Task<(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)> SendAsync(byte[] body, string phone = Phone, string token = BotToken, string? key = null, int? wait = null, string? prefer = null, string? botHeader = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/graph/v23.0/{phone}/messages") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (key is not null)
            request.Headers.Add("Idempotency-Key", key);
        if (botHeader is not null)
            request.Headers.Add("X-FastIngest-Bot-Token", botHeader);
        if (wait is not null)
            request.Headers.Add("Prefer", $"wait={wait}");
        if (prefer is not null)
            request.Headers.Add("Prefer", prefer);
        var response = await Server.Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone(), response);
    }

    /// <summary>Sends <paramref name="count"/> bodies, <paramref name="concurrency"/> requests at a time.</summary>
    private async Task SendManyAsync(int count, Func<int, byte[]> body, int concurrency)
    {
        using var gate = new SemaphoreSlim(concurrency);
        await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            await gate.WaitAsync();
            try
            {
                await SendAsync(body(i));
            }
            finally
            {
                gate.Release();
            }
        }));
    }

    private static string IdOf(JsonElement body) => body.GetProperty("messages")[0].GetProperty("id").GetString()!;

    private async Task<JsonElement> ShowAsync(string id, string token = BotToken)
    {
        var (status, body) = await Server.AdminAsync(HttpMethod.Get, $"/v1/outbound/{id}", token);
        Assert.Equal(HttpStatusCode.OK, status);
        return body;
    }

    private async Task<JsonElement> WaitForStatusAsync(string id, string status, int seconds = 15, string token = BotToken)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var shown = await ShowAsync(id, token);
            if (shown.GetProperty("status").GetString() == status)
                return shown;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{id} stayed {shown}");
            await Task.Delay(50);
        }
    }

    /// <summary>The customer writes in (opens the 24-hour window) and the bot gets it.</summary>
    private async Task CustomerWritesAsync(string from, string wamid, long? timestamp = null)
    {
        using var response = await Server.PostAsync("t1", Payloads.InboundAt(wamid, from, timestamp), Secret);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // This message itself, not just one more delivery: lifecycle events of earlier sends reach the same bot.
        await WaitUntilAsync(() => _bot.Delivered.Any(r => r.EventId == "msg:" + wamid));
    }

    private IReadOnlyList<JsonElement> Lifecycle(string id) => [.. _bot.Delivered
        .Select(r => JsonDocument.Parse(r.Body).RootElement.GetProperty("entry")[0].GetProperty("changes")[0])
        .Where(c => c.GetProperty("field").GetString() == "fastingest_outbound")
        .Select(c => c.GetProperty("value"))
        .Where(v => v.GetProperty("id").GetString() == id)];

    [Fact]
    public async Task A_reply_is_queued_durably_sent_with_the_tenant_token_and_followed_to_read_through_out_of_order_statuses()
    {
        await StartAsync();
        await CustomerWritesAsync("16505550001", "wamid.IN1");
        var body = Text("+1 650-555-0001");
        var (status, answer, response) = await SendAsync(body);

        Assert.Equal(HttpStatusCode.Accepted, status);
        var id = IdOf(answer);
        Assert.StartsWith("fo-", id, StringComparison.Ordinal);
        Assert.Equal("/v1/outbound/" + id, response.Headers.Location!.ToString());
        Assert.Equal("16505550001", answer.GetProperty("contacts")[0].GetProperty("wa_id").GetString());

        await _graph.WaitForAcceptedAsync(1);
        var sent = Assert.Single(_graph.Sends);
        Assert.Equal(body, sent.Body); // byte for byte as the bot wrote it
        Assert.Equal("Bearer " + MetaToken, sent.Authorization);
        Assert.Equal("v23.0", sent.Version);
        var accepted = await WaitForStatusAsync(id, "accepted");
        Assert.Equal(sent.Wamid, accepted.GetProperty("wamid").GetString());

        // Meta's statuses, out of order and repeated: read first, then the older sent and delivered, then read again.
        var t0 = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await FakeGraphApi.PostStatusesAsync(Server.Client, "t1", Secret, sent.Wamid!, "16505550001", ("read", t0 + 3), ("sent", t0 + 1), ("delivered", t0 + 2), ("read", t0 + 3));
        var read = await WaitForStatusAsync(id, "read");
        Assert.Equal(["queued", "submitted", "accepted", "read"], read.GetProperty("history").EnumerateArray().Select(h => h.GetProperty("status").GetString()!).ToArray());
        Assert.Equal(t0 + 3, read.GetProperty("history")[3].GetProperty("timestamp").GetInt64());

        // Each step from accepted on reached the bot once, as an event of its own. The sentinel: a second send to the
        // same customer, whose lifecycle travels behind the first one's (one customer, one order).
        await WaitUntilAsync(() => Lifecycle(id).Count >= 2);
        var (_, second, _) = await SendAsync(Text("+1 650-555-0001", "sentinel"));
        await WaitUntilAsync(() => Lifecycle(IdOf(second)).Count >= 1);
        Assert.Equal(["accepted", "read"], Lifecycle(id).Select(v => v.GetProperty("status").GetString()!).ToArray());
        Assert.Equal(sent.Wamid, Lifecycle(id)[1].GetProperty("wamid").GetString());

        // Not for other tokens; the admin token may look.
        Assert.Equal(HttpStatusCode.NotFound, (await Server.AdminAsync(HttpMethod.Get, $"/v1/outbound/{id}", BotToken2)).Status);
        Assert.Equal(HttpStatusCode.OK, (await Server.AdminAsync(HttpMethod.Get, $"/v1/outbound/{id}", AdminToken)).Status);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, int seconds = 15)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("condition not met");
            await Task.Delay(25);
        }
    }

    [Fact]
    public async Task Statuses_after_a_restart_still_move_a_send_accepted_before_it_and_reach_the_bot_once()
    {
        await StartAsync();
        await CustomerWritesAsync("16505550011", "wamid.IN11");
        var (_, answer, _) = await SendAsync(Text("16505550011", "before the restart"));
        var id = IdOf(answer);
        await _graph.WaitForAcceptedAsync(1);
        var wamid = (await WaitForStatusAsync(id, "accepted")).GetProperty("wamid").GetString()!;
        await WaitUntilAsync(() => Lifecycle(id).Count >= 1); // "accepted" reached the bot before the restart

        // The restart, then Meta's statuses of that send (before: ignored, the send stayed "accepted" for good).
        await RestartAsync();
        var t0 = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await FakeGraphApi.PostStatusesAsync(Server.Client, "t1", Secret, wamid, "16505550011", ("sent", t0 + 1), ("delivered", t0 + 2), ("read", t0 + 3));
        var read = await WaitForStatusAsync(id, "read");
        Assert.Equal(["queued", "submitted", "accepted", "sent", "delivered", "read"], read.GetProperty("history").EnumerateArray().Select(h => h.GetProperty("status").GetString()!).ToArray());

        // Each lifecycle step reached the bot once; the sentinel is a second send to the same customer, whose
        // lifecycle travels behind the first one's.
        var (_, second, _) = await SendAsync(Text("16505550011", "sentinel"));
        await WaitUntilAsync(() => Lifecycle(IdOf(second)).Count >= 1);
        Assert.Equal(["accepted", "sent", "delivered", "read"], Lifecycle(id).Select(v => v.GetProperty("status").GetString()!).ToArray());
    }

    [Fact]
    public async Task A_scheduler_fault_is_logged_counted_and_on_readyz_and_the_sends_still_go_out()
    {
        await StartAsync();
        // An unexpected exception inside the scheduler loop (a bug): before, the loop's task ended and no tenant's
        // send ever went out again, silently.
        Server.Engine.Outbound.InjectSchedulerFault = new InvalidOperationException("injected scheduler fault");
        var ready = await WaitForReadyzAsync(text => text.Contains("send scheduler failed", StringComparison.Ordinal));
        Assert.Contains("injected scheduler fault", ready, StringComparison.Ordinal);
        Assert.Contains("fastingest_outbound_scheduler_faults_total 1", await Server.Client.GetStringAsync("/metrics"), StringComparison.Ordinal);

        var (status, answer, _) = await SendAsync(Template("16505550012"));
        Assert.Equal(HttpStatusCode.Accepted, status);
        await WaitForStatusAsync(IdOf(answer), "accepted");
    }

    private async Task<string> WaitForReadyzAsync(Func<string, bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            var text = await (await Server.Client.GetAsync("/readyz")).Content.ReadAsStringAsync();
            if (condition(text))
                return text;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("/readyz: " + text);
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Mark_as_read_and_the_typing_indicator_go_straight_to_Meta_and_return_Metas_answer()
    {
        await StartAsync();
        // The customer's message is long out of the 24-hour window: a read receipt is not a send, the window does not apply.
        foreach (var receipt in new[]
        {
            """{"messaging_product":"whatsapp","status":"read","message_id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA"}""",
            """{"messaging_product":"whatsapp","status":"read","message_id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA","typing_indicator":{"type":"text"}}""",
        })
        {
            var (status, answer, _) = await SendAsync(Encoding.UTF8.GetBytes(receipt));
            Assert.Equal(HttpStatusCode.OK, status); // before: 400 code 100 "to is required"
            Assert.True(answer.GetProperty("success").GetBoolean());
        }
        Assert.Equal(2, _graph.Reads.Count);
        Assert.All(_graph.Reads, r => Assert.Equal("Bearer " + MetaToken, r.Authorization));
        Assert.Empty(_graph.Sends); // nothing queued, nothing sent as a message
        Assert.Contains("fastingest_outbound_read_receipts_total{tenant=\"t1\"} 2", await Server.Client.GetStringAsync("/metrics"), StringComparison.Ordinal);

        var (bad, error, _) = await SendAsync(Encoding.UTF8.GetBytes("""{"messaging_product":"whatsapp","status":"read"}"""));
        Assert.Equal(HttpStatusCode.BadRequest, bad);
        Assert.Equal("message_id", error.GetProperty("error").GetProperty("fastingest_field").GetString());
    }

    [Fact]
    public async Task A_failed_status_older_than_delivered_is_stale_for_the_send_as_for_the_message_state()
    {
        await StartAsync();
        await CustomerWritesAsync("16505550013", "wamid.IN13");
        var (_, answer, _) = await SendAsync(Text("16505550013", "late failure"));
        var id = IdOf(answer);
        await _graph.WaitForAcceptedAsync(1);
        var wamid = (await WaitForStatusAsync(id, "accepted")).GetProperty("wamid").GetString()!;

        // Meta's webhooks out of order: delivered at t+2, then a failed stamped t+1 (older: behind the delivery).
        var t0 = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await FakeGraphApi.PostStatusesAsync(Server.Client, "t1", Secret, wamid, "16505550013", ("delivered", t0 + 2), ("failed", t0 + 1));
        await WaitForStatusAsync(id, "delivered");
        // The sentinel: a second send to the same customer, whose lifecycle travels behind the first one's.
        var (_, second, _) = await SendAsync(Text("16505550013", "sentinel"));
        await WaitUntilAsync(() => Lifecycle(IdOf(second)).Count >= 1);

        var (status, state) = await Server.AdminAsync(HttpMethod.Get, $"/v1/messages/{wamid}", AdminToken);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("delivered", state.GetProperty("status").GetString());
        Assert.Equal("delivered", (await ShowAsync(id)).GetProperty("status").GetString()); // before: failed
        Assert.Equal(["accepted", "delivered"], Lifecycle(id).Select(v => v.GetProperty("status").GetString()!).ToArray());
    }

    [Fact]
    public async Task With_a_default_wait_an_unchanged_bot_gets_Metas_answer_and_its_wamid()
    {
        // A bot written against Meta sends no Prefer header and keeps the wamid of the answer to match statuses.
        await StartAsync(new() { ["FastIngest:Tenants:0:Outbound:DefaultWait"] = "00:00:10" });
        await CustomerWritesAsync("16505550014", "wamid.IN14");
        var (status, answer, _) = await SendAsync(Text("16505550014", "hello from an unchanged bot"));
        Assert.Equal(HttpStatusCode.OK, status); // before: 202 with FastIngest's fo- id
        var wamid = IdOf(answer);
        Assert.Equal(_graph.Accepted.Single(s => s.To == "16505550014").Wamid, wamid);

        // Per request, the bot can still ask for the 202 at once.
        var (later, queued, _) = await SendAsync(Template("16505550015"), prefer: "respond-async");
        Assert.Equal(HttpStatusCode.Accepted, later);
        Assert.StartsWith("fo-", IdOf(queued), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_repeated_send_returns_the_first_result_and_never_sends_twice_even_across_a_restart()
    {
        await StartAsync();
        await CustomerWritesAsync("16505550002", "wamid.IN2");
        var (s1, first, _) = await SendAsync(Text("16505550002", "once"), key: "order-42-reply");
        var (s2, second, r2) = await SendAsync(Text("16505550002", "once"), key: "order-42-reply");
        Assert.Equal(HttpStatusCode.Accepted, s1);
        Assert.Equal(IdOf(first), IdOf(second));
        Assert.Equal("true", r2.Headers.GetValues("Idempotent-Replayed").Single());

        // Without a key, the same body is the key.
        var (_, a, _) = await SendAsync(Template("16505550003"));
        var (_, b, _) = await SendAsync(Template("16505550003"));
        Assert.Equal(IdOf(a), IdOf(b));
        await _graph.WaitForAcceptedAsync(2);

        await RestartAsync();
        var (s3, third, r3) = await SendAsync(Text("16505550002", "once"), key: "order-42-reply");
        Assert.Equal(HttpStatusCode.Accepted, s3); // the first send's id, with its status now
        Assert.Equal("true", r3.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(IdOf(first), IdOf(third));
        Assert.Equal("accepted", third.GetProperty("messages")[0].GetProperty("message_status").GetString());
        // Waiting for Meta's answer gives it as Meta gave it, rebuilt from the book after the restart.
        var (s4, fourth, _) = await SendAsync(Text("16505550002", "once"), key: "order-42-reply", wait: 5);
        Assert.Equal(HttpStatusCode.OK, s4);
        Assert.Equal(_graph.Accepted.Single(s => s.To == "16505550002").Wamid, IdOf(fourth));
        // The sentinel: a new send to the same customer goes out behind anything queued for them before it.
        await SendAsync(Text("16505550002", "sentinel"), key: "sentinel");
        await _graph.WaitForAcceptedAsync(3);
        Assert.Equal(3, _graph.Sends.Count);
        Assert.Single(_graph.Sends, s => s.To == "16505550002" && s.Text.Contains("once", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Free_form_outside_the_window_is_refused_before_Meta_templates_pass_and_bad_bodies_name_the_field()
    {
        await StartAsync();
        await CustomerWritesAsync("16505550005", "wamid.OLD", DateTimeOffset.UtcNow.AddHours(-25).ToUnixTimeSeconds());

        var (status, error, response) = await SendAsync(Text("16505550005"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(131047, error.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Contains("24-hour customer service window", error.GetProperty("error").GetProperty("error_data").GetProperty("details").GetString(), StringComparison.Ordinal);
        Assert.Equal("customer-service-window", response.Headers.GetValues("X-FastIngest-Refused").Single());
        var (never, _, _) = await SendAsync(Text("16505550006"));
        Assert.Equal(HttpStatusCode.BadRequest, never);

        var (ok, queued, _) = await SendAsync(Template("16505550005"));
        Assert.Equal(HttpStatusCode.Accepted, ok);
        await WaitForStatusAsync(IdOf(queued), "accepted");
        Assert.Single(_graph.Sends);

        // Inside the window, free-form goes.
        await CustomerWritesAsync("16505550005", "wamid.NEW");
        var (fresh, _, _) = await SendAsync(Text("16505550005"));
        Assert.Equal(HttpStatusCode.Accepted, fresh);

        foreach (var (body, field) in new[]
        {
            ("""{"messaging_product":"whatsapp","to":"16505550005","type":"text","text":{}}""", "text.body"),
            ("""{"to":"16505550005","type":"text","text":{"body":"x"}}""", "messaging_product"),
            ("""{"messaging_product":"whatsapp","to":"not a number","text":{"body":"x"}}""", "to"),
            ("""{"messaging_product":"whatsapp","to":"16505550005","type":"template","template":{"name":"x"}}""", "template.language.code"),
            ("""{"messaging_product":"whatsapp","to":"16505550005","type":"hologram"}""", "type"),
            ("""{"messaging_product":""", "body"),
        })
        {
            var (bad, e, _) = await SendAsync(Encoding.UTF8.GetBytes(body));
            Assert.Equal(HttpStatusCode.BadRequest, bad);
            Assert.Equal(100, e.GetProperty("error").GetProperty("code").GetInt32());
            Assert.Equal(field, e.GetProperty("error").GetProperty("fastingest_field").GetString());
        }
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(Template("1650555000"), token: "wrong-token-0123456")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(Template("16505550005"), phone: "999")).Status);

        var metrics = await Server.Client.GetStringAsync("/metrics");
        Assert.Contains("fastingest_outbound_messages_total{tenant=\"t1\",outcome=\"refused_by_policy\"} 2", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_phone_number_rate_is_never_exceeded_and_Meta_never_has_to_throttle()
    {
        const int Rate = 20;
        await StartAsync(new() { ["FastIngest:Tenants:0:Outbound:PhoneNumberRate"] = Rate.ToString(CultureInfo.InvariantCulture) });
        _graph.Limit(Phone, Rate + 3); // Meta's own limit, with the slack of one burst and network jitter
        const int Count = 70;
        await Task.WhenAll(Enumerable.Range(0, Count).Select(i => SendAsync(Template($"1650556{i:D4}"))));
        await _graph.WaitForAcceptedAsync(Count);

        var times = _graph.Sends.Select(s => s.ArrivedUtc).Order().ToList();
        var busiest = times.Max(t => times.Count(u => u >= t && u < t.AddSeconds(1)));
        Assert.True(busiest <= Rate + 2 + 1, $"{busiest} sends within one second at a rate of {Rate}/s (burst 2)");
        Assert.All(_graph.Sends, s => Assert.Equal(200, s.Status));
        Assert.True((times[^1] - times[0]).TotalSeconds >= (Count - Rate) / (double)Rate * 0.9, $"{Count} sends took {(times[^1] - times[0]).TotalSeconds:0.00} s");
    }

    [Fact]
    public async Task Meta_throttling_cuts_the_rate_retries_without_loss_and_the_rate_recovers()
    {
        await StartAsync(new() { ["FastIngest:Tenants:0:Outbound:PhoneNumberRate"] = "50" });
        _graph.Limit(Phone, 8);
        const int Count = 40;
        await Task.WhenAll(Enumerable.Range(0, Count).Select(i => SendAsync(Template($"1650557{i:D4}"))));
        await _graph.WaitForAcceptedAsync(Count, TimeSpan.FromSeconds(40));

        Assert.Contains(_graph.Sends, s => s.Code == 130429);
        Assert.Equal(Count, _graph.Accepted.Select(s => s.To).Distinct().Count());
        Assert.Equal(Count, _graph.Accepted.Count); // each exactly once
        var throttledRate = PhoneRate(await Server.Client.GetStringAsync("/metrics"));
        Assert.True(throttledRate < 50, $"rate {throttledRate} after throttling");

        // Quiet now: each RateRecoveryInterval gives back a tenth until the configured rate.
        _graph.Limit(Phone, 1000);
        await SendAsync(Template("16505579999"));
        var deadline = DateTime.UtcNow.AddSeconds(15);
        double rate;
        while ((rate = PhoneRate(await Server.Client.GetStringAsync("/metrics"))) < 50 && DateTime.UtcNow < deadline)
            await Task.Delay(100);
        Assert.Equal(50, rate);
        var metrics = await Server.Client.GetStringAsync("/metrics");
        Assert.DoesNotContain("fastingest_outbound_throttled_total{tenant=\"t1\"} 0", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Many_concurrent_throttling_answers_cut_the_rate_once_each_and_the_tier_keeps_sending_and_recovers()
    {
        // 64 requests in flight at once, Meta slow and far below the configured rate: 130429 answers come back to
        // many send tasks together, each cutting the same bucket the scheduler is taking tokens from.
        await StartAsync(new()
        {
            ["FastIngest:Tenants:0:Outbound:PhoneNumberRate"] = "400",
            ["FastIngest:Outbound:MaxInFlight"] = "64",
        });
        _graph.Latency = TimeSpan.FromMilliseconds(40);
        _graph.Limit(Phone, 15);
        const int Count = 150;
        await SendManyAsync(Count, i => Template($"1650559{i:D4}"), 32);
        await _graph.WaitForAcceptedAsync(Count, TimeSpan.FromSeconds(60));

        Assert.True(_graph.Sends.Count(s => s.Code == 130429) >= 10, $"{_graph.Sends.Count(s => s.Code == 130429)} throttling answers");
        Assert.Equal(Count, _graph.Accepted.Count); // each exactly once, none lost
        var metrics = await Server.Client.GetStringAsync("/metrics");
        Assert.Contains("fastingest_outbound_scheduler_faults_total 0", metrics, StringComparison.Ordinal);
        Assert.True(PhoneRate(metrics) < 400, $"rate {PhoneRate(metrics)} after throttling");

        // Meta lifts its limit: the rate comes back to the configured one, and sends still go.
        _graph.Limit(Phone, 10_000);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        double rate;
        while ((rate = PhoneRate(await Server.Client.GetStringAsync("/metrics"))) < 400 && DateTime.UtcNow < deadline)
            await Task.Delay(100);
        Assert.Equal(400, rate);
        var (_, last, _) = await SendAsync(Template("16505599999"));
        await WaitForStatusAsync(IdOf(last), "accepted");
        using var ready = await Server.Client.GetAsync("/readyz");
        Assert.DoesNotContain("scheduler", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sends_held_back_for_one_customer_never_starve_the_tenants_other_customers_and_numbers()
    {
        const string Phone3 = "300000000000003";
        await StartAsync(new()
        {
            ["FastIngest:Tenants:0:Outbound:PhoneNumberIds:1"] = Phone3,
            ["FastIngest:Tenants:0:Outbound:PairBurst"] = "1",
            ["FastIngest:Tenants:0:Outbound:PairInterval"] = "00:10:00",
        });
        // 100 sends to one customer: the first goes, the pair limit holds the other 99 back for 10 minutes.
        for (var i = 0; i < 100; i++)
            await SendAsync(Template("16505550500", $"campaign_{i}"));
        await WaitUntilAsync(() => _graph.Accepted.Count >= 1);

        // Replies to other customers, on the same number and on the tenant's other number, go at once (before: the
        // scheduler looked at the first 64 queued sends only, all held back, and the replies waited 10 minutes).
        var (_, sameNumber, _) = await SendAsync(Template("16505550501", "reply_one"));
        var (_, otherNumber, _) = await SendAsync(Template("16505550502", "reply_two"), phone: Phone3);
        await WaitForStatusAsync(IdOf(sameNumber), "accepted");
        await WaitForStatusAsync(IdOf(otherNumber), "accepted");
        Assert.Single(_graph.Accepted, s => s.To == "16505550500"); // still one: the customer's own order and limit hold
    }

    [Fact]
    public async Task Answered_sends_leave_memory_and_lookups_repeats_and_statuses_still_find_them_after_a_restart()
    {
        await StartAsync();
        var sends = new List<(string Id, string To)>();
        for (var i = 0; i < 30; i++)
        {
            var to = $"1650556{i:D4}";
            var (_, answer, _) = await SendAsync(Template(to), key: $"order-{i}");
            sends.Add((IdOf(answer), to));
        }
        await _graph.WaitForAcceptedAsync(30);
        foreach (var (id, _) in sends)
            await WaitForStatusAsync(id, "accepted");
        await WaitUntilAsync(() => sends.All(s => Lifecycle(s.Id).Count == 1));
        await Server.Engine.CheckpointAndTruncateAsync(); // the send index covers them

        await RestartAsync();
        // Not held in memory any more (before: every send, for Outbound:Retention, read back by a full scan at start).
        Assert.Equal(0, Server.Engine.Outbound.Book.Count);

        // A lookup reads the send back from the log, history and all.
        var shown = await ShowAsync(sends[0].Id);
        Assert.Equal("accepted", shown.GetProperty("status").GetString());
        Assert.Equal(["queued", "submitted", "accepted"], shown.GetProperty("history").EnumerateArray().Select(h => h.GetProperty("status").GetString()!).ToArray());
        var wamid0 = shown.GetProperty("wamid").GetString()!;
        Assert.Equal(_graph.Accepted.Single(s => s.To == sends[0].To).Wamid, wamid0);

        // A repeat of its key returns the first send, and nothing goes to Meta again.
        var (_, again, replayed) = await SendAsync(Template(sends[0].To), key: "order-0");
        Assert.Equal(sends[0].Id, IdOf(again));
        Assert.True(replayed.Headers.Contains("Idempotent-Replayed"));

        // Meta's statuses of another one still move it, and its lifecycle events reach the bot once each.
        var wamid1 = _graph.Accepted.Single(s => s.To == sends[1].To).Wamid!;
        var t0 = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await FakeGraphApi.PostStatusesAsync(Server.Client, "t1", Secret, wamid1, sends[1].To, ("sent", t0 + 1), ("delivered", t0 + 2), ("read", t0 + 3));
        var read = await WaitForStatusAsync(sends[1].Id, "read");
        Assert.Equal(["queued", "submitted", "accepted", "sent", "delivered", "read"], read.GetProperty("history").EnumerateArray().Select(h => h.GetProperty("status").GetString()!).ToArray());
        var (_, sentinel, _) = await SendAsync(Template(sends[1].To, "sentinel"));
        await WaitUntilAsync(() => Lifecycle(IdOf(sentinel)).Count >= 1);
        Assert.Equal(["accepted", "sent", "delivered", "read"], Lifecycle(sends[1].Id).Select(v => v.GetProperty("status").GetString()!).ToArray());
        Assert.Equal(31, _graph.Sends.Count); // 30, and the sentinel
    }

    [Fact]
    public async Task An_answered_send_leaves_memory_once_quiet_for_ten_minutes_and_is_still_found_and_moved()
    {
        var clock = new ManualClock();
        await StartAsync(time: clock);
        var (_, answer, _) = await SendAsync(Template("16505550600"), key: "quiet-1");
        var id = IdOf(answer);
        await _graph.WaitForAcceptedAsync(1);
        await WaitForStatusAsync(id, "accepted");
        await Server.Engine.CheckpointAndTruncateAsync();
        Assert.Equal(1, Server.Engine.Outbound.Book.Count); // just answered: still held

        // Ten quiet minutes later a checkpoint lets it go (before: held for all of Outbound:Retention).
        clock.Advance(TimeSpan.FromMinutes(11));
        await WaitUntilAsync(() =>
        {
            Server.Engine.CheckpointAndTruncateAsync().GetAwaiter().GetResult();
            return Server.Engine.Outbound.Book.Count == 0;
        });
        Assert.Equal("accepted", (await ShowAsync(id)).GetProperty("status").GetString());
        var (_, again, replayed) = await SendAsync(Template("16505550600"), key: "quiet-1");
        Assert.Equal(id, IdOf(again));
        Assert.True(replayed.Headers.Contains("Idempotent-Replayed"));
        var wamid = Assert.Single(_graph.Accepted).Wamid!;
        await FakeGraphApi.PostStatusesAsync(Server.Client, "t1", Secret, wamid, "16505550600", ("delivered", clock.GetUtcNow().ToUnixTimeSeconds()));
        await WaitForStatusAsync(id, "delivered");
    }

    private static double PhoneRate(string metrics)
    {
        var line = metrics.Split('\n').Single(l => l.StartsWith($"fastingest_outbound_phone_rate{{phone_number_id=\"{Phone}\"}}", StringComparison.Ordinal));
        return double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task A_campaign_flood_from_one_tenant_does_not_delay_another_tenants_reply()
    {
        await StartAsync(new()
        {
            ["FastIngest:Tenants:0:Outbound:PhoneNumberRate"] = "40",
            ["FastIngest:Tenants:1:Outbound:PhoneNumberRate"] = "40",
            ["FastIngest:Outbound:MaxInFlight"] = "4",
        });
        _graph.Latency = TimeSpan.FromMilliseconds(20);
        const int Flood = 300; // 7.5 s of t1's throughput
        await SendManyAsync(Flood, i => Template($"1650558{i:D4}"), 16);
        await WaitUntilAsync(() => _graph.Accepted.Count(s => s.PhoneNumberId == Phone) >= 10); // the flood is flowing

        var floodSentBefore = _graph.Accepted.Count(s => s.PhoneNumberId == Phone);
        var (status, _, _) = await SendAsync(Template("16505590000", "reply"), phone: Phone2, token: BotToken2);
        Assert.Equal(HttpStatusCode.Accepted, status);
        await WaitUntilAsync(() => _graph.Accepted.Any(s => s.PhoneNumberId == Phone2));
        var accepted = _graph.Accepted.ToList();
        var reply = accepted.FindIndex(s => s.PhoneNumberId == Phone2);
        var floodSentMeanwhile = accepted.Take(reply).Count(s => s.PhoneNumberId == Phone) - floodSentBefore;
        var floodLeft = Flood - accepted.Take(reply).Count(s => s.PhoneNumberId == Phone);

        // Measured in sends, not seconds: t2's reply went out behind a handful of t1's sends (those in flight and one
        // round of the round robin), not behind t1's queue.
        Assert.True(floodLeft > 100, $"the flood should still be queued ({floodLeft} left)");
        Assert.True(floodSentMeanwhile <= 8, $"t2's reply waited for {floodSentMeanwhile} of t1's sends ({floodLeft} still queued)");
    }

    [Fact]
    public async Task Permanent_errors_end_the_send_with_Metas_code_and_transient_ones_retry_until_accepted()
    {
        await StartAsync();
        _graph.Fail("16505551001", 400, 132001, "Template name does not exist in the translation");
        var (status, answer, _) = await SendAsync(Template("16505551001", "nope"), wait: 10);
        Assert.Equal(HttpStatusCode.BadRequest, status); // Meta's answer as Meta gave it
        Assert.Equal(132001, answer.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Equal("AbCdEf", answer.GetProperty("error").GetProperty("fbtrace_id").GetString());

        _graph.Fail("16505551002", 500, 131000, "Something went wrong", times: 2);
        var (ok, accepted, _) = await SendAsync(Template("16505551002"), wait: 10);
        Assert.Equal(HttpStatusCode.OK, ok);
        var wamid = IdOf(accepted);
        Assert.StartsWith("wamid.FAKE", wamid, StringComparison.Ordinal);

        var all = _graph.Sends;
        Assert.Single(all, s => s.To == "16505551001");
        Assert.Equal(3, all.Count(s => s.To == "16505551002"));

        // The rejected one, as the API shows it.
        var (_, again, replay) = await SendAsync(Template("16505551001", "nope"), wait: 1);
        Assert.Equal("true", replay.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(132001, again.GetProperty("error").GetProperty("code").GetInt32());
        var id = replay.Headers.GetValues("X-FastIngest-Id").Single();
        var shown = await ShowAsync(id);
        Assert.Equal("rejected", shown.GetProperty("status").GetString());
        Assert.Equal(132001, shown.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Equal(1, shown.GetProperty("attempts").GetInt32());
    }

    [Fact]
    public async Task An_expired_token_pauses_the_tenant_loudly_and_sends_resume_when_it_works_again()
    {
        await StartAsync();
        _graph.Token = "renewed-token";
        var (_, queued, _) = await SendAsync(Template("16505552001"));
        var id = IdOf(queued);
        await WaitUntilAsync(() => _graph.Sends.Any(s => s.Code == 190));
        await WaitUntilAsync(() => Server.Client.GetAsync("/readyz").Result.StatusCode == HttpStatusCode.ServiceUnavailable);
        using (var ready = await Server.Client.GetAsync("/readyz"))
            Assert.Contains("access token", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Contains("fastingest_outbound_paused{tenant=\"t1\"} 1", await Server.Client.GetStringAsync("/metrics"), StringComparison.Ordinal);
        await WaitForStatusAsync(id, "submitted"); // not failed: it waits (the step shows once committed: it may still say queued a moment after Meta's 190)

        _graph.Token = MetaToken;
        await WaitForStatusAsync(id, "accepted");
        Assert.Contains("fastingest_outbound_paused{tenant=\"t1\"} 0", await Server.Client.GetStringAsync("/metrics"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_a_list_of_access_tokens_the_next_takes_over_when_Meta_refuses_the_first_and_nothing_pauses()
    {
        // The first token was revoked at Meta; the second is the one that works (a rotation half done).
        await StartAsync(new() { ["FastIngest:Tenants:0:Outbound:AccessToken"] = "revoked-token", ["FastIngest:Tenants:0:Outbound:AccessTokens:0"] = MetaToken });
        var (_, queued, _) = await SendAsync(Template("16505552101"));
        var id = IdOf(queued);
        await WaitForStatusAsync(id, "accepted");
        Assert.Equal(["Bearer revoked-token", "Bearer " + MetaToken], _graph.Sends.Where(s => s.To == "16505552101").Select(s => s.Authorization));
        var metrics = await Server.Client.GetStringAsync("/metrics");
        Assert.Contains("fastingest_outbound_paused{tenant=\"t1\"} 0", metrics, StringComparison.Ordinal);

        // From now on sends go with the second token at once.
        var (_, next, _) = await SendAsync(Template("16505552102"));
        await WaitForStatusAsync(IdOf(next), "accepted");
        Assert.Equal(["Bearer " + MetaToken], _graph.Sends.Where(s => s.To == "16505552102").Select(s => s.Authorization));
    }

    [Fact]
    public async Task A_tenant_paused_by_a_refused_token_resumes_at_once_when_a_reload_renews_it()
    {
        var file = _dir.Sub("appsettings.json");
        File.WriteAllText(file, """{"FastIngest":{"Tenants":[{"Outbound":{"AccessToken":"expired-token"}}]}}""");
        await StartAsync(new() { ["FastIngest:Tenants:0:Outbound:AccessToken"] = null, ["FastIngest:Outbound:PausedRetryInterval"] = "01:00:00" }, settingsFile: file);
        var (_, queued, _) = await SendAsync(Template("16505552103"));
        var id = IdOf(queued);
        await WaitUntilAsync(() => Server.Client.GetStringAsync("/metrics").Result.Contains("fastingest_outbound_paused{tenant=\"t1\"} 1", StringComparison.Ordinal));

        // Paused for an hour (PausedRetryInterval); the renewed token, reloaded, sends the waiting message now.
        File.WriteAllText(file, $$$"""{"FastIngest":{"Tenants":[{"Outbound":{"AccessToken":"{{{MetaToken}}}"}}]}}""");
        var (status, body) = await Server.AdminAsync(HttpMethod.Post, "/admin/reload", AdminToken);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["t1"], body.GetProperty("rotated").EnumerateArray().Select(e => e.GetString()));
        await WaitForStatusAsync(id, "accepted");
    }

    [Fact]
    public async Task A_probe_that_meets_a_transient_error_keeps_the_tenant_paused_until_one_proves_the_token()
    {
        // Backoff of 2 s: the transient answer's retry is well after the check below.
        await StartAsync(new() { ["FastIngest:Outbound:InitialBackoff"] = "00:00:02", ["FastIngest:Outbound:MaxBackoff"] = "00:00:02" });
        _graph.Token = "renewed-token";
        var (_, queued, _) = await SendAsync(Template("16505552003"));
        var id = IdOf(queued);
        await WaitUntilAsync(() => Server.Client.GetStringAsync("/metrics").Result.Contains("fastingest_outbound_paused{tenant=\"t1\"} 1", StringComparison.Ordinal));

        // The probe passes Meta's token check but meets a 500: that proves nothing about the token.
        _graph.Fail("16505552003", 500, 1, "An unknown error occurred");
        _graph.Token = MetaToken;
        await WaitUntilAsync(() => Server.Client.GetStringAsync("/metrics").Result.Contains("fastingest_outbound_retries_total{tenant=\"t1\"} 1", StringComparison.Ordinal));
        var metrics = await Server.Client.GetStringAsync("/metrics");
        Assert.Contains("fastingest_outbound_paused{tenant=\"t1\"} 1", metrics, StringComparison.Ordinal); // before: 0

        // The next probe is accepted: that one resumes the tenant.
        await WaitForStatusAsync(id, "accepted");
        Assert.Contains("fastingest_outbound_paused{tenant=\"t1\"} 0", await Server.Client.GetStringAsync("/metrics"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_passed_through_token_that_Meta_refuses_fails_that_send_and_does_not_pause_the_tenant()
    {
        // Pass-through: the tenant has no token of its own, each bot request's bearer goes to Meta (the bot proves
        // itself with X-FastIngest-Bot-Token).
        await StartAsync(new() { ["FastIngest:Tenants:0:Outbound:AccessToken"] = "" });
        _graph.Token = MetaToken;
        // A junk bearer: before, Meta's 190 paused the whole tenant.
        var (_, junk, _) = await SendAsync(Template("16505552004"), token: "junk-token-0123", botHeader: BotToken);
        var failed = await WaitForStatusAsync(IdOf(junk), "failed", token: AdminToken);
        Assert.Equal(190, failed.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Contains("passed through", failed.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Contains("fastingest_outbound_paused{tenant=\"t1\"} 0", await Server.Client.GetStringAsync("/metrics"), StringComparison.Ordinal);

        // The bot's own, valid token still sends right away.
        var (_, good, _) = await SendAsync(Template("16505552005"), token: MetaToken, botHeader: BotToken);
        await WaitForStatusAsync(IdOf(good), "accepted", token: AdminToken);
    }

    [Fact]
    public async Task In_pass_through_mode_a_caller_needs_the_bot_token_and_an_idempotency_key_belongs_to_its_caller()
    {
        await StartAsync(new() { ["FastIngest:Tenants:0:Outbound:AccessToken"] = "" });
        // Anyone who reaches the port with some bearer is refused: before, without a BotToken, it was queued and sent.
        var (refused, _, _) = await SendAsync(Template("16505552006"), token: MetaToken);
        Assert.Equal(HttpStatusCode.Unauthorized, refused);

        var (status, first, _) = await SendAsync(Template("16505552006"), token: MetaToken, key: "order-42", botHeader: BotToken);
        Assert.Equal(HttpStatusCode.Accepted, status);
        // Another caller (another Meta token) with the same key gets a send of its own, not the first one's result.
        var (_, other, response) = await SendAsync(Template("16505552007"), token: "someone-elses-meta-token", key: "order-42", botHeader: BotToken);
        Assert.NotEqual(IdOf(first), IdOf(other));
        Assert.False(response.Headers.Contains("Idempotent-Replayed"));
        // The same caller again: the first result.
        var (_, again, replayed) = await SendAsync(Template("16505552006"), token: MetaToken, key: "order-42", botHeader: BotToken);
        Assert.Equal(IdOf(first), IdOf(again));
        Assert.True(replayed.Headers.Contains("Idempotent-Replayed"));
        await WaitForStatusAsync(IdOf(first), "accepted");
    }

    [Fact]
    public async Task A_passed_through_token_is_never_written_to_disk_and_a_send_a_restart_cut_off_from_it_fails_saying_why()
    {
        var passThrough = new Dictionary<string, string?> { ["FastIngest:Tenants:0:Outbound:AccessToken"] = "" };
        await StartAsync(passThrough);
        _graph.Fail("16505552008", 503, 131000, "Something went wrong", times: 100_000);
        var (_, queued, _) = await SendAsync(Template("16505552008"), token: MetaToken, botHeader: BotToken);
        var id = IdOf(queued);
        await WaitUntilAsync(() => _graph.Sends.Count(s => s.To == "16505552008") >= 2); // Meta is failing: it waits, retrying
        Server.Engine.Outbound.Book.Commit();
        var secret = Encoding.UTF8.GetBytes(MetaToken);
        foreach (var file in Directory.EnumerateFiles(_dir.Path, "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) != "lock")) // the held DataDir lock
            Assert.True(File.ReadAllBytes(file).AsSpan().IndexOf(secret) < 0, $"{file} holds the passed-through token");

        await RestartAsync(passThrough);
        var failed = await WaitForStatusAsync(id, "failed");
        Assert.Contains("held in memory only", failed.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sends_queued_at_a_restart_all_go_out_once_afterwards()
    {
        await StartAsync(new() { ["FastIngest:Tenants:0:Outbound:PhoneNumberRate"] = "2" });
        const int Count = 12;
        var ids = new List<string>();
        for (var i = 0; i < Count; i++)
            ids.Add(IdOf((await SendAsync(Template($"1650553{i:D4}"))).Body));
        await _server!.DisposeAsync();
        _server = null;
        var before = _graph.Accepted.Count;
        Assert.True(before < Count, $"{before} of {Count} went out before the stop: some should have been still queued");
        await StartAsync(new() { ["FastIngest:Tenants:0:Outbound:PhoneNumberRate"] = "200" });

        await _graph.WaitForAcceptedAsync(Count);
        // The sentinel: one more send, queued after everything recovered at the start, goes out last.
        await SendAsync(Template("16505539999", "sentinel"));
        await _graph.WaitForAcceptedAsync(Count + 1);
        Assert.Equal(Count + 1, _graph.Accepted.Count);
        Assert.Equal(Count + 1, _graph.Accepted.Select(s => s.To).Distinct().Count());
        foreach (var id in ids)
            await WaitForStatusAsync(id, "accepted");
    }

    [Fact]
    public async Task While_the_bot_is_down_each_customer_who_writes_gets_one_holding_message_and_nothing_is_lost()
    {
        await StartAsync(new()
        {
            ["FastIngest:Tenants:0:Outbound:HoldingMessage"] = "We're having trouble, we'll reply shortly",
            ["FastIngest:Tenants:0:Outbound:HoldingAfter"] = "00:00:00.5",
            ["FastIngest:Tenants:0:Forward:BreakerFailures"] = "0",
        });
        await _bot.GoDownAsync();
        async Task Writes(string from, string wamid)
        {
            using var response = await Server.PostAsync("t1", Payloads.InboundAt(wamid, from), Secret);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        await Writes("16505554001", "wamid.H1");
        // Delivery keeps failing for longer than HoldingAfter (the server's own verdict, not a guess at a delay).
        var outage = Server.Engine.Tenants.All.Single(t => t.Id == "t1").Outage;
        await WaitUntilAsync(() => outage.HoldingDue(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
        await Writes("16505554001", "wamid.H2");
        await Writes("16505554002", "wamid.H3");
        await Writes("16505554001", "wamid.H4");
        await _graph.WaitForAcceptedAsync(2);
        // The sentinel: a send queued after the four messages were taken goes out behind any holding message they queued.
        await SendAsync(Template("16505554999", "sentinel"));
        await WaitUntilAsync(() => _graph.Accepted.Any(s => s.To == "16505554999"));

        var holding = _graph.Accepted.Where(s => s.To != "16505554999").ToList();
        Assert.Equal(["16505554001", "16505554002"], holding.Select(s => s.To).Order().ToArray());
        Assert.All(holding, s => Assert.Contains("we'll reply shortly", s.Text, StringComparison.Ordinal));

        await _bot.ComeBackAsync();
        await WaitUntilAsync(() => new[] { "H1", "H2", "H3", "H4" }.All(w => _bot.Delivered.Any(r => r.EventId == $"msg:wamid.{w}")), 30);
        Assert.Equal(2, _graph.Accepted.Count(s => s.To != "16505554999"));
    }
}
