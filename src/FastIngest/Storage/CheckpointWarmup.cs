using FastIngest.Delivery;
using FastIngest.Outbound;
using Microsoft.Extensions.Logging;

namespace FastIngest.Storage;

/// <summary>
/// Compiles the checkpoint path once per process before traffic: a FASTER KV of each key and value type FastIngest
/// checkpoints (the dedupe store, the delivery-state, customer-window and send-index stores), 64 KB of index and a
/// few hundred KB of log each, in a scratch directory under <c>DataDir</c>, takes one record and one checkpoint
/// through the same code as the real stores, and is deleted. With tiered compilation off (the server's setting), the
/// first real checkpoint otherwise compiled FASTER's checkpoint state machine for these types on the request path:
/// ~50 ms of JIT on a one-core server, during which every request waited (perf, <c>bench/RESULTS.md</c> session 10).
/// </summary>
internal static class CheckpointWarmup
{
    private const long IndexBytes = 1 << 16;
    private const long MemoryBytes = 1 << 18;
    private static int s_done;

    /// <summary>The scratch stores' own lines (recovered, checkpoint taken) are not the operator's business.</summary>
    private static ILogger Quiet => Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    /// <summary>Runs <see cref="RunAsync"/> unless this process already did (the JIT's work is per process).</summary>
    public static Task RunOnceAsync(string dataDir, TimeProvider time, ILogger logger)
        => Interlocked.Exchange(ref s_done, 1) != 0 ? Task.CompletedTask : RunAsync(dataDir, time, logger);

    /// <summary>
    /// Runs the warm-up in <paramref name="dataDir"/><c>/.warmup</c>, removed after (and before, if a crash left it).
    /// Never throws: a failure (a full disk, say) is logged at debug level, and the real checkpoints then pay the JIT.
    /// Returns whether every scratch store was checkpointed.
    /// </summary>
    public static async Task<bool> RunAsync(string dataDir, TimeProvider time, ILogger logger)
    {
        var scratch = Path.Combine(dataDir, ".warmup");
        try
        {
            DeleteScratch(scratch);
            using (var dedupe = new DedupeStore(Path.Combine(scratch, "dedupe"), IndexBytes, MemoryBytes, Quiet, TimeSpan.FromDays(1), time))
            {
                var session = dedupe.Rent();
                DedupeStore.Put(session, new DedupeKey(1, 1), new DedupeEntry { SeenUnixMs = 1, LogAddress = 64 });
                dedupe.Return(session);
                await dedupe.CheckpointAsync(() => 0).ConfigureAwait(false);
            }
            await StoreAsync<DeliveryState>(Path.Combine(scratch, "delivery-state"), time).ConfigureAwait(false);
            await StoreAsync<long>(Path.Combine(scratch, "customer-window"), time).ConfigureAwait(false);
            await StoreAsync<SendIndexEntry>(Path.Combine(scratch, "send-index"), time).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            StorageLog.WarmupFailed(logger, ex);
            return false;
        }
        finally
        {
            DeleteScratch(scratch);
        }
    }

    private static async Task StoreAsync<TValue>(string directory, TimeProvider time)
        where TValue : new()
    {
        using var store = new TtlKvStore<TValue>(directory, "warmup", IndexBytes, MemoryBytes, TimeSpan.FromDays(1), time, Quiet);
        var session = store.Sessions.Rent();
        var key = new DedupeKey(1, 1);
        var value = new TValue();
        KvSession.Upsert(session, ref key, ref value);
        store.Sessions.Return(session);
        await store.CheckpointAsync().ConfigureAwait(false);
    }

    private static void DeleteScratch(string scratch)
    {
        try
        {
            if (Directory.Exists(scratch))
                Directory.Delete(scratch, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Left for the next start to remove; nothing reads it.
        }
    }
}
