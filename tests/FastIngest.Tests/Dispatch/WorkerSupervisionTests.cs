using System.Net;
using FastIngest.Dispatch;
using FastIngest.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace FastIngest.Tests.Dispatch;

/// <summary>
/// A delivery worker hit by an unexpected exception (not a delivery failure: a bug, a broken dependency) is not lost:
/// the fault is counted in /metrics and shown on /readyz, the event it held is retried, and every other event keeps
/// flowing. Faults are injected by wrapping the real HTTP destination; the bot is a real server.
/// </summary>
public sealed class WorkerSupervisionTests : BotTest
{

    /// <summary>Throws <see cref="InvalidOperationException"/> for the first <paramref name="faults"/> attempts of one event.</summary>
    private sealed class FaultyTarget(IForwardTarget inner, string eventId, int faults) : IForwardTarget
    {
        private int _left = faults;

        public string Describe => inner.Describe;

        public ValueTask<ForwardResult> SendAsync(ForwardItem item, CancellationToken cancellationToken)
            => item.EventId == eventId && Interlocked.Decrement(ref _left) >= 0
                ? throw new InvalidOperationException("injected fault")
                : inner.SendAsync(item, cancellationToken);

        public void Dispose() => inner.Dispose();
    }

    [Fact]
    public async Task A_worker_fault_is_counted_shown_on_readyz_and_its_event_still_arrives()
    {
        await using var server = await IngestServer.StartAsync(
            Dir.Path,
            [new TestTenant("t1", ForwardUrl: Bot.Url, Concurrency: 2)],
            services: s => s.AddSingleton(new ForwardTargetWrapper((_, target) => new FaultyTarget(target, "msg:wamid.BOOM", faults: 3))));

        using (var r = await server.PostAsync("t1", Payloads.Text("wamid.BOOM", from: "16505550001"), "app-secret"))
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        // More events than workers, after the faulty one: on the old code each fault killed a worker for good.
        for (var i = 0; i < 20; i++)
        {
            using var r = await server.PostAsync("t1", Payloads.Text($"wamid.NEXT{i:D2}", from: $"1650555{i:D4}"), "app-secret");
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }

        var delivered = await Bot.WaitForDeliveredAsync(21, TimeSpan.FromSeconds(30));
        Assert.Single(delivered, r => r.EventId == "msg:wamid.BOOM");
        Assert.Equal(21, delivered.Select(r => r.EventId).Distinct().Count());
        Assert.Equal(3, server.Engine.DispatchStats()[0].WorkerFaults);

        using var ready = await server.Client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        var reasons = await ready.Content.ReadAsStringAsync();
        Assert.Contains("tenant t1: 3 dispatch faults", reasons, StringComparison.Ordinal);
        Assert.Contains("injected fault", reasons, StringComparison.Ordinal);
        var metrics = await server.Client.GetStringAsync("/metrics");
        Assert.Contains("fastingest_dispatch_worker_faults_total{tenant=\"t1\",destination=\"forward\"} 3", metrics, StringComparison.Ordinal);
    }
}
