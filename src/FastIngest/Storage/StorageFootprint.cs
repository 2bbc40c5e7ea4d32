using FastIngest.Configuration;

namespace FastIngest.Storage;

/// <summary>
/// What the storage settings cost, in bytes, as the README's sizing section gives it: the disk a checkpoint writes
/// (every store's hash index), the disk the server needs before any event is kept (two checkpoints' index files, the
/// new one written before the old is deleted, plus room for the event log to hold twice its memory between
/// truncations), and the memory allocated at start.
/// </summary>
public static class StorageFootprint
{
    /// <summary>Bytes of index files one checkpoint writes: <c>DedupeIndexBytes + StateIndexBytes + WindowIndexBytes + SendIndexBytes</c> (plus 1 MiB of metadata and FASTER's overflow buckets).</summary>
    public static long CheckpointBytes(StorageOptions storage)
    {
        ArgumentNullException.ThrowIfNull(storage);
        return storage.DedupeIndexBytes + storage.StateIndexBytes + storage.WindowIndexBytes + storage.SendIndexBytes + (1L << 20);
    }

    /// <summary>
    /// Growth the event log is allowed between two checkpoints before the next one must fit beside it:
    /// <c>2 × LogMemoryBytes</c>.
    /// </summary>
    public static long LogReserveBytes(StorageOptions storage)
    {
        ArgumentNullException.ThrowIfNull(storage);
        return 2 * storage.LogMemoryBytes;
    }

    /// <summary>
    /// The disk the server needs whatever the traffic: <c>2 × CheckpointBytes + LogReserveBytes</c>. A
    /// <c>MaxDiskBytes</c> below it is refused at start (it could never be met after the first checkpoints).
    /// </summary>
    public static long FixedDiskBytes(StorageOptions storage) => 2 * CheckpointBytes(storage) + LogReserveBytes(storage);

    /// <summary>
    /// Memory allocated at start, in bytes: the four hash indexes, the four stores' in-memory logs (preallocated), and
    /// the logs' in-memory tails (events <c>LogMemoryBytes</c>; quarantine, dead letters and sends a quarter each).
    /// </summary>
    public static long MemoryBytes(StorageOptions storage)
    {
        ArgumentNullException.ThrowIfNull(storage);
        return storage.DedupeIndexBytes + storage.StateIndexBytes + storage.WindowIndexBytes + storage.SendIndexBytes
            + storage.DedupeMemoryBytes + storage.StateMemoryBytes + storage.WindowMemoryBytes + storage.SendMemoryBytes
            + storage.LogMemoryBytes + 3 * Math.Max(storage.LogMemoryBytes / 4, 1L << 20);
    }
}
