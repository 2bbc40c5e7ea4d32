namespace FastIngest.Outbound;

/// <summary>What FastIngest does with an answer of Meta's Graph API to a send.</summary>
public enum MetaErrorClass : byte
{
    /// <summary>No error: Meta accepted the message (2xx with <c>messages[0].id</c>).</summary>
    None = 0,

    /// <summary>The business phone number (or the app or WABA) is over its throughput: halve that number's bucket, retry after backoff.</summary>
    Throughput = 1,

    /// <summary>Too many messages to this one customer (pair rate limit): slow that pair down, retry after backoff.</summary>
    PairRate = 2,

    /// <summary>Meta or the network failed (5xx, timeout, refused, 131000): retry with capped exponential backoff and jitter, up to <c>Outbound:MaxAttempts</c>.</summary>
    Transient = 3,

    /// <summary>The access token expired or was revoked (190): pause the tenant's sends and report it; nothing is failed.</summary>
    AuthExpired = 4,

    /// <summary>Meta will never take this send (outside the window, template errors, invalid recipient, bad parameters...): it ends as rejected with Meta's code and message.</summary>
    Permanent = 5,
}

/// <summary>
/// The one table of Meta's Cloud API error codes and what FastIngest does with each (Meta's "Error codes" page of the
/// WhatsApp Cloud API docs). An error answer is <c>{"error":{"message","type","code","error_subcode","error_data":{"details"},"fbtrace_id"}}</c>.
/// <list type="table">
/// <listheader><term>Codes</term><description>Class</description></listheader>
/// <item><term>130429 (throughput), 80007 (WABA rate), 4 (app rate), 613 (rate)</term><description><see cref="MetaErrorClass.Throughput"/></description></item>
/// <item><term>131056 (pair rate limit)</term><description><see cref="MetaErrorClass.PairRate"/></description></item>
/// <item><term>1, 2 (API unknown/service), 131000 (something went wrong), 131016 (service unavailable), 133004 (server temporarily unavailable); HTTP 5xx, timeouts, connection errors</term><description><see cref="MetaErrorClass.Transient"/></description></item>
/// <item><term>190 (access token expired or invalid)</term><description><see cref="MetaErrorClass.AuthExpired"/></description></item>
/// <item><term>131047 (re-engagement: outside the 24-hour window), 132000-132069 (template errors), 131026 (undeliverable), 131021 (recipient is the sender), 131051 (unsupported type), 131052/131053 (media), 100, 131008, 131009 (parameters), 133010 (number not registered), 368 (policy block), 10, 200 (permission), and every other code</term><description><see cref="MetaErrorClass.Permanent"/></description></item>
/// </list>
/// An HTTP 429 without a known code counts as <see cref="MetaErrorClass.Throughput"/>, any other 5xx as transient.
/// </summary>
public static class MetaErrors
{
    /// <summary>Meta's code for a free-form message outside the customer service window; FastIngest refuses with it too.</summary>
    public const int OutsideWindow = 131047;

    /// <summary>Meta's "invalid parameter" code; FastIngest's 400s for malformed sends use it.</summary>
    public const int InvalidParameter = 100;

    /// <summary>The class of an answer with HTTP status <paramref name="httpStatus"/> and <c>error.code</c> <paramref name="code"/> (0 when absent).</summary>
    public static MetaErrorClass Classify(int httpStatus, int code) => code switch
    {
        130429 or 80007 or 4 or 613 => MetaErrorClass.Throughput,
        131056 => MetaErrorClass.PairRate,
        1 or 2 or 131000 or 131016 or 133004 => MetaErrorClass.Transient,
        190 => MetaErrorClass.AuthExpired,
        0 when httpStatus is >= 200 and < 300 => MetaErrorClass.None,
        0 when httpStatus == 429 => MetaErrorClass.Throughput,
        0 when httpStatus >= 500 || httpStatus == 408 => MetaErrorClass.Transient,
        _ => MetaErrorClass.Permanent,
    };
}
