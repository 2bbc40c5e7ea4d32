namespace FastIngest.Dispatch;

/// <summary>
/// The events found acked when the log was read at start-up: (destination id, batch address, event index). An ack
/// written before destinations existed has destination 0 and counts for the tenant's first destination.
/// Read-only once built; records appended later are not in it and need not be.
/// </summary>
internal sealed class AckSet
{
    private readonly HashSet<(uint Destination, long Batch, int Index)> _acked = [];

    public int Count => _acked.Count;

    public void Add(uint destination, long batchAddress, int eventIndex) => _acked.Add((destination, batchAddress, eventIndex));

    /// <summary>Whether destination <paramref name="destination"/> acked the event (<paramref name="first"/>: it is the tenant's first, which also owns acks naming none).</summary>
    public bool Contains(uint destination, bool first, long batchAddress, int eventIndex)
        => _acked.Count != 0 && (_acked.Contains((destination, batchAddress, eventIndex)) || (first && _acked.Contains((0, batchAddress, eventIndex))));
}
