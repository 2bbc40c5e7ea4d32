using FastIngest.Tests.Support;

namespace FastIngest.Tests.Destinations;

/// <summary>
/// The Celery destination against a real Celery 5 worker (Debian's python3-celery, <c>Bots/celery_worker.py</c>, whose
/// task is <c>def handle_whatsapp_event(self, payload)</c>), once over a real redis-server and once over a real
/// rabbitmq-server: every event of the real payloads runs the task once, with the Meta-shaped payload as its argument
/// and the event id as <c>self.request.id</c>.
/// </summary>
[Collection(nameof(RunsAlone))] // brokers and workers starting (an Erlang VM, Node, Python) load both cores for seconds
public sealed class CeleryDestinationTests
{
    [Fact]
    public async Task A_Celery_worker_on_Redis_runs_the_task_once_per_event_with_the_payload()
    {
        using var redis = await RedisServer.StartAsync();
        using var worker = await QueueWorker.CeleryAsync(redis.Url);
        await RunAsync(redis.Url, worker);
    }

    [Fact]
    public async Task A_Celery_worker_on_RabbitMQ_runs_the_task_once_per_event_with_the_payload()
    {
        using var rabbit = await RabbitMqServer.StartAsync();
        using var worker = await QueueWorker.CeleryAsync(rabbit.Url);
        await RunAsync(rabbit.Url, worker);
    }

    private static async Task RunAsync(string broker, QueueWorker worker)
    {
        await using var bot = await BotServer.StartAsync();
        using var dir = new TempDir();
        var settings = DestinationTest.Tenant(0, "t1",
            DestinationTest.Webhook("bot", bot.Url),
            new() { ["Name"] = "celery", ["Kind"] = "Celery", ["ConnectionString"] = broker, ["Task"] = "tasks.handle_whatsapp_event" });
        await using var server = await DestinationTest.StartAsync(dir.Path, settings);

        await DestinationTest.SendAllAsync(server, "t1");
        var reference = await DestinationTest.ReferenceAsync(server, bot, "t1");
        try
        {
            await worker.WaitUntilAsync(jobs => jobs.Select(j => j.Id).Distinct().Count() >= reference.Count, $"{reference.Count} tasks");
        }
        catch (TimeoutException ex)
        {
            var metrics = string.Join('\n', (await server.Client.GetStringAsync("/metrics")).Split('\n').Where(l => l.Contains("destination=\"celery\"", StringComparison.Ordinal)));
            throw new TimeoutException($"{ex.Message}\nFastIngest's celery destination:\n{metrics}", ex);
        }

        DestinationTest.AssertSameEvents(reference, worker.Jobs.Select(j => (j.Id, j.Data)), "Celery worker");
    }
}
