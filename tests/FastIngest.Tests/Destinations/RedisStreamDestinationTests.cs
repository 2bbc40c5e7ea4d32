using FastIngest.Tests.Support;
using StackExchange.Redis;

namespace FastIngest.Tests.Destinations;

/// <summary>
/// The RedisStream destination against a real redis-server, read the way a stream consumer reads it: a consumer
/// group created before FastIngest writes, <c>XREADGROUP</c> and <c>XACK</c>. Every event of the real payloads is one
/// entry, read once by the group, with <c>event_id</c>, <c>tenant</c>, <c>kind</c> and the Meta-shaped <c>payload</c>.
/// </summary>
[Collection(nameof(RunsAlone))] // brokers and workers starting (an Erlang VM, Node, Python) load both cores for seconds
public sealed class RedisStreamDestinationTests
{
    [Fact]
    public async Task A_consumer_group_reads_every_event_once_with_its_id_tenant_kind_and_payload()
    {
        using var redis = await RedisServer.StartAsync();
        var db = redis.Db();
        Assert.True(await db.StreamCreateConsumerGroupAsync("wa:events", "workers", StreamPosition.NewMessages, createStream: true));
        await using var bot = await BotServer.StartAsync();
        using var dir = new TempDir();
        var settings = DestinationTest.Tenant(0, "t1",
            DestinationTest.Webhook("bot", bot.Url),
            new() { ["Name"] = "stream", ["Kind"] = "RedisStream", ["ConnectionString"] = redis.ConnectionString, ["Stream"] = "wa:events", ["MaxLength"] = "100000" });
        await using var server = await DestinationTest.StartAsync(dir.Path, settings);

        await DestinationTest.SendAllAsync(server, "t1");
        var reference = await DestinationTest.ReferenceAsync(server, bot, "t1");
        await Eventually.TrueAsync(async () => await DestinationTest.ForwardedAsync(server, "t1", "stream") == reference.Count, seconds: 60, explain: () => DestinationTest.DescribeAsync(server, "t1", "stream"));

        var got = new List<(string Id, string Json)>();
        while (await db.StreamReadGroupAsync("wa:events", "workers", "consumer-1", StreamPosition.NewMessages, count: 50) is { Length: > 0 } batch)
        {
            foreach (var entry in batch)
            {
                Assert.Equal("t1", entry["tenant"].ToString());
                Assert.Contains(entry["kind"].ToString(), new[] { "message", "status", "change" });
                got.Add((entry["event_id"].ToString(), entry["payload"].ToString()));
            }
            Assert.Equal(batch.Length, await db.StreamAcknowledgeAsync("wa:events", "workers", [.. batch.Select(e => e.Id)]));
        }
        DestinationTest.AssertSameEvents(reference, got, "Redis stream consumer group");
        Assert.Equal(0, (await db.StreamPendingAsync("wa:events", "workers")).PendingMessageCount);
    }
}
