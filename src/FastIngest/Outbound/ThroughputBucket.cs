using System.Threading.RateLimiting;

namespace FastIngest.Outbound;

/// <summary>
/// A token bucket (<see cref="TokenBucketRateLimiter"/>) whose rate Meta can push down: <see cref="Cut"/> halves it
/// after a throttling answer (130429, 80007), and each <c>Outbound:RateRecoveryInterval</c> without another one gives
/// back a tenth of the configured rate. The bucket holds at most one replenishment's worth of tokens (a tenth of a
/// second at 10 messages/s or more), so no window of T seconds sees more than rate × T plus that burst.
/// </summary>
/// <remarks>
/// Thread-safe: the scheduler takes tokens while send tasks cut the rate on Meta's throttling answers. Every read
/// or replacement of the limiter is under one lock, so a take never meets a limiter a cut has just disposed, and
/// concurrent cuts are each a halving (none is lost). The lock is held for a non-blocking acquire at most.
/// </remarks>
public sealed class ThroughputBucket : IDisposable
{
    private readonly object _gate = new();
    private readonly TimeProvider _time;
    private readonly TimeSpan _recovery;
    private TokenBucketRateLimiter _limiter;
    private double _rate;
    private DateTimeOffset _lastChange;

    /// <summary>A full bucket of <paramref name="ratePerSecond"/> (messages/s).</summary>
    public ThroughputBucket(string name, double ratePerSecond, TimeSpan recoveryInterval, TimeProvider time)
    {
        Name = name;
        ConfiguredRate = ratePerSecond;
        _rate = ratePerSecond;
        _recovery = recoveryInterval;
        _time = time;
        _limiter = Build(ratePerSecond, drained: false);
        _lastChange = time.GetUtcNow();
    }

    /// <summary>What it limits (a phone_number_id, or a tenant id).</summary>
    public string Name { get; }

    /// <summary>The configured rate, messages/s.</summary>
    public double ConfiguredRate { get; }

    /// <summary>The rate now, messages/s (lower than configured after throttling answers).</summary>
    public double Rate => Volatile.Read(ref _rate);

    private static TokenBucketRateLimiter Build(double rate, bool drained)
    {
        // Whole tokens per period; the period carries the fraction, so the rate is exact (1.5/s: a token each 667 ms).
        var tokens = Math.Max(1, (int)Math.Floor(rate / 10));
        var limiter = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = tokens,
            TokensPerPeriod = tokens,
            ReplenishmentPeriod = TimeSpan.FromSeconds(tokens / rate),
            QueueLimit = 0,
            AutoReplenishment = true,
        });
        if (drained)
            limiter.AttemptAcquire(tokens).Dispose();
        return limiter;
    }

    /// <summary>How long until the bucket is refilled at the rate now, at most (a scheduler waiting for a token looks again after this).</summary>
    public TimeSpan RefillInterval
    {
        get
        {
            var rate = Rate;
            return TimeSpan.FromSeconds(Math.Max(1, Math.Floor(rate / 10)) / rate);
        }
    }

    /// <summary>True when a token is there now.</summary>
    public bool Available
    {
        get
        {
            lock (_gate)
            {
                RecoverLocked();
                return _limiter.GetStatistics()?.CurrentAvailablePermits >= 1;
            }
        }
    }

    /// <summary>Takes a token if there is one.</summary>
    public bool TryTake()
    {
        lock (_gate)
        {
            RecoverLocked();
            using var lease = _limiter.AttemptAcquire(1);
            return lease.IsAcquired;
        }
    }

    /// <summary>Halves the rate (down to a hundredth of the configured one, at least 0.1/s) and empties the bucket.</summary>
    public void Cut()
    {
        lock (_gate)
            Replace(Math.Max(Math.Max(ConfiguredRate / 100, 0.1), _rate / 2));
    }

    /// <summary>Gives back a tenth of the configured rate if <c>RateRecoveryInterval</c> has passed since the last change; true while still below it.</summary>
    public bool Recover()
    {
        lock (_gate)
            return RecoverLocked();
    }

    private bool RecoverLocked()
    {
        if (_rate >= ConfiguredRate)
            return false;
        if (_time.GetUtcNow() - _lastChange >= _recovery)
            Replace(Math.Min(ConfiguredRate, _rate + ConfiguredRate / 10));
        return _rate < ConfiguredRate;
    }

    /// <summary>Under the lock.</summary>
    private void Replace(double rate)
    {
        var old = _limiter;
        _limiter = Build(rate, drained: true);
        Volatile.Write(ref _rate, rate);
        _lastChange = _time.GetUtcNow();
        old.Dispose();
    }

    /// <summary>Stops the replenishment timer.</summary>
    public void Dispose()
    {
        lock (_gate)
            _limiter.Dispose();
    }
}
