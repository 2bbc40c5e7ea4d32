using System.Globalization;
using System.Text;
using FASTER.core;

namespace FastIngest.Storage;

/// <summary>
/// Maps time to a FASTER KV store's log: samples of (Unix ms, safe read-only address), taken after each checkpoint,
/// so that the head of the log holding only records older than the store's TTL can be cut (the dedupe store, the
/// delivery-state store).
/// </summary>
/// <remarks>
/// <para>Why the read-only address: a record below it is never updated in place again (a later upsert of its key
/// appends at the tail), so every record below an address sampled at time T was last written before T. When
/// T is older than the TTL, each of those records is either superseded or a mark that no longer counts, and the
/// log can begin at that address.</para>
/// <para>At most one sample is kept per 1/64 of the TTL (so a 7-day TTL keeps ~64 samples and may hold ~2.6 h of
/// marks beyond it), in <c>age-map</c> next to the store, one <c>unixMs address</c> line each, rewritten atomically,
/// so that the map outlives restarts.</para>
/// </remarks>
internal sealed class LogAgeMap
{
    private readonly string _path;
    private readonly long _ttlMs;
    private readonly long _spacingMs;
    private readonly List<(long UnixMs, long Address)> _samples = [];

    public LogAgeMap(string path, TimeSpan ttl)
    {
        _path = path;
        _ttlMs = (long)ttl.TotalMilliseconds;
        _spacingMs = Math.Max(1, _ttlMs / 64);
        foreach (var line in (AtomicFile.Read(path) ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(' ');
            if (parts.Length == 2
                && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var ms)
                && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var address))
                _samples.Add((ms, address));
        }
    }

    /// <summary>Samples kept now (for tests and monitoring).</summary>
    public int Count => _samples.Count;

    /// <summary>Records that every record below <paramref name="readOnlyAddress"/> was last written before <paramref name="unixMs"/>.</summary>
    public void Record(long unixMs, long readOnlyAddress)
    {
        if (_samples.Count > 0)
        {
            var last = _samples[^1];
            if (readOnlyAddress <= last.Address || unixMs - last.UnixMs < _spacingMs)
                return;
        }
        _samples.Add((unixMs, readOnlyAddress));
        Save();
    }

    /// <summary>
    /// The highest sampled address whose records are all older than the TTL at <paramref name="nowUnixMs"/>, or 0;
    /// samples older than the one returned are dropped (the log will begin past them).
    /// </summary>
    public long ExpiredBelow(long nowUnixMs)
    {
        var found = -1;
        for (var i = 0; i < _samples.Count && nowUnixMs - _samples[i].UnixMs >= _ttlMs; i++)
            found = i;
        if (found < 0)
            return 0;
        var address = _samples[found].Address;
        if (found > 0)
        {
            _samples.RemoveRange(0, found);
            Save();
        }
        return address;
    }

    /// <summary>
    /// Moves <paramref name="log"/>'s begin past records older than the TTL (snapped to a page start, and no further
    /// than what is only on disk); the next checkpoint deletes the segment files below it. A lookup of a cut key
    /// finds nothing, which is what an expired record means anyway. Returns the old begin when it moved, else -1.
    /// </summary>
    public long CutExpired<TKey, TValue>(LogAccessor<TKey, TValue> log, long nowUnixMs)
    {
        ArgumentNullException.ThrowIfNull(log);
        var cut = Math.Min(ExpiredBelow(nowUnixMs), log.HeadAddress);
        var begin = log.BeginAddress;
        if (cut <= begin)
            return -1;
        log.ShiftBeginAddress(cut, snapToPageStart: true, truncateLog: false);
        return begin;
    }

    private void Save()
    {
        var text = new StringBuilder();
        foreach (var (ms, address) in _samples)
            text.Append(CultureInfo.InvariantCulture, $"{ms} {address}\n");
        AtomicFile.Write(_path, text.ToString());
    }
}
