using FastIngest.Configuration;
using FastIngest.Delivery;
using FastIngest.Dispatch;
using FastIngest.Storage;
using Microsoft.Extensions.Logging;

namespace FastIngest.Hosting;

/// <summary>
/// What the event log keeps: every <c>CheckpointInterval</c> the stores built from it are checkpointed, the stages'
/// positions recorded, and the log cut below what any of them still needs.
/// </summary>
internal sealed class Retention(FastIngestOptions options, string dataDir, EventLog log, DedupeStore dedupe, DeliveryStateStore states, Outbound.OutboundService outbound,
    Projections.ProjectionFollower projections, Func<IReadOnlyList<DestinationDispatcher>> dispatchers, long orphanCap, Func<long> dataDirBytesNow, TimeProvider time, ILogger logger)
{
    /// <summary>Checkpoints and truncates every <c>CheckpointInterval</c> until <paramref name="ct"/> stops it.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(options.CheckpointInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
                await CheckpointAndTruncateAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Checkpoints the dedupe, delivery-state, window and send stores, records each destination's delivered watermark
    /// and the projections' applied address (<see cref="DeliveryPositions"/>), then truncates the event log below the
    /// lowest address still needed: by dedupe replay, by the projections, by any destination's undelivered events, or
    /// by records of unconfigured tenants. Skipped (counted, logged once, on <c>/readyz</c>) while the checkpoint's
    /// files would not fit the disk. A failure is logged; the next interval tries again.
    /// </summary>
    public async Task CheckpointAndTruncateAsync(CancellationToken cancellationToken = default)
    {
        if (CheckpointWouldNotFit() is { } reason)
        {
            Interlocked.Increment(ref _checkpointsSkipped);
            if (Interlocked.Exchange(ref _checkpointSkipReason, reason) is null)
                EngineLog.CheckpointSkipped(logger, reason);
            return;
        }
        if (Interlocked.Exchange(ref _checkpointSkipReason, null) is not null)
            EngineLog.CheckpointFitsAgain(logger, Interlocked.Read(ref _checkpointsSkipped));
        try
        {
            // Under every stripe lock no append is between its record and its marks: every record below the committed
            // address has its marks in this checkpoint, and is on disk, whatever happens to the process next.
            var replayFrom = await dedupe.CheckpointAsync(() => log.CommittedUntilAddress, cancellationToken).ConfigureAwait(false);
            // Every status below this was applied to the delivery-state store before its checkpoint.
            var applied = projections.AppliedUntil;
            await states.CheckpointAsync(cancellationToken).ConfigureAwait(false);
            // After the projections' AppliedUntil was read: the steps those statuses made are committed before the log is cut.
            await outbound.CheckpointAsync(cancellationToken).ConfigureAwait(false);
            var until = Math.Min(Math.Min(replayFrom, applied), orphanCap);
            var watermarks = new List<(string, string, long)>();
            foreach (var d in dispatchers())
            {
                var lowWater = d.LowWater;
                watermarks.Add((d.Tenant.Id, d.Destination.Name, lowWater));
                until = Math.Min(until, lowWater);
            }
            // Before the cut: a start after it finds every watermark at or above the log's new begin.
            try
            {
                DeliveryPositions.Save(dataDir, applied, watermarks);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                PositionsLog.SaveFailed(logger, ex);
            }
            log.TruncateUntil(until);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException and not OperationCanceledException)
        {
            StorageLog.CheckpointFailed(logger, ex);
        }
    }

    private long _checkpointsSkipped;
    private string? _checkpointSkipReason;

    /// <summary>Checkpoints skipped since start because their files would not have fit (<c>fastingest_checkpoints_skipped_total</c>).</summary>
    public long CheckpointsSkipped => Interlocked.Read(ref _checkpointsSkipped);

    /// <summary>Why the last checkpoint was skipped, while checkpoints do not fit; null once one fits.</summary>
    public string? SkipReason => Volatile.Read(ref _checkpointSkipReason);

    /// <summary>
    /// Why a checkpoint would not fit now, or null: it writes <see cref="StorageFootprint.CheckpointBytes"/> of index
    /// files, which must fit the file system's free space with <see cref="StorageFootprint.LogReserveBytes"/> left for
    /// the event log's own growth, and fit beside what <c>DataDir</c> holds under <c>Storage:MaxDiskBytes</c> (whose
    /// least value already includes that reserve). A checkpoint that does not fit
    /// is skipped (the log is then not truncated either) instead of filling the disk under the event log.
    /// </summary>
    private string? CheckpointWouldNotFit()
    {
        var storage = options.Storage;
        var need = StorageFootprint.CheckpointBytes(storage) + StorageFootprint.LogReserveBytes(storage);
        long free;
        try
        {
            free = new DriveInfo(dataDir).AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            free = long.MaxValue; // cannot tell: try, a failing write is retried anyway
        }
        if (free < need)
            return $"checkpoint skipped: it needs {need} bytes free (index files {StorageFootprint.CheckpointBytes(storage)} + event log reserve {StorageFootprint.LogReserveBytes(storage)}), the disk of DataDir has {free}; the log is not truncated until one fits (free space, or lower Storage:*IndexBytes)";
        // Under a quota the log's reserve is already part of the fixed footprint the quota was checked against at
        // start: the new index files must fit beside what DataDir holds now.
        if (storage.MaxDiskBytes > 0 && dataDirBytesNow() + StorageFootprint.CheckpointBytes(storage) > storage.MaxDiskBytes)
            return $"checkpoint skipped: its index files need {StorageFootprint.CheckpointBytes(storage)} bytes and DataDir holds {dataDirBytesNow()} of Storage:MaxDiskBytes {storage.MaxDiskBytes}; the log is not truncated until one fits";
        return null;
    }
}
