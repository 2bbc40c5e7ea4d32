using Microsoft.Extensions.Logging;

namespace FastIngest.Dispatch;

internal static partial class DispatchLog
{
    [LoggerMessage(3001, LogLevel.Error, "Dispatcher of tenant {Tenant} stopped on an error")]
    public static partial void ReaderFailed(ILogger logger, Exception exception, string tenant);

    [LoggerMessage(3002, LogLevel.Critical, "Batch at {Address} of tenant {Tenant} does not parse again: {Reason}")]
    public static partial void BatchUnreadable(ILogger logger, string tenant, long address, string reason);

    [LoggerMessage(3003, LogLevel.Warning, "Forward of {EventId} for tenant {Tenant} to {Destination} failed (attempt {Attempt}): {Detail}; retrying in {DelayMs} ms")]
    public static partial void DeliveryFailed(ILogger logger, string tenant, string destination, string eventId, int attempt, string detail, long delayMs);

    /// <summary>
    /// The one line per event with its final outcome (<c>delivered</c>, <c>dead_lettered</c>, <c>stale_dropped</c>), on
    /// the <c>FastIngest.Events</c> category so an operator can turn it off on its own
    /// (<c>Logging:LogLevel:FastIngest.Events=None</c>).
    /// </summary>
    [LoggerMessage(3004, LogLevel.Information, "Event {EventId} of tenant {Tenant}: {Outcome} after {Attempts} attempts, {AgeMs} ms after it was received, at {Destination}")]
    public static partial void Outcome(ILogger logger, string eventId, string tenant, string destination, string outcome, int attempts, long ageMs);

    [LoggerMessage(3005, LogLevel.Error, "Dead-lettered {EventId} of tenant {Tenant} for {Destination} after {Attempts} attempts: {Reason} (dead letter {DeadLetterId})")]
    public static partial void DeadLettered(ILogger logger, string tenant, string destination, string eventId, int attempts, string reason, long deadLetterId);

    [LoggerMessage(3006, LogLevel.Critical, "Could not write {EventId} of tenant {Tenant} to the dead-letter queue; it keeps being retried")]
    public static partial void DeadLetterFailed(ILogger logger, Exception exception, string tenant, string eventId);

    [LoggerMessage(3007, LogLevel.Warning, "Circuit to {Destination} opened by tenant {Tenant}'s delivery for {BreakMs} ms: {Detail} (failed probe: {Probe}); sends wait, events stay on disk")]
    public static partial void CircuitOpened(ILogger logger, string destination, string tenant, long breakMs, string detail, bool probe);

    [LoggerMessage(3008, LogLevel.Information, "Circuit to {Destination} closed: tenant {Tenant}'s delivery got through")]
    public static partial void CircuitClosed(ILogger logger, string destination, string tenant);

    [LoggerMessage(3009, LogLevel.Error, "Dispatch {Role} of tenant {Tenant} failed unexpectedly; it is restarted and the event it held is retried")]
    public static partial void WorkerFault(ILogger logger, Exception exception, string tenant, string role);
}
