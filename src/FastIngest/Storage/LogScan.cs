using System.Buffers;
using FASTER.core;

namespace FastIngest.Storage;

/// <summary>Whether a scan should copy out <paramref name="record"/> (see <see cref="LogScan.GetNextIf"/>).</summary>
public delegate bool RecordFilter<in TState>(TState state, ReadOnlySpan<byte> record);

/// <summary>
/// A scan of an <see cref="EventLog"/> that steps over the ranges recovery cut out (<see cref="LogDamage"/>): the
/// same calls as FASTER's <see cref="FasterLogScanIterator"/>, which it wraps, restarted past each range it reaches.
/// Single-threaded, like the iterator.
/// </summary>
public sealed class LogScan : IDisposable
{
    private readonly FasterLog _log;
    private readonly IReadOnlyList<LogDamage> _holes;
    private readonly long _until;
    private FasterLogScanIterator _iter;

    internal LogScan(FasterLog log, IReadOnlyList<LogDamage> holes, long from, long until)
    {
        _log = log;
        _holes = holes;
        _until = until;
        _iter = log.Scan(Skip(from), until);
    }

    /// <summary>Where the next record will be read from.</summary>
    public long NextAddress => _iter.NextAddress;

    /// <summary>
    /// The next record, in a buffer from <paramref name="pool"/> that the caller disposes: its length in bytes, its
    /// address and the address after it. False at the end of the scan (or of what is committed so far).
    /// </summary>
    /// <exception cref="FasterException">A record that does not verify (damaged after recovery checked the log).</exception>
    public bool GetNext(MemoryPool<byte> pool, out IMemoryOwner<byte> entry, out int entryLength, out long currentAddress, out long nextAddress)
    {
        if (_holes.Count > 0 && Skip(_iter.NextAddress) is var to && to != _iter.NextAddress)
            Restart(to);
        if (!_iter.GetNext(pool, out entry, out entryLength, out currentAddress, out nextAddress))
            return false;
        if (_holes.Count > 0 && Skip(nextAddress) is var after && after != nextAddress)
        {
            nextAddress = after; // the reader resumes past the cut, not in it
            Restart(after);
        }
        return true;
    }

    /// <summary>
    /// As the pooled <see cref="GetNext(MemoryPool{byte}, out IMemoryOwner{byte}, out int, out long, out long)"/>, but
    /// the record is copied out only when <paramref name="wanted"/> (called with <paramref name="state"/> and the
    /// record in the log's own memory, under FASTER's epoch: it must be quick and must not keep the span) says so;
    /// otherwise <paramref name="entry"/> is null and the record was only looked at, not copied. For readers that take
    /// a few records of a shared log: one tenant's destination skips the other tenants' records this way.
    /// </summary>
    /// <exception cref="FasterException">A record that does not verify.</exception>
    public unsafe bool GetNextIf<TState>(TState state, RecordFilter<TState> wanted, MemoryPool<byte> pool, out IMemoryOwner<byte>? entry, out int entryLength, out long currentAddress, out long nextAddress)
    {
        ArgumentNullException.ThrowIfNull(wanted);
        ArgumentNullException.ThrowIfNull(pool);
        if (_holes.Count > 0 && Skip(_iter.NextAddress) is var to && to != _iter.NextAddress)
            Restart(to);
        if (!_iter.UnsafeGetNext(out byte* raw, out entryLength, out currentAddress, out nextAddress))
        {
            entry = null;
            return false;
        }
        try
        {
            var record = new ReadOnlySpan<byte>(raw, entryLength);
            if (wanted(state, record))
            {
                entry = pool.Rent(entryLength);
                record.CopyTo(entry.Memory.Span);
            }
            else
            {
                entry = null;
            }
        }
        finally
        {
            _iter.UnsafeRelease();
        }
        if (_holes.Count > 0 && Skip(nextAddress) is var after && after != nextAddress)
        {
            nextAddress = after;
            Restart(after);
        }
        return true;
    }

    /// <summary>As the pooled overload, into a new array (cold paths and tools: it allocates per record).</summary>
    public bool GetNext(out byte[] entry, out int entryLength, out long currentAddress)
    {
        if (!GetNext(MemoryPool<byte>.Shared, out var owner, out entryLength, out currentAddress, out _))
        {
            entry = [];
            return false;
        }
        using (owner)
            entry = owner.Memory.Span[..entryLength].ToArray();
        return true;
    }

    /// <summary>Waits until more is committed (or the scan's end is reached); false when the scan has ended.</summary>
    public ValueTask<bool> WaitAsync(CancellationToken cancellationToken = default) => _iter.WaitAsync(cancellationToken);

    private void Restart(long from)
    {
        _iter.Dispose();
        _iter = _log.Scan(from, _until);
    }

    private long Skip(long address) => LogHoles.Skip(_holes, address);

    /// <inheritdoc/>
    public void Dispose() => _iter.Dispose();
}
