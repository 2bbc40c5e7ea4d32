using FastIngest.Storage;

namespace FastIngest.Dispatch;

/// <summary>
/// The events found acked when the log was read at start-up, (destination id, batch address, event index), kept only
/// at or above their destination's delivered watermark (<see cref="DeliveryPositions"/>): below it the destination's
/// reader never looks, so such an ack is counted in <see cref="Skipped"/> and dropped. Memory therefore holds the
/// acks above the watermarks (what is outstanding), not every ack the log retains because some destination is
/// behind. An ack written before destinations existed has destination 0 and counts for the tenant's first
/// destination. Read-only once built; records appended later are not in it and need not be.
/// </summary>
internal sealed class AckSet
{
    private readonly HashSet<(uint Destination, long Batch, int Index)> _acked = [];
    private readonly Dictionary<(uint Tenant, uint Destination), long> _floors = [];
    private readonly Dictionary<uint, long> _floorOfDestination = [];
    private long _lowestFloor = long.MaxValue;
    private long _skipped;

    /// <summary>Acks kept.</summary>
    public int Count => _acked.Count;

    /// <summary>Acks dropped because they were below their destination's watermark.</summary>
    public long Skipped => _skipped;

    /// <summary>
    /// Sets the watermark of destination <paramref name="destination"/> (its id) of the tenant whose ack hash is
    /// <paramref name="tenant"/>: its reader starts there. Call once per configured destination before any
    /// <see cref="Add"/>; a destination without one (0) keeps all its acks. When two tenants' hashes collide, the lower
    /// watermark holds for both.
    /// </summary>
    public void SetWatermark(uint tenant, uint destination, long watermark)
    {
        _floors[(tenant, destination)] = _floors.TryGetValue((tenant, destination), out var other) ? Math.Min(other, watermark) : watermark;
        _floorOfDestination[destination] = _floorOfDestination.TryGetValue(destination, out var lowest) ? Math.Min(lowest, watermark) : watermark;
        _lowestFloor = Math.Min(_lowestFloor, watermark);
    }

    /// <summary>Keeps <paramref name="ack"/> unless it is below the watermark of its destination (the lowest that may be its, for an ack that does not name its tenant or destination).</summary>
    public void Add(in AckRecord ack)
    {
        var floor = ack.Destination == 0 ? _lowestFloor
            : ack.Tenant != 0 ? _floors.GetValueOrDefault((ack.Tenant, ack.Destination), 0)
            : _floorOfDestination.GetValueOrDefault(ack.Destination, 0);
        if (floor != long.MaxValue && ack.BatchAddress < floor)
        {
            _skipped++;
            return;
        }
        _acked.Add((ack.Destination, ack.BatchAddress, ack.EventIndex));
    }

    /// <summary>Whether destination <paramref name="destination"/> acked the event (<paramref name="first"/>: it is the tenant's first, which also owns acks naming none).</summary>
    public bool Contains(uint destination, bool first, long batchAddress, int eventIndex)
        => _acked.Count != 0 && (_acked.Contains((destination, batchAddress, eventIndex)) || (first && _acked.Contains((0, batchAddress, eventIndex))));
}
