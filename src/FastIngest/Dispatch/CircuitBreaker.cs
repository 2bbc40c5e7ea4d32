namespace FastIngest.Dispatch;

/// <summary>Where a destination's circuit breaker stands (the numbers are what <c>fastingest_forward_circuit_state</c> reports).</summary>
public enum CircuitState
{
    /// <summary>Sends go out.</summary>
    Closed = 0,

    /// <summary>Events of <c>Forward:BreakerFailures</c> distinct customers failed with no success between: no send goes out until the break ends.</summary>
    Open = 1,

    /// <summary>The break is over and one send (the probe) is out; everyone else waits for its outcome.</summary>
    HalfOpen = 2,
}

/// <summary>
/// The circuit breaker of one destination (a bot URL), shared by every worker and every tenant that forwards there,
/// so a bot that is down is not hammered by <c>Concurrency</c> workers each retrying on its own schedule.
/// </summary>
/// <remarks>
/// <para>Closed: it opens for <paramref name="breakDuration"/> on destination-wide failure only: transient failures
/// (5xx, 408, 425, timeouts) of <paramref name="failureThreshold"/> distinct ordering keys (customers) with no
/// success in between, where a refused or broken connection counts as a key of its own each time (it cannot be the
/// event's fault). One event the bot keeps refusing is one key however often it fails, so it never opens the breaker
/// for everyone else. A bot's <c>Retry-After</c> on a 429 opens it at once for that long (capped at
/// <see cref="MaxRetryAfter"/>), since the bot has said when to come back.</para>
/// <para>Open: senders wait in <see cref="WaitToSendAsync"/>; waiting is not an attempt, so it counts against neither
/// <c>Forward:MaxAttempts</c> nor the backoff. When the break ends the first sender becomes the probe (half-open).</para>
/// <para>Half-open: a probe that gets through closes the breaker and releases everyone; a probe that fails opens it
/// again for twice the last break, up to <paramref name="maxBreakDuration"/>. A permanent refusal (another 4xx) is
/// an answer from a working bot, so it counts as a success here.</para>
/// Waiting and state changes are the slow path; while closed, <see cref="WaitToSendAsync"/> completes synchronously
/// without a lock and without allocating.
/// </remarks>
internal sealed class CircuitBreaker(string destination, int failureThreshold, TimeSpan breakDuration, TimeSpan maxBreakDuration, TimeProvider time)
{
    /// <summary>The longest <c>Retry-After</c> honoured anywhere: 1 hour.</summary>
    public static readonly TimeSpan MaxRetryAfter = TimeSpan.FromHours(1);

    private readonly object _gate = new();
    private readonly HashSet<ulong> _failingKeys = [];
    private int _state; // CircuitState, read without the lock on the fast path
    private int _consecutiveFailures;
    private int _connectionFailures;
    private long _openUntilTicks; // TimeProvider UTC ticks
    private TimeSpan _lastBreak;
    private long _opened;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    /// <summary>The destination this breaker guards (for logs and metrics).</summary>
    public string Destination { get; } = destination;

    /// <summary>Where the breaker stands now.</summary>
    public CircuitState State => (CircuitState)Volatile.Read(ref _state);

    /// <summary>Times the breaker opened since start (a failed probe counts again).</summary>
    public long Opened => Interlocked.Read(ref _opened);

    /// <summary>False when <c>Forward:BreakerFailures</c> is 0: the breaker never opens.</summary>
    public bool Enabled => failureThreshold > 0;

    /// <summary>
    /// Completes when a send may go out: at once while closed; while open, when the break ends (the caller is then
    /// the probe) or when another caller's probe got through. Returns true when the caller is the probe, which must
    /// report its outcome with <see cref="OnSuccess"/>, <see cref="OnFailure"/> or <see cref="OnAbandoned"/>.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled while waiting.</exception>
    public ValueTask<bool> WaitToSendAsync(CancellationToken cancellationToken)
        => Volatile.Read(ref _state) == (int)CircuitState.Closed ? new(false) : WaitSlowAsync(cancellationToken);

    private async ValueTask<bool> WaitSlowAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            Task changed;
            TimeSpan wait;
            lock (_gate)
            {
                switch ((CircuitState)_state)
                {
                    case CircuitState.Closed:
                        return false;
                    case CircuitState.Open:
                        var left = _openUntilTicks - time.GetUtcNow().UtcTicks;
                        if (left <= 0)
                        {
                            SetState(CircuitState.HalfOpen);
                            return true;
                        }
                        wait = TimeSpan.FromTicks(left);
                        break;
                    default:
                        wait = Timeout.InfiniteTimeSpan; // a probe is out: wait for its outcome
                        break;
                }
                changed = _changed.Task;
            }
            try
            {
                await changed.WaitAsync(wait, time, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // the break is over: loop to become the probe (or find someone else already is)
            }
        }
    }

    /// <summary>
    /// The destination took a send (or answered it with a permanent refusal): closes the breaker. Returns true when
    /// this closed a breaker that was open or half-open.
    /// </summary>
    public bool OnSuccess()
    {
        if (Volatile.Read(ref _state) == (int)CircuitState.Closed && Volatile.Read(ref _consecutiveFailures) == 0)
            return false;
        lock (_gate)
        {
            _consecutiveFailures = 0;
            _connectionFailures = 0;
            _failingKeys.Clear();
            _lastBreak = TimeSpan.Zero;
            if (_state == (int)CircuitState.Closed)
                return false;
            SetState(CircuitState.Closed);
            return true;
        }
    }

    /// <summary>
    /// A transient failure of an event of ordering key <paramref name="key"/> (<paramref name="connectionFailed"/>:
    /// the connection was refused or broke, which counts whatever the key). Returns the break it started (null when
    /// the breaker stays closed or was already open): once failures of <c>failureThreshold</c> distinct keys came
    /// with no success between, after a failed probe (twice the last break, capped), or for the bot's own
    /// <paramref name="retryAfter"/> (capped at <see cref="MaxRetryAfter"/>).
    /// </summary>
    public TimeSpan? OnFailure(bool probe, TimeSpan? retryAfter, ulong key = 0, bool connectionFailed = false)
    {
        if (!Enabled)
            return null;
        lock (_gate)
        {
            _consecutiveFailures++;
            if (connectionFailed)
                _connectionFailures++;
            else if (_failingKeys.Count < failureThreshold)
                _failingKeys.Add(key);
            TimeSpan? length = null;
            if (probe && _state == (int)CircuitState.HalfOpen)
                length = TimeSpan.FromTicks(Math.Min(Math.Max(_lastBreak.Ticks * 2, breakDuration.Ticks), maxBreakDuration.Ticks));
            else if (_state == (int)CircuitState.Closed && _failingKeys.Count + _connectionFailures >= failureThreshold)
                length = breakDuration;
            if (retryAfter is { } ra && ra > (length ?? TimeSpan.Zero))
                length = ra < MaxRetryAfter ? ra : MaxRetryAfter;
            if (length is not { } l)
                return null;

            var until = time.GetUtcNow().UtcTicks + l.Ticks;
            if (_state == (int)CircuitState.Open)
            {
                // Already open (a send from before the break failed late): it may lengthen the break, never shorten it.
                if (until <= _openUntilTicks)
                    return null;
                _openUntilTicks = until;
                return l;
            }
            _lastBreak = l;
            _openUntilTicks = until;
            Interlocked.Increment(ref _opened);
            SetState(CircuitState.Open);
            return l;
        }
    }

    /// <summary>The probe ended without an outcome (shutdown): the next caller probes instead.</summary>
    public void OnAbandoned()
    {
        lock (_gate)
        {
            if (_state == (int)CircuitState.HalfOpen)
            {
                _openUntilTicks = 0;
                SetState(CircuitState.Open);
            }
        }
    }

    private void SetState(CircuitState state)
    {
        Volatile.Write(ref _state, (int)state);
        var changed = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.TrySetResult();
    }
}
