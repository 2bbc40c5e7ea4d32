using System.Text.Json;
using FastIngest.Destinations;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Destinations;

/// <summary>
/// The BullMQ destination against a real redis-server and a stock BullMQ <c>Worker</c> (npm bullmq 5.63 with ioredis,
/// run with Node): every event of the real payloads becomes one job the worker runs once, with the Meta-shaped payload
/// as <c>job.data</c> and the event id (with <c>:</c> written as <c>|</c>) as <c>job.id</c>.
/// </summary>
[Collection(nameof(RunsAlone))] // brokers and workers starting (an Erlang VM, Node, Python) load both cores for seconds
public sealed class BullMqDestinationTests
{
    /// <summary>The event id of BullMQ job id <paramref name="jobId"/> (the inverse of the documented mapping).</summary>
    private static string EventIdOf(string jobId) => jobId.Replace('|', ':').Replace("%7C", "|", StringComparison.Ordinal);

    [Fact]
    public async Task A_stock_BullMQ_worker_runs_every_event_once_with_the_payload_as_job_data()
    {
        using var redis = await RedisServer.StartAsync();
        using var worker = await QueueWorker.BullMqAsync(redis, "whatsapp");
        await using var bot = await BotServer.StartAsync();
        using var dir = new TempDir();
        var settings = DestinationTest.Tenant(0, "t1",
            DestinationTest.Webhook("bot", bot.Url),
            new() { ["Name"] = "jobs", ["Kind"] = "BullMQ", ["ConnectionString"] = redis.ConnectionString, ["Queue"] = "whatsapp" });
        await using var server = await DestinationTest.StartAsync(dir.Path, settings);

        await DestinationTest.SendAllAsync(server, "t1");
        var reference = await DestinationTest.ReferenceAsync(server, bot, "t1");
        await worker.WaitUntilAsync(jobs => jobs.Select(j => j.Id).Distinct().Count() >= reference.Count, $"{reference.Count} jobs");

        DestinationTest.AssertSameEvents(reference, worker.Jobs.Select(j => (EventIdOf(j.Id), j.Data)), "BullMQ worker");
        Assert.All(worker.Jobs, j => Assert.Contains(j.Name, new[] { "message", "status", "change" }));
        // The job is BullMQ's own: its hash holds what Queue.add writes, and the worker completed it.
        var first = worker.Jobs[0];
        var hash = (await redis.Db().HashGetAllAsync($"bull:whatsapp:{first.Id}")).ToDictionary(e => e.Name.ToString(), e => e.Value.ToString());
        Assert.Equal(first.Name, hash["name"]);
        Assert.Equal(first.Id, JsonDocument.Parse(hash["opts"]).RootElement.GetProperty("jobId").GetString());
        Assert.Equal("ok", JsonDocument.Parse(hash["returnvalue"]).RootElement.GetString());
    }

    [Fact]
    public async Task An_event_written_again_after_a_lost_ack_is_still_one_job()
    {
        using var redis = await RedisServer.StartAsync();
        var settings = (string dataDir) => DestinationTest.Tenant(0, "t1",
            new Dictionary<string, string?> { ["Name"] = "jobs", ["Kind"] = "BullMQ", ["ConnectionString"] = redis.ConnectionString, ["Queue"] = "q", ["JobName"] = "handle", ["JobOptions"] = """{"removeOnComplete":1000}""" });
        var one = BullMqTarget.JobId("msg:wamid.ONE");
        var two = BullMqTarget.JobId("msg:wamid.TWO");
        Assert.Equal("msg|wamid.ONE", one);
        using (var dir = new TempDir())
        await using (var server = await DestinationTest.StartAsync(dir.Path, settings(dir.Path)))
        {
            using var response = await server.PostAsync("t1", Payloads.Text("wamid.ONE"), DestinationTest.AppSecret);
            response.EnsureSuccessStatusCode();
            await Eventually.TrueAsync(async () => await redis.Db().ListLengthAsync("bull:q:wait") == 1);
        }
        var job = (await redis.Db().HashGetAllAsync($"bull:q:{one}")).ToDictionary(e => e.Name.ToString(), e => e.Value.ToString());
        Assert.Equal("handle", job["name"]);
        Assert.Equal(1000, JsonDocument.Parse(job["opts"]).RootElement.GetProperty("removeOnComplete").GetInt32());
        Assert.Equal(one, JsonDocument.Parse(job["opts"]).RootElement.GetProperty("jobId").GetString());
        Assert.Equal("wamid.ONE", JsonDocument.Parse(job["data"]).RootElement.GetProperty("entry")[0].GetProperty("changes")[0].GetProperty("value").GetProperty("messages")[0].GetProperty("id").GetString());

        // A server whose ack of ONE was lost (a fresh data directory: it has never delivered anything) writes ONE
        // again, then TWO: ONE is BullMQ's "duplicated" (the job exists), not a second job.
        using (var dir2 = new TempDir())
        await using (var again = await DestinationTest.StartAsync(dir2.Path, settings(dir2.Path)))
        {
            (await again.PostAsync("t1", Payloads.Text("wamid.ONE"), DestinationTest.AppSecret)).EnsureSuccessStatusCode();
            (await again.PostAsync("t1", Payloads.Text("wamid.TWO"), DestinationTest.AppSecret)).EnsureSuccessStatusCode();
            await Eventually.TrueAsync(async () =>
                (await redis.Db().ListRangeAsync("bull:q:wait")).Select(v => v.ToString()).Contains(two)
                && (await redis.Db().StreamRangeAsync("bull:q:events")).Any(e => e["event"] == "duplicated" && e["jobId"] == one));
        }
        Assert.Equal([two, one], (await redis.Db().ListRangeAsync("bull:q:wait")).Select(v => v.ToString()));
    }
}
