using System.Globalization;
using FastIngest.Configuration;

namespace FastIngest.Tenancy;

/// <summary>
/// The silent-outage check of one tenant: during its active hours (in its time zone), no inbound message for longer
/// than <c>InboundSilence</c> means Meta has stopped sending (a revoked subscription, a broken app, a number moved
/// elsewhere), which no error ever reports. Statuses do not count: a bot still sending gets statuses while its
/// customers' messages no longer arrive.
/// </summary>
public sealed class InboundSilence
{
    private readonly TimeSpan _limit;
    private readonly TimeOnly _from;
    private readonly TimeOnly _to;
    private readonly TimeZoneInfo _zone;
    private readonly long _sinceUnixMs;
    private long _lastMessageUnixMs;

    /// <summary>Builds the check from validated options; silence is measured from <paramref name="startUnixMs"/> until the first message.</summary>
    public InboundSilence(TenantOptions options, long startUnixMs)
    {
        ArgumentNullException.ThrowIfNull(options);
        _limit = options.InboundSilence;
        (_from, _to) = ParseActiveHours(options.ActiveHours) ?? (TimeOnly.MinValue, TimeOnly.MinValue);
        _zone = TimeZoneInfo.FindSystemTimeZoneById(options.TimeZone);
        _sinceUnixMs = startUnixMs;
    }

    /// <summary>False when <c>InboundSilence</c> is 0 (the check is off).</summary>
    public bool Enabled => _limit > TimeSpan.Zero;

    /// <summary>Records an inbound message (called on the ingest path: one volatile write).</summary>
    public void MessageSeen(long unixMs) => Volatile.Write(ref _lastMessageUnixMs, unixMs);

    /// <summary>Unix ms of the last inbound message, or 0 for none since start.</summary>
    public long LastMessageUnixMs => Volatile.Read(ref _lastMessageUnixMs);

    /// <summary>Seconds since the last inbound message (since start if none yet).</summary>
    public double SecondsSinceMessage(long nowUnixMs) => Math.Max(0, nowUnixMs - Math.Max(LastMessageUnixMs, _sinceUnixMs)) / 1000.0;

    /// <summary>True when the check is on, <paramref name="now"/> is inside the active hours and the silence is longer than allowed.</summary>
    public bool IsSilent(DateTimeOffset now)
        => Enabled && InActiveHours(now) && SecondsSinceMessage(now.ToUnixTimeMilliseconds()) > _limit.TotalSeconds;

    /// <summary>True inside the active hours (always, when they are not set). A window may wrap midnight (22:00-06:00).</summary>
    public bool InActiveHours(DateTimeOffset now)
    {
        if (_from == _to)
            return true;
        var local = TimeOnly.FromDateTime(TimeZoneInfo.ConvertTime(now, _zone).DateTime);
        return _from < _to ? local >= _from && local < _to : local >= _from || local < _to;
    }

    /// <summary>Parses <c>HH:mm-HH:mm</c>; null for null or empty (all day).</summary>
    /// <exception cref="FormatException">Not two times of day joined by '-'.</exception>
    public static (TimeOnly From, TimeOnly To)? ParseActiveHours(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
            return null;
        var parts = value.Split('-', 2, StringSplitOptions.TrimEntries);
        if (parts.Length != 2
            || !TimeOnly.TryParseExact(parts[0], "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out var from)
            || !TimeOnly.TryParseExact(parts[1], "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out var to))
            throw new FormatException("must be HH:mm-HH:mm, e.g. 08:00-20:00 (may wrap midnight)");
        return (from, to);
    }
}
