namespace FastIngest.Tenancy;

/// <summary>
/// How long delivery to one tenant's bot has been failing: set by its dispatcher on every failed attempt, cleared by
/// the next delivery that works. The ingest path asks <see cref="HoldingDue"/> (two reads) for each payload with a
/// message, and hands messages to <see cref="Sink"/> only while it is true.
/// </summary>
public sealed class BotOutage
{
    private readonly long _holdingAfterMs;
    private long _failingSinceUnixMs;

    /// <summary>An outage tracker that calls for holding messages after <paramref name="holdingAfter"/>; <paramref name="enabled"/> false never does.</summary>
    public BotOutage(TimeSpan holdingAfter, bool enabled)
    {
        _holdingAfterMs = enabled ? (long)holdingAfter.TotalMilliseconds : long.MaxValue;
    }

    /// <summary>Unix ms of the first failure of the current outage, or 0 while the bot is taking events.</summary>
    public long FailingSinceUnixMs => Volatile.Read(ref _failingSinceUnixMs);

    /// <summary>A delivery attempt failed at <paramref name="nowUnixMs"/> (starts an outage if none is running).</summary>
    public void DeliveryFailed(long nowUnixMs) => Interlocked.CompareExchange(ref _failingSinceUnixMs, nowUnixMs, 0);

    /// <summary>A delivery worked: the outage, if any, is over.</summary>
    public void DeliveryWorked()
    {
        if (Volatile.Read(ref _failingSinceUnixMs) != 0)
            Volatile.Write(ref _failingSinceUnixMs, 0);
    }

    /// <summary>True when customers who write now should get the holding message (the outage has lasted <c>HoldingAfter</c>).</summary>
    public bool HoldingDue(long nowUnixMs)
    {
        var since = Volatile.Read(ref _failingSinceUnixMs);
        return since != 0 && nowUnixMs - since >= _holdingAfterMs;
    }

    /// <summary>
    /// Takes (outage start, phone_number_id, customer wa_id, Meta's timestamp of the message in Unix seconds) for each
    /// inbound message of a payload accepted while <see cref="HoldingDue"/>; set by the send tier.
    /// </summary>
    public Action<long, string, string, long>? Sink { get; set; }
}
