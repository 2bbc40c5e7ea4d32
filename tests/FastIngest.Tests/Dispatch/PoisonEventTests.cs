using System.Net;
using System.Text;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Dispatch;

/// <summary>
/// One event the bot refuses forever (a poison event) blocks only the later events of its own key (the customer's
/// wa_id), never the other customers, never a change without a customer, and never opens the destination's breaker.
/// The real server forwards to a real bot that answers 500 to that one event id and 200 to everything else.
/// </summary>
public sealed class PoisonEventTests : BotTest
{
    private const int Customers = 40;
    private const int Rounds = 5;
    private const string Poisoner = "16505559999";

    private Task<IngestServer> Start(int maxAttempts) => IngestServer.StartAsync(
        Dir.Path,
        [new TestTenant("t1", ForwardUrl: Bot.Url, Concurrency: 4)],
        new Dictionary<string, string?>
        {
            ["FastIngest:Tenants:0:Forward:MaxAttempts"] = maxAttempts.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["FastIngest:Tenants:0:Forward:InitialBackoff"] = "00:00:00.2",
            ["FastIngest:Tenants:0:Forward:MaxBackoff"] = "00:00:00.2",
        });

    private int PoisonAttempts(string eventId) => Bot.Requests.Count(r => r.EventId == eventId);

    private async Task WaitForAttemptsAsync(string eventId, int attempts)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (PoisonAttempts(eventId) < attempts)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the poison event was tried {PoisonAttempts(eventId)} times");
            await Task.Delay(20);
        }
    }

    /// <summary>
    /// Steady traffic from <see cref="Customers"/> customers while the poison is retried. For each event, the poison's
    /// attempts between the event's 200 and its arrival at the bot are the delay, counted in backoff periods.
    /// </summary>
    private async Task<List<(string EventId, int PoisonAttemptsAtAck)>> PostTrafficAsync(IngestServer server, string poisonId, string tag)
    {
        var acked = new List<(string, int)>();
        for (var round = 0; round < Rounds; round++)
        {
            for (var c = 0; c < Customers; c++)
            {
                var wamid = $"wamid.{tag}{round}C{c:D2}";
                using var response = await server.PostAsync("t1", Payloads.Text(wamid, from: $"1650555{c:D4}"), "app-secret");
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                acked.Add(($"msg:{wamid}", PoisonAttempts(poisonId)));
            }
        }
        return acked;
    }

    [Fact]
    public async Task A_message_refused_forever_delays_only_its_own_customer_and_never_opens_the_breaker()
    {
        const string poison = "msg:wamid.POISON";
        Bot.Respond = id => id == poison ? 500 : 200;
        await using var server = await Start(maxAttempts: 0); // retried until MaxAge (1 day): for this test, forever

        using (var r = await server.PostAsync("t1", Payloads.Text("wamid.POISON", from: Poisoner), "app-secret"))
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        await WaitForAttemptsAsync(poison, 2);
        // The poisoner writes again: these must wait behind the poison, in order.
        for (var i = 0; i < 3; i++)
        {
            using var r = await server.PostAsync("t1", Payloads.Text($"wamid.AFTER{i}", from: Poisoner), "app-secret");
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
        var acked = await PostTrafficAsync(server, poison, "S");

        // Every other customer's events arrive while the poison is still being retried (1 in 4 of them shared its
        // lane on the old code, where they never arrived).
        await Bot.WaitForDeliveredAsync(Customers * Rounds, TimeSpan.FromSeconds(30));
        var requests = Bot.Requests;
        foreach (var (eventId, attemptsAtAck) in acked)
        {
            var arrival = requests.ToList().FindIndex(r => r.EventId == eventId && r.AnsweredStatus == 200);
            Assert.True(arrival >= 0, $"{eventId} never arrived");
            var attemptsAtArrival = requests.Take(arrival).Count(r => r.EventId == poison);
            // The delay, measured in the poison's retries (one per 100-200 ms backoff): a few, not MaxAge.
            Assert.True(attemptsAtArrival - attemptsAtAck <= 5, $"{eventId} waited {attemptsAtArrival - attemptsAtAck} poison retries");
        }
        // The poisoner's later messages are ordered behind the poison: none of them has gone out.
        Assert.DoesNotContain(requests, r => r.EventId!.StartsWith("msg:wamid.AFTER", StringComparison.Ordinal));
        // The poison is still being retried after all that traffic (waited for, not assumed: the traffic can be done
        // within one backoff), and it neither went to the dead-letter queue nor opened the breaker.
        var attemptsAfterTraffic = PoisonAttempts(poison);
        await WaitForAttemptsAsync(poison, attemptsAfterTraffic + 1);
        Assert.DoesNotContain(Bot.Requests, r => r.EventId!.StartsWith("msg:wamid.AFTER", StringComparison.Ordinal));
        Assert.Equal(0, server.Engine.DeadLetters.Count);
        var stats = server.Engine.DispatchStats()[0];
        Assert.Equal(0, stats.CircuitOpened);
    }

    [Fact]
    public async Task The_poison_reaches_the_dead_letter_queue_at_MaxAttempts_then_its_customer_flows_in_order()
    {
        const string poison = "msg:wamid.POISON";
        Bot.Respond = id => id == poison ? 500 : 200;
        await using var server = await Start(maxAttempts: 6);

        using (var r = await server.PostAsync("t1", Payloads.Text("wamid.POISON", from: Poisoner), "app-secret"))
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        for (var i = 0; i < 3; i++)
        {
            using var r = await server.PostAsync("t1", Payloads.Text($"wamid.AFTER{i}", from: Poisoner), "app-secret");
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
        await PostTrafficAsync(server, poison, "D");

        var delivered = await Bot.WaitForDeliveredAsync(Customers * Rounds + 3, TimeSpan.FromSeconds(30));
        Assert.Equal(6, PoisonAttempts(poison));
        Assert.Equal(1, server.Engine.DeadLetters.Count);
        var after = delivered.Where(r => r.EventId!.StartsWith("msg:wamid.AFTER", StringComparison.Ordinal)).Select(r => r.EventId).ToList();
        Assert.Equal(["msg:wamid.AFTER0", "msg:wamid.AFTER1", "msg:wamid.AFTER2"], after);
        // ... and only after the poison's last attempt.
        var requests = Bot.Requests.ToList();
        Assert.True(requests.FindLastIndex(r => r.EventId == poison) < requests.FindIndex(r => r.EventId == "msg:wamid.AFTER0"));
        Assert.Equal(0, server.Engine.DispatchStats()[0].CircuitOpened);
    }

    [Fact]
    public async Task A_change_without_a_customer_refused_forever_holds_up_nothing()
    {
        // whatsapp-api-js's stock handler answers 500 to every change without value.metadata (account_update,
        // template status updates...). Such a change has no customer and is ordered behind nothing.
        var accountUpdate = Encoding.UTF8.GetBytes("""{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","time":1749416383,"changes":[{"value":{"phone_number":"15550783881","event":"ACCOUNT_VIOLATION","violation_info":{"violation_type":"SPAM"}},"field":"account_update"}]}]}""");
        string? changeId = null;
        Bot.Respond = id =>
        {
            if (id!.StartsWith("change:", StringComparison.Ordinal))
            {
                changeId = id;
                return 500;
            }
            return 200;
        };
        await using var server = await Start(maxAttempts: 0);
        using (var r = await server.PostAsync("t1", accountUpdate, "app-secret"))
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (Volatile.Read(ref changeId) is not { } seen || PoisonAttempts(seen) < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "the change was not tried twice");
            await Task.Delay(20);
        }
        // Every customer, including the phone number's whole traffic, flows past it.
        var acked = await PostTrafficAsync(server, changeId!, "A");
        await Bot.WaitForDeliveredAsync(Customers * Rounds, TimeSpan.FromSeconds(30));
        var requests = Bot.Requests.ToList();
        foreach (var (eventId, attemptsAtAck) in acked)
        {
            var arrival = requests.FindIndex(r => r.EventId == eventId && r.AnsweredStatus == 200);
            Assert.True(requests.Take(arrival).Count(r => r.EventId == changeId) - attemptsAtAck <= 5, $"{eventId} waited behind the change");
        }
        Assert.Equal(0, server.Engine.DispatchStats()[0].CircuitOpened);
        Assert.Equal(0, server.Engine.DeadLetters.Count);
    }
}
