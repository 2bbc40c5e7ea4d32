using System.Buffers;

namespace FastIngest.Dispatch;

/// <summary>
/// One batch record in flight to a bot: completes when all its events have been delivered (acked), which lets the
/// log's low-water mark pass it.
/// </summary>
internal sealed class BatchTracker(long address, int events, long receivedUnixMs)
{
    private int _remaining = events;

    public long Address { get; } = address;

    /// <summary>When FastIngest received the batch (Unix ms).</summary>
    public long ReceivedUnixMs { get; } = receivedUnixMs;

    public bool IsComplete => Volatile.Read(ref _remaining) == 0;

    public void CompleteOne() => Interlocked.Decrement(ref _remaining);
}

/// <summary>One event ready to forward: the Meta-shaped payload (a rented buffer), its id and signature.</summary>
internal sealed class ForwardItem(int eventIndex, string eventId, byte[] payload, int length, string? signature, ulong orderKey, long receivedUnixMs)
{
    /// <summary>When FastIngest received the event (Unix ms): <c>Forward:MaxAge</c> counts from here.</summary>
    public long ReceivedUnixMs { get; } = receivedUnixMs;

    /// <summary>The batch this event belongs to; set once the whole record has been read.</summary>
    public BatchTracker Batch { get; set; } = null!;

    /// <summary>
    /// The ordering key (see <see cref="OrderKeys"/>): events with the same key reach the bot in log order, one at a
    /// time; 0 for an event ordered behind nothing (a change without a customer).
    /// </summary>
    public ulong OrderKey { get; } = orderKey;

    /// <summary>The key the circuit breaker counts this event's failures under: its order key, or a hash of its id when it has none.</summary>
    public ulong FailureKey => OrderKey != 0 ? OrderKey : OrderKeys.Hash(EventId);

    /// <summary>Position of the event in its payload (the ack names it with the batch address).</summary>
    public int EventIndex { get; } = eventIndex;

    /// <summary>The <c>X-FastIngest-Event-Id</c>.</summary>
    public string EventId { get; } = eventId;

    public ReadOnlyMemory<byte> Payload => _payload.AsMemory(0, length);

    /// <summary>
    /// The <c>X-Hub-Signature-256</c> value under <see cref="Signing"/>, or null for a destination that does not sign;
    /// signed again before an attempt when the destination's key was rotated since.
    /// </summary>
    public string? Signature { get; set; } = signature;

    /// <summary>The key <see cref="Signature"/> is under (its id goes out as <c>X-FastIngest-Signature-Key</c>).</summary>
    public ForwardSigning? Signing { get; set; }

    private byte[] _payload = payload;

    /// <summary>Attempts so far.</summary>
    public int Attempts { get; set; }

    /// <summary>
    /// A status behind the message's delivery state (see <see cref="Delivery.DeliveryState"/>): forwarded with
    /// <c>X-FastIngest-Stale: true</c>, or, with <c>Forward:StaleStatuses=Drop</c>, acked without being sent.
    /// </summary>
    public bool Stale { get; set; }

    /// <summary>What the event is (the <c>{kind}</c> of BullMQ job names and RabbitMQ routing keys).</summary>
    public Destinations.EventClass Class { get; init; } = Destinations.EventClass.Change;

    /// <summary>
    /// The change's <c>field</c> (<c>messages</c> for messages and statuses; the <c>{field}</c> of RabbitMQ routing
    /// keys), set only for a destination that uses it (<see cref="Destinations.DestinationSpec.NeedsField"/>); "" otherwise.
    /// </summary>
    public string Field { get; init; } = "";

    public void ReleasePayload()
    {
        var p = Interlocked.Exchange(ref _payload, []);
        if (p.Length > 0)
            ArrayPool<byte>.Shared.Return(p);
    }
}

/// <summary>
/// How a delivery attempt ended. <see cref="Permanent"/>: the bot refused the event itself (a 4xx other than 408, 425
/// and 429), so retrying cannot help and it goes to the dead-letter queue. <see cref="RetryAfter"/>: the bot's
/// <c>Retry-After</c> (429, 503), used instead of the backoff.
/// <see cref="ConnectionFailed"/>: no answer at all (refused or broken connection), which says nothing about the event.
/// <see cref="Throttled"/>: a 429, the bot's statement about its rate, not about the event.
/// </summary>
internal readonly record struct ForwardResult(bool Delivered, string Detail, TimeSpan? RetryAfter = null, bool Permanent = false, bool ConnectionFailed = false, bool Throttled = false)
{
    public static ForwardResult Ok { get; } = new(true, "delivered");
}

/// <summary>Where a tenant's events go: its bot over HTTP, or a JSON Lines file.</summary>
internal interface IForwardTarget : IDisposable
{
    /// <summary>A short description for logs.</summary>
    string Describe { get; }

    /// <summary>One delivery attempt. Never throws for delivery failures; returns them.</summary>
    ValueTask<ForwardResult> SendAsync(ForwardItem item, CancellationToken cancellationToken);
}

/// <summary>Wraps each tenant's destination (registered in the service container by tests that inject faults).</summary>
internal sealed class ForwardTargetWrapper(Func<string, IForwardTarget, IForwardTarget> wrap)
{
    /// <summary>The destination to use for tenant <paramref name="tenant"/> instead of <paramref name="target"/>.</summary>
    public IForwardTarget Wrap(string tenant, IForwardTarget target) => wrap(tenant, target);
}
