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

    /// <summary>
    /// One delivery attempt that is one Redis write (<paramref name="write"/> on the database, with
    /// <paramref name="state"/>): delivered when Redis answered it; a failed or timed-out write is retried, and no
    /// answer at all is a connection failure.
    /// </summary>
    public async ValueTask<Dispatch.ForwardResult> WriteAsync<TState>(TState state, Func<IDatabase, TState, Task> write, CancellationToken cancellationToken)
    {
        try
        {
            var db = await DatabaseAsync(cancellationToken).ConfigureAwait(false);
            await write(db, state).WaitAsync(cancellationToken).ConfigureAwait(false);
            return Dispatch.ForwardResult.Ok;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return Failure(ex);
        }
    }

    private static Dispatch.ForwardResult Failure(Exception ex) => ex switch
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
