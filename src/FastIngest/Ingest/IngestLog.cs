using Microsoft.Extensions.Logging;

namespace FastIngest.Ingest;

internal static partial class IngestLog
{
    [LoggerMessage(2001, LogLevel.Warning, "Quarantined an authentic but unparseable payload of tenant {Tenant} ({Bytes} bytes): {Reason}; quarantine log address {Address}")]
    public static partial void Quarantined(ILogger logger, string tenant, int bytes, string reason, long address);

    [LoggerMessage(2002, LogLevel.Warning, "Rejected a webhook for tenant {Tenant}: {Status} {Reason} ({Suppressed} more like it not logged since the last line)")]
    public static partial void Rejected(ILogger logger, string tenant, int status, string reason, long suppressed);

    [LoggerMessage(2003, LogLevel.Error, "Ingest failed for tenant {Tenant}; answered 503 so that Meta retries")]
    public static partial void Failed(ILogger logger, Exception exception, string tenant);
}
