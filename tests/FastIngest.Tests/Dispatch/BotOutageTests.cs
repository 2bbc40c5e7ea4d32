using System.Net;
using FastIngest.Dispatch;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Dispatch;

/// <summary>
/// The bot goes away (answers 500, or refuses connections) while Meta keeps sending: every webhook still gets its 200,
/// the circuit breaker stops FastIngest from hammering the bot (one probe per break instead of every worker retrying),
/// and every event arrives once when the bot is back. The server runs on a ManualClock: 3 s of outage are 60 steps
/// of 50 ms, each step's sends finished before the next, so the counts do not depend on the machine's speed.
/// </summary>
public sealed class BotOutageTests : IAsyncLifetime
{
    private const int Lanes = 8;
    private const int Events = 200;
    private readonly TempDir _dir = new();
    private BotServer _bot = null!;

    public async Task InitializeAsync() => _bot = await BotServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _bot.DisposeAsync();
        _dir.Dispose();
    }

    // Backoff 50-200 ms (IngestServer's test setting): without a breaker, 8 workers would retry ~40 times a second.
    // Time is the server's own ManualClock: it moves only when the test says, so what counts is how many sends
    // each stretch of time lets through, not how fast this machine is.
    private readonly ManualClock _clock = new();

    private Task<IngestServer> Start(string breakerFailures = "5") => IngestServer.StartAsync(
        _dir.Path,
        [new TestTenant("t1", ForwardUrl: _bot.Url, Concurrency: Lanes)],
        new Dictionary<string, string?>
        {
            ["FastIngest:Tenants:0:Forward:BreakerFailures"] = breakerFailures,
            ["FastIngest:Tenants:0:Forward:BreakDuration"] = "00:00:00.5",
            ["FastIngest:CheckpointInterval"] = "01:00:00", // not every few real milliseconds while the test moves the clock
        },
        time: _clock);

    /// <summary>Posts <see cref="Events"/> messages from different customers (so they spread over all workers), 8 at a time; each must get 200.</summary>
    private static async Task PostAll(IngestServer server)
    {
        await Parallel.ForAsync(0, Events, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, _) =>
        {
            using var response = await server.PostAsync("t1", Payloads.Text($"wamid.OUTAGE{i:D4}", from: $"1650555{i:D4}"), "app-secret");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        });
    }

    /// <summary>Waits until every failed attempt the bot saw (or, refusing connections, the server counted) has been taken in: nothing is in flight.</summary>
    private static async Task SettledAsync(IngestServer server, Func<long> attempts)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (server.Engine.DispatchStats()[0].Retried < attempts())
        {
            Assert.True(DateTime.UtcNow < deadline, $"{attempts()} attempts, {server.Engine.DispatchStats()[0].Retried} taken in");
            await Task.Delay(5);
        }
    }

    /// <summary>Moves the clock <paramref name="steps"/> x 50 ms, letting the sends of each step finish before the next.</summary>
    private async Task RunOutageAsync(IngestServer server, Func<long> attempts, int steps)
    {
        for (var i = 0; i < steps; i++)
        {
            await SettledAsync(server, attempts);
            _clock.Advance(TimeSpan.FromMilliseconds(50));
        }
        await SettledAsync(server, attempts);
    }

    /// <summary>Once the bot is back: moves the clock until every event has been delivered.</summary>
    private async Task<IReadOnlyList<BotRequest>> RecoverAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (_bot.Delivered.Count < Events)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{_bot.Delivered.Count} of {Events} delivered");
            _clock.Advance(TimeSpan.FromMilliseconds(100));
            await Task.Delay(10);
        }
        return _bot.Delivered;
    }

    private static void AssertEachOnce(IReadOnlyList<BotRequest> delivered)
    {
        var ids = delivered.Select(r => r.EventId).ToList();
        Assert.Equal(Events, ids.Count);
        Assert.Equal(Events, ids.Distinct().Count());
        Assert.All(Enumerable.Range(0, Events), i => Assert.Contains($"msg:wamid.OUTAGE{i:D4}", ids));
    }

    [Fact]
    public async Task A_bot_answering_500_trips_the_breaker_and_gets_everything_once_it_recovers()
    {
        var down = true;
        _bot.Respond = _ => Volatile.Read(ref down) ? 500 : 200;
        await using var server = await Start();

        await PostAll(server);
        // 3 s of the server's time: 60 steps of 50 ms, each step's sends finished before the next.
        await RunOutageAsync(server, () => _bot.Requests.Count, 60);
        var during = _bot.Requests.Count;
        var stats = server.Engine.DispatchStats()[0];
        Assert.NotEqual(CircuitState.Closed, stats.Circuit);
        // Breaker: the sends out before it saw its fifth distinct failure (8 in flight, plus one more from each worker
        // whose failure came first), then one probe per break (0.5 s: MaxBackoff is 0.2 s here, so the break does not
        // grow): at most 5 + 8 + 10, the bound the wall-clock version had. Without it: 8 workers x ~15 retries.
        Assert.True(during <= 5 + Lanes + 10, $"{during} requests hit the bot in 3 s of outage");

        Volatile.Write(ref down, false);
        AssertEachOnce(await RecoverAsync());
        Assert.Equal(CircuitState.Closed, server.Engine.DispatchStats()[0].Circuit);
        Assert.Equal(0, server.Engine.DeadLetters.Count);
    }

    [Fact]
    public async Task Without_the_breaker_the_same_outage_hammers_the_bot()
    {
        // The control for the test above: the bound it checks is the breaker's doing.
        var down = true;
        _bot.Respond = _ => Volatile.Read(ref down) ? 500 : 200;
        await using var server = await Start(breakerFailures: "0");
        await PostAll(server);
        await RunOutageAsync(server, () => _bot.Requests.Count, 60);
        Assert.True(_bot.Requests.Count > 60, $"{_bot.Requests.Count} requests in 3 s of outage");
        Volatile.Write(ref down, false);
        AssertEachOnce(await RecoverAsync());
    }

    [Fact]
    public async Task A_bot_refusing_connections_gets_everything_once_it_listens_again()
    {
        await _bot.GoDownAsync();
        await using var server = await Start();
        await PostAll(server);
        // A refused connection leaves no trace at the bot: the attempts are the failures the server counted.
        await RunOutageAsync(server, () => server.Engine.DispatchStats()[0].Retried, 60);
        var stats = server.Engine.DispatchStats()[0];
        Assert.NotEqual(CircuitState.Closed, stats.Circuit);
        Assert.True(stats.Retried <= 5 + Lanes + 10, $"{stats.Retried} failed attempts in 3 s of outage");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (server.Engine.DispatchStats()[0].BacklogEvents < Events)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{server.Engine.DispatchStats()[0].BacklogEvents} of {Events} read and waiting");
            await Task.Delay(10);
        }
        Assert.Equal(Events, server.Engine.DispatchStats()[0].BacklogEvents); // all waiting: none lost, none delivered

        await _bot.ComeBackAsync();
        AssertEachOnce(await RecoverAsync());
        Assert.DoesNotContain(_bot.Requests, r => r.AnsweredStatus != 200);
    }
}
