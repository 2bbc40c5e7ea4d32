using Microsoft.Extensions.Logging;

namespace FastIngest.Storage;

internal static partial class StorageLog
{
    [LoggerMessage(1001, LogLevel.Critical, "Commit of the {Log} log failed; the log takes no more writes")]
    public static partial void CommitFailed(ILogger logger, Exception exception, string log);

    [LoggerMessage(1002, LogLevel.Error, "Final commit of the {Log} log failed")]
    public static partial void FinalCommitFailed(ILogger logger, Exception exception, string log);

    [LoggerMessage(1003, LogLevel.Information, "Dedupe checkpoint taken; log replay starts at {ReplayFrom} after a restart")]
    public static partial void CheckpointTaken(ILogger logger, long replayFrom);

    [LoggerMessage(1004, LogLevel.Error, "Dedupe checkpoint failed")]
    public static partial void CheckpointFailed(ILogger logger, Exception exception);

    [LoggerMessage(1005, LogLevel.Information, "Dedupe store recovered ({Entries} index entries); replaying the event log from {ReplayFrom}")]
    public static partial void DedupeRecovered(ILogger logger, long entries, long replayFrom);

    [LoggerMessage(1006, LogLevel.Warning, "Could not measure the size of {DataDir}")]
    public static partial void DiskMeasureFailed(ILogger logger, Exception exception, string dataDir);

    [LoggerMessage(1007, LogLevel.Critical, "Disk quota: over = {Over} ({Bytes} bytes used, Storage:MaxDiskBytes {Quota}); while over, webhooks get 503 and /readyz fails")]
    public static partial void DiskQuota(ILogger logger, bool over, long bytes, long quota);

    [LoggerMessage(1008, LogLevel.Information, "{Store} store: records older than its TTL cut, log begins at {Begin} (was {Was}); the checkpoint deletes the segments below")]
    public static partial void StoreCut(ILogger logger, string store, long was, long begin);

    [LoggerMessage(1009, LogLevel.Critical, "The {Log} log is damaged: [{From}, {Until}) ({Bytes} bytes) did not verify ({Error}); that range is cut out and its records are lost. Events in it that Meta sends again are accepted as new. Clear the report with POST /admin/damage/clear once handled")]
    public static partial void LogDamaged(ILogger logger, string log, long from, long until, long bytes, string error);

    [LoggerMessage(1011, LogLevel.Debug, "Checkpoint warm-up failed; the first real checkpoint compiles its code instead")]
    public static partial void WarmupFailed(ILogger logger, Exception exception);
}
