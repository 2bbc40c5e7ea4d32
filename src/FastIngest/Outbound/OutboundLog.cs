using Microsoft.Extensions.Logging;

namespace FastIngest.Outbound;

internal static partial class OutboundLog
{
    [LoggerMessage(6001, LogLevel.Warning, "Tenant {Tenant}: Meta throttled send {Id} (code {Code}) on {Limited}; rate now {Rate:0.##}/s, retry in {DelayMs} ms ({Suppressed} more such answers in the last 10 s not logged)")]
    public static partial void Throttled(ILogger logger, string tenant, string id, int code, string limited, double rate, long delayMs, long suppressed);

    [LoggerMessage(6002, LogLevel.Warning, "Tenant {Tenant}: send {Id} attempt {Attempt} failed ({Detail}); retry in {DelayMs} ms ({Suppressed} more such failures in the last 10 s not logged)")]
    public static partial void Retrying(ILogger logger, string tenant, string id, int attempt, string detail, long delayMs, long suppressed);

    [LoggerMessage(6020, LogLevel.Warning, "Tenant {Tenant}: Meta refused the access token in use (code {Code}: {Detail}); sends use Outbound access token #{Index} (AccessToken, then AccessTokens:{{n}}) from now on")]
    public static partial void NextToken(ILogger logger, string tenant, int code, string detail, int index);

    [LoggerMessage(6003, LogLevel.Error, "Tenant {Tenant}: sends PAUSED, Meta refused the access token (code {Code}: {Detail}); next try in {Seconds} s. Renew Outbound:AccessToken (or the bot's token) and reload (POST /admin/reload) or restart.")]
    public static partial void Paused(ILogger logger, string tenant, int code, string detail, long seconds);

    [LoggerMessage(6004, LogLevel.Information, "Tenant {Tenant}: sends resumed (the access token works again)")]
    public static partial void Resumed(ILogger logger, string tenant);

    [LoggerMessage(6005, LogLevel.Warning, "Tenant {Tenant}: send {Id} ended {Outcome} (code {Code}): {Detail}")]
    public static partial void Ended(ILogger logger, string tenant, string id, string outcome, int code, string detail);

    [LoggerMessage(6006, LogLevel.Error, "Tenant {Tenant}: send {Id} could not be handled")]
    public static partial void SendCrashed(ILogger logger, Exception ex, string tenant, string id);

    [LoggerMessage(6007, LogLevel.Information, "Tenant {Tenant}: the bot is down; holding message {Id} queued for customer {Customer}")]
    public static partial void Holding(ILogger logger, string tenant, string customer, string id);

    [LoggerMessage(6008, LogLevel.Critical, "The send scheduler failed unexpectedly; it is restarted in 1 s and the sends stay queued")]
    public static partial void SchedulerFaulted(ILogger logger, Exception exception);

    [LoggerMessage(6009, LogLevel.Error, "Lifecycle events are held back: {Reason}. The steps are durable in the outbound log; their events are emitted again at the next start")]
    public static partial void LifecycleHeldBack(ILogger logger, string reason);
}
