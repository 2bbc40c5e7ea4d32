using System.Net;
using FastIngest.Dispatch;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Dispatch;

/// <summary>
/// The bot goes away (answers 500, or refuses connections) while Meta keeps sending: every webhook still gets its 200,
/// the circuit breaker stops FastIngest from hammering the bot (one probe per break instead of every lane retrying),
/// and every event arrives once when the bot is back.
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

    // Backoff 50-200 ms (IngestServer's test setting): without a breaker, 8 lanes would retry ~40 times a second.
    private Task<IngestServer> Start(string breakerFailures = "5") => IngestServer.StartAsync(
        _dir.Path,
        [new TestTenant("t1", ForwardUrl: _bot.Url, Concurrency: Lanes)],
        new Dictionary<string, string?>
        {
            ["FastIngest:Tenants:0:Forward:BreakerFailures"] = breakerFailures,
            ["FastIngest:Tenants:0:Forward:BreakDuration"] = "00:00:00.5",
        });

    /// <summary>Posts <see cref="Events"/> messages from different customers (so they spread over all lanes), 8 at a time; each must get 200.</summary>
    private static async Task PostAll(IngestServer server)
    {
        await Parallel.ForAsync(0, Events, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, _) =>
        {
            using var response = await server.PostAsync("t1", Payloads.Text($"wamid.OUTAGE{i:D4}", from: $"1650555{i:D4}"), "app-secret");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        });
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
        var outageStart = _bot.Requests.Count;
        await Task.Delay(3000);
        var during = _bot.Requests.Count;
        var stats = server.Engine.DispatchStats()[0];
        Assert.NotEqual(CircuitState.Closed, stats.Circuit);
        Assert.True(stats.CircuitOpened >= 2, $"opened {stats.CircuitOpened} times: failed probes reopen it");
        // Breaker: at most 8 sends in flight when it opened plus one probe per break (0.5, 1, 2 s... capped at 0.5 s
        // here, since MaxBackoff is 0.2 s): about 6 in 3 s. Without it, 8 lanes x ~15 retries.
        Assert.True(during - outageStart <= 20, $"{during - outageStart} requests hit the bot in the 3 s after posting");
        Assert.True(during <= 5 + Lanes + 10, $"{during} requests hit the bot during the outage");

        Volatile.Write(ref down, false);
        var delivered = await _bot.WaitForDeliveredAsync(Events);
        AssertEachOnce(delivered);
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
        var start = _bot.Requests.Count;
        await Task.Delay(3000);
        Assert.True(_bot.Requests.Count - start > 60, $"{_bot.Requests.Count - start} requests in 3 s");
        Volatile.Write(ref down, false);
        AssertEachOnce(await _bot.WaitForDeliveredAsync(Events));
    }

    [Fact]
    public async Task A_bot_refusing_connections_gets_everything_once_it_listens_again()
    {
        await _bot.GoDownAsync();
        await using var server = await Start();
        await PostAll(server);
        await Task.Delay(3000);
        var stats = server.Engine.DispatchStats()[0];
        Assert.NotEqual(CircuitState.Closed, stats.Circuit);
        Assert.True(stats.Retried <= 5 + Lanes + 10, $"{stats.Retried} failed attempts during the outage");
        Assert.Equal(Events, stats.BacklogEvents);

        await _bot.ComeBackAsync();
        AssertEachOnce(await _bot.WaitForDeliveredAsync(Events));
        Assert.DoesNotContain(_bot.Requests, r => r.AnsweredStatus != 200);
    }
}
