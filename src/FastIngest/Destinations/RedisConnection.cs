using StackExchange.Redis;

namespace FastIngest.Destinations;

/// <summary>
/// One destination's connection to Redis (StackExchange.Redis), opened at the first delivery attempt and kept: the
/// multiplexer reconnects by itself, so a Redis that is down at start or restarts later costs retries, never a
/// restart of FastIngest. <c>AbortOnConnectFail</c> is off for that reason.
/// </summary>
internal sealed class RedisConnection(string configuration, TimeSpan timeout) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private ConnectionMultiplexer? _multiplexer;

    /// <summary>The configuration string without its password (for logs and the breaker's name).</summary>
    public string Describe { get; } = ConfigurationOptions.Parse(configuration).ToString(includePassword: false);

    /// <summary>The database to write to (from the configuration string's <c>defaultDatabase</c>, else 0).</summary>
    public async ValueTask<IDatabase> DatabaseAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _multiplexer) is { } ready)
            return ready.GetDatabase();
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_multiplexer is null)
            {
                var options = ConfigurationOptions.Parse(configuration);
                options.AbortOnConnectFail = false;
                var ms = (int)Math.Clamp(timeout.TotalMilliseconds, 100, int.MaxValue);
                options.ConnectTimeout = ms;
                options.SyncTimeout = ms;
                options.AsyncTimeout = ms;
                Volatile.Write(ref _multiplexer, await ConnectionMultiplexer.ConnectAsync(options).ConfigureAwait(false));
            }
            return _multiplexer!.GetDatabase();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>How a failed Redis call ends the attempt: every failure is retried; no answer at all is a connection failure.</summary>
    public static Dispatch.ForwardResult Failure(Exception ex) => ex switch
    {
        RedisConnectionException => new(false, $"redis: {ex.Message}", ConnectionFailed: true),
        RedisTimeoutException => new(false, "redis: timed out"),
        _ => new(false, $"redis: {ex.GetType().Name}: {ex.Message}"),
    };

    public void Dispose()
    {
        _multiplexer?.Dispose();
        _gate.Dispose();
    }
}
