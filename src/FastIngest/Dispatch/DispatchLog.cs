using Microsoft.Extensions.Logging;

namespace FastIngest.Dispatch;

internal static partial class DispatchLog
{
    [LoggerMessage(3001, LogLevel.Error, "Dispatcher of tenant {Tenant} stopped on an error")]
    public static partial void ReaderFailed(ILogger logger, Exception exception, string tenant);

    [LoggerMessage(3002, LogLevel.Critical, "Batch at {Address} of tenant {Tenant} does not parse again: {Reason}")]
    public static partial void BatchUnreadable(ILogger logger, string tenant, long address, string reason);

    [LoggerMessage(3003, LogLevel.Warning, "Forward of {EventId} for tenant {Tenant} failed (attempt {Attempt}): {Detail}; retrying in {DelayMs} ms")]
    public static partial void DeliveryFailed(ILogger logger, string tenant, string eventId, int attempt, string detail, long delayMs);

    [LoggerMessage(3004, LogLevel.Debug, "Forwarded {EventId} for tenant {Tenant} (attempts: {Attempts})")]
    public static partial void Delivered(ILogger logger, string tenant, string eventId, int attempts);

    [LoggerMessage(3005, LogLevel.Error, "Dead-lettered {EventId} of tenant {Tenant} after {Attempts} attempts: {Reason} (dead letter {DeadLetterId})")]
    public static partial void DeadLettered(ILogger logger, string tenant, string eventId, int attempts, string reason, long deadLetterId);

    [LoggerMessage(3006, LogLevel.Critical, "Could not write {EventId} of tenant {Tenant} to the dead-letter queue; it keeps being retried")]
    public static partial void DeadLetterFailed(ILogger logger, Exception exception, string tenant, string eventId);

    [LoggerMessage(3007, LogLevel.Warning, "Circuit to {Destination} opened by tenant {Tenant}'s delivery for {BreakMs} ms: {Detail} (failed probe: {Probe}); sends wait, events stay on disk")]
    public static partial void CircuitOpened(ILogger logger, string destination, string tenant, long breakMs, string detail, bool probe);

    [LoggerMessage(3008, LogLevel.Information, "Circuit to {Destination} closed: tenant {Tenant}'s delivery got through")]
    public static partial void CircuitClosed(ILogger logger, string destination, string tenant);

    [LoggerMessage(3009, LogLevel.Debug, "Stale status {EventId} of tenant {Tenant} not forwarded (Forward:StaleStatuses=Drop)")]
    public static partial void StaleDropped(ILogger logger, string tenant, string eventId);
}
