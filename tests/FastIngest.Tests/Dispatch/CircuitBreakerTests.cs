using FastIngest.Dispatch;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Dispatch;

/// <summary>The breaker's state machine on a clock the test moves: thresholds, probes, doubling, Retry-After.</summary>
public sealed class CircuitBreakerTests
{
    private readonly ManualClock _clock = new();

    private CircuitBreaker Breaker(int failures = 3) => new("http://bot/", failures, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(4), _clock);

    private static void Fail(CircuitBreaker b, int times)
    {
        for (var i = 0; i < times; i++)
            b.OnFailure(probe: false, retryAfter: null, key: (ulong)i + 1);
    }

    [Fact]
    public async Task Stays_closed_below_the_threshold_and_a_success_resets_the_count()
    {
        var b = Breaker();
        Fail(b, 2);
        Assert.True(b.OnSuccess() is false);
        Fail(b, 2);
        Assert.Equal(CircuitState.Closed, b.State);
        var send = b.WaitToSendAsync(CancellationToken.None);
        Assert.True(send.IsCompletedSuccessfully);
        Assert.False(await send);
    }

    [Fact]
    public async Task Opens_at_the_threshold_then_lets_exactly_one_probe_out_when_the_break_ends()
    {
        var b = Breaker();
        Fail(b, 3);
        Assert.Equal(CircuitState.Open, b.State);
        Assert.Equal(1, b.Opened);

        var first = b.WaitToSendAsync(CancellationToken.None).AsTask();
        var second = b.WaitToSendAsync(CancellationToken.None).AsTask();
        _clock.Advance(TimeSpan.FromMilliseconds(999));
        await Task.Delay(20);
        Assert.False(first.IsCompleted || second.IsCompleted);

        _clock.Advance(TimeSpan.FromMilliseconds(1));
        var probe = await Task.WhenAny(first, second);
        Assert.True(await probe);
        Assert.Equal(CircuitState.HalfOpen, b.State);
        var waiter = probe == first ? second : first;
        await Task.Delay(20);
        Assert.False(waiter.IsCompleted); // everyone else waits for the probe's outcome

        Assert.True(b.OnSuccess());
        Assert.False(await waiter.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(CircuitState.Closed, b.State);
    }

    [Fact]
    public async Task Each_failed_probe_doubles_the_break_up_to_the_cap()
    {
        var b = Breaker();
        Fail(b, 3);
        var breaks = new List<TimeSpan>();
        for (var i = 0; i < 4; i++)
        {
            var wait = b.WaitToSendAsync(CancellationToken.None).AsTask();
            _clock.Advance(breaks.Count == 0 ? TimeSpan.FromSeconds(1) : breaks[^1]);
            Assert.True(await wait.WaitAsync(TimeSpan.FromSeconds(5)));
            breaks.Add(b.OnFailure(probe: true, retryAfter: null)!.Value);
        }
        Assert.Equal([TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(4)], breaks);
        Assert.Equal(5, b.Opened);
    }

    [Fact]
    public void One_key_failing_again_and_again_never_opens_it()
    {
        var b = Breaker();
        for (var i = 0; i < 50; i++)
            Assert.Null(b.OnFailure(probe: false, retryAfter: null, key: 42));
        Assert.Equal(CircuitState.Closed, b.State);
        // Two other customers failing too makes three distinct keys: the destination itself is failing.
        Assert.Null(b.OnFailure(probe: false, retryAfter: null, key: 7));
        Assert.NotNull(b.OnFailure(probe: false, retryAfter: null, key: 8));
        Assert.Equal(CircuitState.Open, b.State);
    }

    [Fact]
    public void Refused_connections_count_whatever_the_key()
    {
        var b = Breaker();
        Assert.Null(b.OnFailure(probe: false, retryAfter: null, key: 42, connectionFailed: true));
        Assert.Null(b.OnFailure(probe: false, retryAfter: null, key: 42, connectionFailed: true));
        Assert.NotNull(b.OnFailure(probe: false, retryAfter: null, key: 42, connectionFailed: true));
    }

    [Fact]
    public void A_success_forgets_the_failing_keys()
    {
        var b = Breaker();
        b.OnFailure(probe: false, retryAfter: null, key: 1);
        b.OnFailure(probe: false, retryAfter: null, key: 2);
        b.OnSuccess();
        Assert.Null(b.OnFailure(probe: false, retryAfter: null, key: 3));
        Assert.Null(b.OnFailure(probe: false, retryAfter: null, key: 4));
        Assert.Equal(CircuitState.Closed, b.State);
    }

    [Fact]
    public void A_late_failure_of_a_send_from_before_the_break_does_not_shorten_or_restart_it()
    {
        var b = Breaker();
        Fail(b, 3);
        _clock.Advance(TimeSpan.FromMilliseconds(500));
        Assert.Null(b.OnFailure(probe: false, retryAfter: null, key: 9));
        Assert.Equal(1, b.Opened);
    }

    [Fact]
    public async Task Retry_After_opens_at_once_and_only_ever_lengthens_a_break()
    {
        var b = Breaker(failures: 100);
        Assert.Equal(TimeSpan.FromSeconds(3), b.OnFailure(probe: false, retryAfter: TimeSpan.FromSeconds(3)));
        Assert.Equal(CircuitState.Open, b.State);
        Assert.Null(b.OnFailure(probe: false, retryAfter: TimeSpan.FromSeconds(1)));

        var wait = b.WaitToSendAsync(CancellationToken.None).AsTask();
        _clock.Advance(TimeSpan.FromSeconds(2));
        await Task.Delay(20);
        Assert.False(wait.IsCompleted);
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await wait.WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task A_Retry_After_of_months_is_capped_at_an_hour_and_waiting_it_out_works()
    {
        // A bot's Retry-After of 60 days used to open the breaker for 60 days, and Task.WaitAsync throws for waits
        // over ~49 days: the lane worker that waited died.
        var b = Breaker(failures: 100);
        Assert.Equal(TimeSpan.FromHours(1), b.OnFailure(probe: false, retryAfter: TimeSpan.FromDays(60)));
        var wait = b.WaitToSendAsync(CancellationToken.None).AsTask();
        await Task.Delay(20);
        Assert.False(wait.IsFaulted, wait.Exception?.ToString());
        _clock.Advance(TimeSpan.FromHours(1));
        Assert.True(await wait.WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task An_abandoned_probe_hands_the_probe_to_the_next_sender()
    {
        var b = Breaker();
        Fail(b, 3);
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await b.WaitToSendAsync(CancellationToken.None));
        var next = b.WaitToSendAsync(CancellationToken.None).AsTask();
        await Task.Delay(20);
        Assert.False(next.IsCompleted);
        b.OnAbandoned();
        Assert.True(await next.WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task Waiting_can_be_cancelled()
    {
        var b = Breaker();
        Fail(b, 3);
        using var cts = new CancellationTokenSource();
        var wait = b.WaitToSendAsync(cts.Token).AsTask();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait);
    }

    [Fact]
    public void Zero_failures_means_no_breaker()
    {
        var b = Breaker(failures: 0);
        Assert.Null(b.OnFailure(probe: false, retryAfter: TimeSpan.FromSeconds(30)));
        Assert.Equal(CircuitState.Closed, b.State);
    }
}
