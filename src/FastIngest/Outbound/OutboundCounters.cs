namespace FastIngest.Outbound;

/// <summary>One tenant's send figures since start (for <c>/metrics</c>), bumped with <see cref="Interlocked"/>.</summary>
public sealed class OutboundCounters
{
    private readonly long[] _outcomes = new long[Enum.GetValues<OutboundOutcome>().Length];
    private long _throttled;
    private long _retried;

    /// <summary>Sends that reached <paramref name="outcome"/>.</summary>
    public long Outcomes(OutboundOutcome outcome) => Interlocked.Read(ref _outcomes[(int)outcome]);

    /// <summary>Throttling answers from Meta (130429, 131056, 80007...).</summary>
    public long Throttled => Interlocked.Read(ref _throttled);

    /// <summary>Attempts that failed transiently and were scheduled again.</summary>
    public long Retried => Interlocked.Read(ref _retried);

    internal void Count(OutboundOutcome outcome) => Interlocked.Increment(ref _outcomes[(int)outcome]);

    internal void CountThrottled() => Interlocked.Increment(ref _throttled);

    internal void CountRetried() => Interlocked.Increment(ref _retried);

    private long _readReceipts;

    /// <summary>Read receipts (mark as read, typing indicator) passed to Meta.</summary>
    public long ReadReceipts => Interlocked.Read(ref _readReceipts);

    internal void CountReadReceipt() => Interlocked.Increment(ref _readReceipts);
}

/// <summary>What reporting tells apart (label <c>outcome</c> of <c>fastingest_outbound_messages_total</c>).</summary>
public enum OutboundOutcome
{
    /// <summary>Queued (answered 202 or waited for).</summary>
    Queued,
    /// <summary>Meta accepted it (200 with a wamid).</summary>
    Accepted,
    /// <summary>Meta's status webhook: sent.</summary>
    Sent,
    /// <summary>Meta's status webhook: delivered.</summary>
    Delivered,
    /// <summary>Meta's status webhook: read.</summary>
    Read,
    /// <summary>Meta's failed status, or retries ran out.</summary>
    Failed,
    /// <summary>Meta refused it with a permanent error.</summary>
    Rejected,
    /// <summary>FastIngest refused it before Meta: a free-form message outside the 24-hour window.</summary>
    RefusedByPolicy,
}
