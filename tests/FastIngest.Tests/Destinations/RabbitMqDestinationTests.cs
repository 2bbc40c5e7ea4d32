using System.Text;
using FastIngest.Tests.Support;
using RabbitMQ.Client;

namespace FastIngest.Tests.Destinations;

/// <summary>
/// The RabbitMQ destination against a real rabbitmq-server: every event of the real payloads is published,
/// persistent, to a topic exchange, confirmed by the broker, and lands in the queue FastIngest declared and bound
/// (a quorum queue by default); a broker SIGKILLed mid-stream and started again on the same data loses nothing that
/// was confirmed, and publishes an event twice only inside the documented in-flight window (at most
/// <c>Concurrency</c> publishes whose confirm the kill cut off).
/// </summary>
/// <remarks>
/// The kill test uses a classic durable queue: RabbitMQ 3.10 SIGKILLed seconds after declaring a quorum queue can
/// come back without it registered ("running pre init for 0 registered servers" after repairing its unclosed
/// <c>names.dets</c>), and then takes publishes to it without ever confirming them. FastIngest does the right thing
/// there (nothing unconfirmed counts as delivered: every attempt times out and is retried), but the queue never
/// comes back, so that is the broker's failure, not one a test of ours can wait out.
/// </remarks>
[Collection(nameof(RunsAlone))] // brokers and workers starting (an Erlang VM, Node, Python) load both cores for seconds
public sealed class RabbitMqDestinationTests
{
    private const int Concurrency = 4;

    [Fact]
    public async Task Every_event_is_confirmed_into_the_quorum_queue_it_declared()
    {
        using var rabbit = await RabbitMqServer.StartAsync();
        await using var bot = await BotServer.StartAsync();
        using var dir = new TempDir();
        var settings = DestinationTest.Tenant(0, "t1", DestinationTest.Webhook("bot", bot.Url), Rabbit(rabbit, quorum: true));
        await using var server = await DestinationTest.StartAsync(dir.Path, settings);

        await DestinationTest.SendAllAsync(server, "t1");
        var reference = await DestinationTest.ReferenceAsync(server, bot, "t1");
        await Eventually.TrueAsync(async () => await DestinationTest.ForwardedAsync(server, "t1", "rabbit") == reference.Count, seconds: 60, explain: () => DestinationTest.DescribeAsync(server, "t1", "rabbit"));

        Assert.Equal("quorum", await QueueTypeAsync(rabbit.Url, "wa-events"));
        var got = await DrainAsync(rabbit.Url, "wa-events");
        DestinationTest.AssertSameEvents(reference, got.Select(m => (m.Id, m.Body)), "RabbitMQ quorum queue");
    }

    [Fact]
    public async Task A_broker_killed_mid_stream_and_started_again_loses_no_event()
    {
        using var rabbit = await RabbitMqServer.StartAsync();
        await using var bot = await BotServer.StartAsync();
        using var dir = new TempDir();
        var settings = DestinationTest.Tenant(0, "t1", DestinationTest.Webhook("bot", bot.Url), Rabbit(rabbit, quorum: false));
        await using var server = await DestinationTest.StartAsync(dir.Path, settings);

        var files = DestinationTest.PayloadFiles();
        var half = files.Count / 2;
        foreach (var file in files.Take(half))
            (await server.PostAsync("t1", await File.ReadAllBytesAsync(file), DestinationTest.AppSecret)).EnsureSuccessStatusCode();
        await Eventually.TrueAsync(async () => await DestinationTest.ForwardedAsync(server, "t1", "rabbit") > 0, seconds: 60, explain: () => DestinationTest.DescribeAsync(server, "t1", "rabbit"));

        // The broker dies without a word; webhooks keep being answered 200 (the log holds them), deliveries fail and wait.
        rabbit.Kill();
        foreach (var file in files.Skip(half))
            (await server.PostAsync("t1", await File.ReadAllBytesAsync(file), DestinationTest.AppSecret)).EnsureSuccessStatusCode();
        await rabbit.StartAgainAsync();

        var reference = await DestinationTest.ReferenceAsync(server, bot, "t1");
        await Eventually.TrueAsync(async () => await DestinationTest.ForwardedAsync(server, "t1", "rabbit") == reference.Count, seconds: 120, explain: async () => await DestinationTest.DescribeAsync(server, "t1", "rabbit") + "\nbroker:\n" + rabbit.Tail);

        var got = await DrainAsync(rabbit.Url, "wa-events");
        var distinct = got.GroupBy(m => m.Id).Select(g => g.First()).ToList();
        DestinationTest.AssertSameEvents(reference, distinct.Select(m => (m.Id, m.Body)), "RabbitMQ queue");
        var doubled = got.Count - distinct.Count;
        Assert.True(doubled <= Concurrency, $"{doubled} events published twice, more than the in-flight window of {Concurrency}");
        Assert.All(got, m =>
        {
            Assert.Equal(2, m.DeliveryMode);
            Assert.Matches(@"^whatsapp\.t1\.(message|status|change)$", m.RoutingKey);
        });
    }

    private static Dictionary<string, string?> Rabbit(RabbitMqServer rabbit, bool quorum) => new()
    {
        ["Name"] = "rabbit",
        ["Kind"] = "RabbitMQ",
        ["ConnectionString"] = rabbit.Url,
        ["Exchange"] = "whatsapp",
        ["RoutingKey"] = "whatsapp.{tenant}.{kind}",
        ["Queue"] = "wa-events",
        ["QuorumQueue"] = quorum ? "true" : "false",
        ["Concurrency"] = Concurrency.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Timeout"] = "00:00:05",
    };

    [Fact]
    public async Task A_hung_broker_that_never_confirms_costs_timed_out_attempts_not_a_stuck_destination()
    {
        using var rabbit = await RabbitMqServer.StartAsync();
        await using var bot = await BotServer.StartAsync();
        using var dir = new TempDir();
        var rabbitSettings = Rabbit(rabbit, quorum: false);
        rabbitSettings["Timeout"] = "00:00:01";
        rabbitSettings["BreakDuration"] = "00:00:01";
        var settings = DestinationTest.Tenant(0, "t1", DestinationTest.Webhook("bot", bot.Url), rabbitSettings);
        await using var server = await DestinationTest.StartAsync(dir.Path, settings);
        (await server.PostAsync("t1", Payloads.Text("wamid.BEFORE"), DestinationTest.AppSecret)).EnsureSuccessStatusCode();
        await Eventually.TrueAsync(async () => await DestinationTest.ForwardedAsync(server, "t1", "rabbit") == 1, explain: () => DestinationTest.DescribeAsync(server, "t1", "rabbit"));

        // Frozen: the connection stays open and the publish is written, but no confirm ever comes. Each attempt must
        // end at Timeout and be retried (several failed attempts), not wait on the confirm.
        rabbit.Freeze();
        try
        {
            (await server.PostAsync("t1", Payloads.Text("wamid.DURING"), DestinationTest.AppSecret)).EnsureSuccessStatusCode();
            await Eventually.TrueAsync(async () => MetricsText.Value(await server.Client.GetStringAsync("/metrics"), "fastingest_forward_retries_total", "tenant=\"t1\",destination=\"rabbit\"") >= 3, seconds: 60,
                explain: () => DestinationTest.DescribeAsync(server, "t1", "rabbit"));
            Assert.Equal(1, await DestinationTest.ForwardedAsync(server, "t1", "rabbit"));
        }
        finally
        {
            rabbit.Thaw();
        }
        await Eventually.TrueAsync(async () => await DestinationTest.ForwardedAsync(server, "t1", "rabbit") == 2, seconds: 60, explain: () => DestinationTest.DescribeAsync(server, "t1", "rabbit"));
        var ids = (await DrainAsync(rabbit.Url, "wa-events")).Select(m => m.Id).Distinct().Order(StringComparer.Ordinal);
        Assert.Equal(["msg:wamid.BEFORE", "msg:wamid.DURING"], ids);
    }

    /// <summary>The <c>x-queue-type</c> of <paramref name="queue"/>: a passive redeclare as quorum succeeds only on a quorum queue.</summary>
    private static async Task<string> QueueTypeAsync(string url, string queue)
    {
        var factory = new ConnectionFactory { Uri = new Uri(url) };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        try
        {
            await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, arguments: new Dictionary<string, object?> { ["x-queue-type"] = "classic" });
            return "classic";
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == 406)
        {
            return "quorum"; // PRECONDITION_FAILED: inequivalent arg 'x-queue-type'
        }
    }

    /// <summary>Takes every message off <paramref name="queue"/> (a consumer of the test's own, with the official client).</summary>
    private static async Task<List<(string Id, string Body, string RoutingKey, int DeliveryMode)>> DrainAsync(string url, string queue)
    {
        var factory = new ConnectionFactory { Uri = new Uri(url) };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        var got = new List<(string, string, string, int)>();
        while (await channel.BasicGetAsync(queue, autoAck: true) is { } message)
            got.Add((message.BasicProperties.MessageId!, Encoding.UTF8.GetString(message.Body.Span), message.RoutingKey, (int)message.BasicProperties.DeliveryMode));
        return got;
    }
}
