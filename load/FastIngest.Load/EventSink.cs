using System.Collections.Concurrent;
using System.Diagnostics;

namespace FastIngest.Load;

/// <summary>One event's arrivals at a destination: how many times it came and when it first came (Stopwatch ticks).</summary>
internal sealed class Arrival
{
    public int Count;
    public long FirstTimestamp;
}

/// <summary>
/// Where the started server delivers (<c>--destination</c>): the embedded bot (a webhook) or a real broker with a
/// consumer of the tool's own. Each records every event it got, by event id, so that the report can count lost and
/// doubled events and the lag from the 200 to the delivery.
/// </summary>
internal abstract class EventSink : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Arrival> _arrivals = new(StringComparer.Ordinal);
    private long _received;

    /// <summary>The <c>--destination</c> value: webhook, bullmq, celery, rabbitmq.</summary>
    public abstract string Kind { get; }

    /// <summary>Deliveries received (a doubled event counts twice).</summary>
    public long Received => Interlocked.Read(ref _received);

    public IReadOnlyDictionary<string, Arrival> Arrivals => _arrivals;

    /// <summary>The server settings (<c>--FastIngest:...=...</c>) that make tenant <paramref name="tenant"/> deliver here.</summary>
    public abstract IEnumerable<string> TenantSettings(int tenant, int concurrency);

    /// <summary>Records one delivery of event <paramref name="eventId"/>, now.</summary>
    protected void Record(string eventId)
    {
        var arrival = _arrivals.GetOrAdd(eventId, static (_, t) => new Arrival { FirstTimestamp = t }, Stopwatch.GetTimestamp());
        Interlocked.Increment(ref arrival.Count);
        Interlocked.Increment(ref _received);
    }

    public abstract ValueTask DisposeAsync();

    /// <summary>Starts the sink for <paramref name="kind"/> (<c>webhook</c>: the embedded bot on <paramref name="botPort"/>).</summary>
    public static async Task<EventSink> StartAsync(string kind, int botPort) => kind switch
    {
        "webhook" => await EmbeddedBot.StartAsync(botPort).ConfigureAwait(false),
        "bullmq" or "celery" => await RedisSink.StartAsync(kind).ConfigureAwait(false),
        "rabbitmq" => await RabbitMqSink.StartAsync().ConfigureAwait(false),
        _ => throw new ArgumentException($"--destination {kind}: one of webhook, bullmq, celery, rabbitmq"),
    };
}
