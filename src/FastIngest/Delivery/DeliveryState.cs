using System.Buffers.Text;
using System.Runtime.CompilerServices;

namespace FastIngest.Delivery;

/// <summary>
/// An outbound message's delivery status, from the <c>statuses[].status</c> of Meta's webhooks (Meta, "WhatsApp
/// Cloud API, Webhooks, Status messages"). The order is the lifecycle: sent &lt; delivered &lt; read; failed is
/// terminal.
/// </summary>
public enum MessageStatus : byte
{
    /// <summary>Nothing known (or a status FastIngest does not order, e.g. <c>deleted</c>).</summary>
    None = 0,

    /// <summary><c>sent</c>: Meta sent the message.</summary>
    Sent = 1,

    /// <summary><c>delivered</c>: it reached the customer's device.</summary>
    Delivered = 2,

    /// <summary><c>read</c>: the customer opened it.</summary>
    Read = 3,

    /// <summary><c>failed</c>: it could not be delivered; nothing moves it after this.</summary>
    Failed = 4,
}

/// <summary>One status webhook as applied to a message: what it said, Meta's timestamp, and whether it was stale.</summary>
/// <param name="Status">The status it reported.</param>
/// <param name="MetaUnixSeconds">Its <c>timestamp</c> (Unix seconds, Meta's clock); 0 when absent or not a number.</param>
/// <param name="ReceivedUnixMs">When FastIngest received it (Unix ms).</param>
/// <param name="Stale">True when it did not move the state (it was behind it).</param>
public readonly record struct StatusChange(MessageStatus Status, long MetaUnixSeconds, long ReceivedUnixMs, bool Stale);

/// <summary>The last <see cref="DeliveryState.HistoryCapacity"/> status changes of a message, inline (the store's values are fixed-size).</summary>
[InlineArray(DeliveryState.HistoryCapacity)]
internal struct StatusHistory
{
    private PackedChange _element;
}

/// <summary>A <see cref="StatusChange"/> in 16 bytes: status, stale bit and Meta's seconds in one long; received ms in the other.</summary>
internal readonly struct PackedChange
{
    private readonly long _statusAndTime;
    private readonly long _receivedUnixMs;

    internal PackedChange(in StatusChange change)
    {
        _statusAndTime = ((long)change.Status << 56) | (change.Stale ? 1L << 48 : 0) | (change.MetaUnixSeconds & 0xFFFF_FFFF_FFFF);
        _receivedUnixMs = change.ReceivedUnixMs;
    }

    internal StatusChange Unpack() => new((MessageStatus)(_statusAndTime >>> 56), _statusAndTime & 0xFFFF_FFFF_FFFF, _receivedUnixMs, (_statusAndTime & (1L << 48)) != 0);
}

/// <summary>
/// A message's delivery state, the value of <see cref="DeliveryStateStore"/> (blittable, 120 bytes): the current
/// status and Meta's timestamp of it, and the last <see cref="HistoryCapacity"/> status webhooks.
/// </summary>
/// <remarks>
/// Ordering rule (<see cref="Apply"/>): the state only moves forward along sent &lt; delivered &lt; read, and
/// <c>failed</c> is terminal. A status at or behind the current one is stale (a <c>delivered</c> arriving after
/// <c>read</c>); a <c>failed</c> is stale if Meta's timestamp is older than the current status's, since Meta's
/// own clock says it came before. Applying the very same webhook again (same status and timestamp, e.g. read again
/// from the log after a restart) returns its first verdict and changes nothing.
/// </remarks>
internal struct DeliveryState
{
    /// <summary>Status changes kept per message (older ones are dropped first).</summary>
    public const int HistoryCapacity = 6;

    /// <summary>The current status.</summary>
    public MessageStatus Status;

    /// <summary>Status webhooks applied, stale ones included (may exceed the history kept).</summary>
    public int Changes;

    /// <summary>Meta's timestamp of the current status (Unix seconds).</summary>
    public long MetaUnixSeconds;

    /// <summary>The kept changes, oldest first; <see cref="HistoryCount"/> of them are set.</summary>
    public StatusHistory History;

    /// <summary>How many entries of <see cref="History"/> are set.</summary>
    public readonly int HistoryCount => Math.Min(Changes, HistoryCapacity);

    /// <summary>Entry <paramref name="i"/> of the history (0 = oldest kept).</summary>
    public readonly StatusChange HistoryAt(int i) => History[i].Unpack();

    /// <summary>
    /// Applies one status webhook (see the ordering rule above) and returns whether it was stale. Statuses FastIngest
    /// does not order (<see cref="MessageStatus.None"/>) are never stale and change nothing.
    /// </summary>
    public bool Apply(MessageStatus status, long metaUnixSeconds, long receivedUnixMs)
    {
        if (status == MessageStatus.None)
            return false;
        for (var i = 0; i < HistoryCount; i++)
        {
            var seen = HistoryAt(i);
            if (seen.Status == status && seen.MetaUnixSeconds == metaUnixSeconds)
                return seen.Stale;
        }
        var stale = Status == MessageStatus.Failed
            || (status == MessageStatus.Failed ? metaUnixSeconds < MetaUnixSeconds : status <= Status);
        if (!stale)
        {
            Status = status;
            MetaUnixSeconds = metaUnixSeconds;
        }
        if (Changes >= HistoryCapacity)
        {
            for (var i = 1; i < HistoryCapacity; i++)
                History[i - 1] = History[i];
        }
        History[Math.Min(Changes, HistoryCapacity - 1)] = new PackedChange(new StatusChange(status, metaUnixSeconds, receivedUnixMs, stale));
        Changes++;
        return stale;
    }

    /// <summary>The status named by Meta's <c>status</c> string (ASCII, as sent), or <see cref="MessageStatus.None"/>.</summary>
    public static MessageStatus ParseStatus(ReadOnlySpan<byte> value) => value switch
    {
        _ when value.SequenceEqual("sent"u8) => MessageStatus.Sent,
        _ when value.SequenceEqual("delivered"u8) => MessageStatus.Delivered,
        _ when value.SequenceEqual("read"u8) => MessageStatus.Read,
        _ when value.SequenceEqual("failed"u8) => MessageStatus.Failed,
        _ => MessageStatus.None,
    };

    /// <summary>
    /// Reads status event <paramref name="e"/> of <paramref name="body"/>: its status, Meta's <c>timestamp</c> (Unix s)
    /// and its wamid, unescaped UTF-8 into <paramref name="wamid"/> (256 bytes). False when the status is none of
    /// Meta's four, or the id is missing, empty or longer than <paramref name="wamid"/>.
    /// </summary>
    internal static bool TryReadStatus(ReadOnlySpan<byte> body, in Parsing.WebhookEvent e, Span<byte> wamid, out int wamidLength, out MessageStatus status, out long metaUnixSeconds)
    {
        status = ParseStatus(e.Status.RawValue(body));
        metaUnixSeconds = ParseTimestamp(e.Timestamp.RawValue(body));
        wamidLength = 0;
        return status != MessageStatus.None && e.Id.TryGetUtf8(body, wamid, out wamidLength) && wamidLength > 0;
    }

    /// <summary>Meta's <c>timestamp</c> (decimal Unix seconds, in a string or as a number); 0 if it is not one.</summary>
    public static long ParseTimestamp(ReadOnlySpan<byte> digits)
        => digits.Length is > 0 and <= 15 && Utf8Parser.TryParse(digits, out long seconds, out var used) && used == digits.Length && seconds >= 0 ? seconds : 0;

    /// <summary>The lower-case name Meta uses for <paramref name="status"/> (<c>"unknown"</c> for None).</summary>
    public static string Name(MessageStatus status) => status switch
    {
        MessageStatus.Sent => "sent",
        MessageStatus.Delivered => "delivered",
        MessageStatus.Read => "read",
        MessageStatus.Failed => "failed",
        _ => "unknown",
    };
}
