using System.Collections.Concurrent;
using System.Text.Json;

namespace FastIngest.Tests.Support;

/// <summary>One unit of work a real queue worker ran: its id (BullMQ job id, Celery task id), its name and its argument (raw JSON).</summary>
internal sealed record WorkerJob(string Id, string? Name, string Data);

/// <summary>
/// A real queue consumer the tests run unchanged behind FastIngest: a stock BullMQ <c>Worker</c> (npm bullmq with
/// ioredis, <c>Bots/bullmq-worker.mjs</c>, run with Node) or a Celery 5 worker (Debian's python3-celery,
/// <c>Bots/celery_worker.py</c>, run with <c>/usr/bin/python3 -m celery</c>). Each job it runs is one JSON line on its
/// stdout; <see cref="Jobs"/> holds them in the order they ran.
/// </summary>
internal sealed class QueueWorker : IDisposable
{
    private static string Bots => Path.Combine(RepoPaths.Root, "tests", "FastIngest.Tests", "Bots");
    private readonly ConcurrentQueue<WorkerJob> _jobs = new();
    private readonly SemaphoreSlim _ran = new(0);
    private ChildProcess _process = null!;

    private QueueWorker()
    {
    }

    public IReadOnlyList<WorkerJob> Jobs => [.. _jobs];

    /// <summary>A BullMQ Worker on queue <paramref name="queue"/> with key prefix <paramref name="prefix"/>.</summary>
    public static async Task<QueueWorker> BullMqAsync(RedisServer redis, string queue, string prefix = "bull")
    {
        if (!Directory.Exists(Path.Combine(Bots, "node_modules", "bullmq")))
            throw new InvalidOperationException($"bullmq is not installed in {Bots}: run scripts/install-test-deps.sh");
        var worker = new QueueWorker();
        worker._process = ChildProcess.Start("node", ["bullmq-worker.mjs", redis.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), prefix, queue], Bots, onStdout: line =>
        {
            if (!line.StartsWith('{'))
                return;
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            worker.Add(new WorkerJob(r.GetProperty("id").GetString()!, r.GetProperty("name").GetString(), r.GetProperty("data").GetRawText()));
        });
        await worker.ReadyAsync(l => l == "ready");
        return worker;
    }

    /// <summary>A Celery worker (solo pool) on broker <paramref name="brokerUrl"/>, consuming queue <paramref name="queue"/>.</summary>
    public static async Task<QueueWorker> CeleryAsync(string brokerUrl, string queue = "celery")
    {
        var worker = new QueueWorker();
        worker._process = ChildProcess.Start("/usr/bin/python3",
            ["-m", "celery", "-A", "celery_worker", "worker", "--pool=solo", "-Q", queue, "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO", "-n", $"fi{Guid.NewGuid().ToString("N")[..8]}@%h"],
            Bots, new Dictionary<string, string> { ["FASTINGEST_TEST_BROKER"] = brokerUrl, ["PYTHONDONTWRITEBYTECODE"] = "1" }, line =>
            {
                if (!line.StartsWith('{'))
                    return;
                using var doc = JsonDocument.Parse(line);
                var r = doc.RootElement;
                worker.Add(new WorkerJob(r.GetProperty("id").GetString()!, "tasks.handle_whatsapp_event", r.GetProperty("payload").GetRawText()));
            });
        await worker.ReadyAsync(l => l.Contains(" ready.", StringComparison.Ordinal));
        return worker;
    }

    private async Task ReadyAsync(Func<string, bool> ready)
    {
        try
        {
            await _process.WaitForLineAsync(ready, TimeSpan.FromSeconds(60));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private void Add(WorkerJob job)
    {
        _jobs.Enqueue(job);
        _ran.Release();
    }

    /// <summary>Waits until <paramref name="done"/> holds over <see cref="Jobs"/>; fails after 60 s with the worker's output.</summary>
    public async Task WaitUntilAsync(Func<IReadOnlyList<WorkerJob>, bool> done, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!done(Jobs))
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || _process.HasExited)
                throw new TimeoutException($"{what}: {Jobs.Count} jobs ran; worker output:\n{_process.Tail}");
            await _ran.WaitAsync(left < TimeSpan.FromMilliseconds(250) ? left : TimeSpan.FromMilliseconds(250));
        }
    }

    public void Dispose()
    {
        _process?.Dispose();
        _ran.Dispose();
    }
}
