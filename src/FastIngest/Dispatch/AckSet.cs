namespace FastIngest.Dispatch;

/// <summary>
/// The events found acked (delivered) when the log was read at start-up: (batch address, event index) pairs.
/// Read-only once built; records appended later are not in it and need not be.
/// </summary>
internal sealed class AckSet
{
    private readonly HashSet<(long Batch, int Index)> _acked = [];

    public int Count => _acked.Count;

    public void Add(long batchAddress, int eventIndex) => _acked.Add((batchAddress, eventIndex));

    public bool Contains(long batchAddress, int eventIndex) => _acked.Count != 0 && _acked.Contains((batchAddress, eventIndex));
}
