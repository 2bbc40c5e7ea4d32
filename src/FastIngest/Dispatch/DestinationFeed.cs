namespace FastIngest.Dispatch;

/// <summary>
/// The one read of the event log that feeds every destination that is caught up: the projection follower reads each
/// committed record once, applies it to the views, and hands it here (<see cref="Offer"/>), where each attached
/// <see cref="DestinationDispatcher"/> takes its tenant's events into its queue and steps over the rest. A destination
/// that is behind (after a start below the feed's position, or when its queue was full) reads the log with its own
/// scan and attaches again once it has caught up with the feed, so a slow or dead destination never holds the feed,
/// and the others read nothing twice.
/// </summary>
/// <remarks>
/// The hand-over is exact: <see cref="TryAttach"/> and <see cref="Offer"/> run under one lock, a destination attaches
/// only when its own scan is at or past the feed's position (records the feed offers below its position are ones it
/// has read itself, and it skips them), and a destination the feed cannot serve (its queue is full, an exception) is
/// detached at the record it did not take, where its own scan resumes. So no record is
/// skipped or taken twice across the hand-over.
/// </remarks>
internal sealed class DestinationFeed(long position)
{
    private readonly object _gate = new();
    private readonly List<DestinationDispatcher> _attached = [];
    private long _position = position;
    private long _detaches;

    /// <summary>
    /// Every record below this address has been offered to every attached destination. Read without the lock (it
    /// only grows): a destination's own scan looks at it to know whether <see cref="TryAttach"/> is worth the lock.
    /// </summary>
    public long Position => Volatile.Read(ref _position);

    /// <summary>Destinations fed now.</summary>
    public int Attached
    {
        get
        {
            lock (_gate)
                return _attached.Count;
        }
    }

    /// <summary>Times a destination was let go to its own scan since start (a full queue, mostly).</summary>
    public long Detaches => Interlocked.Read(ref _detaches);

    /// <summary>
    /// Attaches <paramref name="dispatcher"/> if its own scan has reached the feed's position (see
    /// <see cref="DestinationDispatcher.ScannedUntil"/>); after true, its own scan must stop.
    /// </summary>
    public bool TryAttach(DestinationDispatcher dispatcher)
    {
        lock (_gate)
        {
            if (dispatcher.ScannedUntil < _position || _attached.Contains(dispatcher))
                return false;
            dispatcher.MarkAttached();
            _attached.Add(dispatcher);
            return true;
        }
    }

    /// <summary>Detaches <paramref name="dispatcher"/> for good (it is stopping); after this returns, it is offered nothing.</summary>
    public void Remove(DestinationDispatcher dispatcher)
    {
        lock (_gate)
            _attached.Remove(dispatcher);
    }

    /// <summary>
    /// Offers the committed record at <paramref name="address"/> (ending at <paramref name="next"/>) to every attached
    /// destination, in the log's order; a destination that cannot take it is detached (its own scan resumes there).
    /// Called by the projection follower only, once the record is applied to the views.
    /// </summary>
    public void Offer(ReadOnlySpan<byte> record, long address, long next)
    {
        lock (_gate)
        {
            for (var i = _attached.Count - 1; i >= 0; i--)
            {
                var d = _attached[i];
                if (!d.OnFeed(record, address, next))
                {
                    _attached.RemoveAt(i);
                    d.MarkDetached();
                    Interlocked.Increment(ref _detaches);
                }
            }
            Volatile.Write(ref _position, next);
        }
    }
}
