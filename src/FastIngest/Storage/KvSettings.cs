using FASTER.core;

namespace FastIngest.Storage;

/// <summary>The FASTER KV settings FastIngest's stores share (16-byte <see cref="DedupeKey"/> keys, blittable values).</summary>
internal static class KvSettings
{
    /// <summary>
    /// Settings for a store in <paramref name="directory"/> on <paramref name="device"/>: a hash index of
    /// <paramref name="indexBytes"/> (power of two), <paramref name="memoryBytes"/> of log in memory in 16 pages
    /// (64 KB to 32 MB each, all allocated up front), segments of a quarter of that (at most 64 MB) so that cutting the
    /// head gives disk back in small steps, checkpoints under <c>checkpoints/</c>; the caller recovers with
    /// <see cref="KvCheckpoints.Recover"/>. FASTER removes no checkpoint: the store's <see cref="KvManifest"/> removes
    /// the ones it no longer names, after it recorded the new one (so the checkpoint recovery reads is always one the
    /// manifest verified; a newer one that a crash or a shutdown's cut left half-written is never read).
    /// </summary>
    public static FasterKVSettings<DedupeKey, TValue> Create<TValue>(string directory, IDevice device, long indexBytes, long memoryBytes)
        where TValue : new()
    {
        var pageBytes = Math.Clamp(memoryBytes / 16, 1L << 16, 1L << 25);
        return new FasterKVSettings<DedupeKey, TValue>(directory, deleteDirOnDispose: false)
        {
            LogDevice = device,
            CheckpointManager = new DeviceLogCommitCheckpointManager(new SyncFileDeviceFactory(), new DefaultCheckpointNamingScheme(Path.Combine(directory, "checkpoints")), removeOutdated: false),
            IndexSize = indexBytes,
            MemorySize = Math.Max(memoryBytes, pageBytes * 4),
            PageSize = pageBytes,
            SegmentSize = Math.Clamp(memoryBytes / 4, pageBytes, 1L << 26),
            EqualityComparer = DedupeKeyComparer.Instance,
            // Not FASTER's own try: it swallows a failed recovery and starts empty, silently (KvCheckpoints.Recover).
            TryRecoverLatest = false,
            RemoveOutdatedCheckpoints = false,
            // All in-memory pages up front: memory is flat from the start and inserts never allocate a page.
            PreallocateLog = true,
        };
    }
}

/// <summary>
/// Recovery of FastIngest's FASTER KV stores that never starts empty silently: the file <c>checkpointed</c> in the
/// store's directory says a checkpoint was completed once; from then on the latest checkpoint must recover, and its
/// failure is an exception naming the directory (the caller moves the store aside, see <c>StoreRecovery</c>).
/// </summary>
internal static class KvCheckpoints
{
    /// <summary>
    /// Opens the store in <paramref name="directory"/>: verifies its files against their <see cref="KvManifest"/>,
    /// creates it and recovers its latest checkpoint (<see cref="Recover"/>). On failure the settings and the device
    /// are disposed and the error is thrown (the caller moves the store aside: <c>StoreRecovery</c>).
    /// </summary>
    /// <exception cref="IOException">A file does not verify, or a checkpoint was completed and none recovers.</exception>
    public static FasterKV<DedupeKey, TValue> Open<TValue>(string directory, FasterKVSettings<DedupeKey, TValue> settings, IDevice device, out KvManifest manifest)
        where TValue : new()
    {
        FasterKV<DedupeKey, TValue>? kv = null;
        try
        {
            manifest = new KvManifest(directory, settings.SegmentSize, settings.PageSize);
            manifest.PruneUnrecorded();
            manifest.Verify();
            kv = new FasterKV<DedupeKey, TValue>(settings);
            Recover(kv, directory);
            return kv;
        }
        catch
        {
            kv?.Dispose();
            settings.Dispose();
            device.Dispose();
            throw;
        }
    }

    /// <summary>Recovers <paramref name="kv"/> from its latest checkpoint in <paramref name="directory"/>, if one was ever completed.</summary>
    /// <exception cref="IOException">A checkpoint was completed, and none can be recovered now.</exception>
    public static void Recover<TValue>(FasterKV<DedupeKey, TValue> kv, string directory)
        where TValue : new()
    {
        var required = File.Exists(Path.Combine(directory, "checkpointed"));
        try
        {
            kv.Recover();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            if (required)
                throw new IOException($"{directory}: no checkpoint of the store can be recovered ({ex.Message.Split('\n', 2)[0].Trim()})", ex);
        }
    }

    /// <summary>Notes, once, that <paramref name="directory"/>'s store has completed a checkpoint.</summary>
    public static void MarkTaken(string directory)
    {
        var path = Path.Combine(directory, "checkpointed");
        if (!File.Exists(path))
            AtomicFile.Write(path, "1\n");
    }
}

/// <summary>Synchronous reads and upserts on a pooled FASTER session of FastIngest's stores (16-byte keys, value in = out).</summary>
internal static class KvSession
{
    /// <summary>
    /// Reads <paramref name="key"/>; a record that has left memory is read from disk on this thread. Returns whether
    /// it was found (<paramref name="value"/> is default otherwise).
    /// </summary>
    public static bool Read<TValue>(ClientSession<DedupeKey, TValue, TValue, TValue, Empty, SimpleFunctions<DedupeKey, TValue, Empty>> session, ref DedupeKey key, out TValue value)
    {
        value = default!;
        var status = session.Read(ref key, ref value);
        if (status.IsPending)
        {
            session.CompletePendingWithOutputs(out var outputs, wait: true);
            using (outputs)
            {
                if (outputs.Next())
                {
                    status = outputs.Current.Status;
                    value = outputs.Current.Output;
                }
            }
        }
        if (!status.Found)
            value = default!;
        return status.Found;
    }

    /// <summary>Sets <paramref name="key"/> to <paramref name="value"/>, waiting for the write if FASTER made it pending.</summary>
    public static void Upsert<TValue>(ClientSession<DedupeKey, TValue, TValue, TValue, Empty, SimpleFunctions<DedupeKey, TValue, Empty>> session, ref DedupeKey key, ref TValue value)
    {
        if (session.Upsert(ref key, ref value).IsPending)
            session.CompletePending(wait: true);
    }
}

