namespace FastIngest.Outbound;

/// <summary>
/// Where a send is in its lifecycle: queued → submitted → accepted (Meta's 200 with a wamid) → sent → delivered →
/// read, or → failed / rejected. The order of the values is the forward order of the first six.
/// </summary>
public enum OutboundStatus : byte
{
    /// <summary>Durably queued, waiting for its tokens.</summary>
    Queued = 1,
    /// <summary>Handed to Meta's Graph API; no answer yet (a send cut by a restart goes out again).</summary>
    Submitted = 2,
    /// <summary>Meta answered 200 with a wamid.</summary>
    Accepted = 3,
    /// <summary>Meta's status webhook: sent.</summary>
    Sent = 4,
    /// <summary>Meta's status webhook: delivered to the customer's phone.</summary>
    Delivered = 5,
    /// <summary>Meta's status webhook: read.</summary>
    Read = 6,
    /// <summary>Meta's status webhook said failed, or retries ran out (<c>Outbound:MaxAttempts</c>, <c>Outbound:MaxAge</c>). Terminal.</summary>
    Failed = 7,
    /// <summary>Meta refused the send with a permanent error code (see <see cref="MetaErrors"/>). Terminal.</summary>
    Rejected = 8,
}

/// <summary>One step of a send's history.</summary>
/// <param name="Status">The status it moved to.</param>
/// <param name="AtUnixMs">When FastIngest recorded it (Unix ms).</param>
/// <param name="MetaUnixSeconds">Meta's timestamp of a status webhook (Unix seconds), else 0.</param>
/// <param name="Code">Meta's error code of a failure or rejection, else 0.</param>
/// <param name="Detail">Meta's error message or FastIngest's reason, else null.</param>
public sealed record OutboundStep(OutboundStatus Status, long AtUnixMs, long MetaUnixSeconds, int Code, string? Detail);

/// <summary>
/// One send, as FastIngest remembers it for <c>Outbound:Retention</c>: identity, request, current status and
/// history. Mutated only under the <see cref="OutboundBook"/>'s lock.
/// </summary>
public sealed class OutboundMessage
{
    internal OutboundMessage(long address, string tenant, string phoneNumberId, string idempotencyKey, string to, string type, string? authorization, string version, byte[] body, long createdUnixMs)
    {
        Version = version;
        Address = address;
        Tenant = tenant;
        PhoneNumberId = phoneNumberId;
        IdempotencyKey = idempotencyKey;
        To = to;
        Type = type;
        Authorization = authorization;
        Body = body;
        CreatedUnixMs = createdUnixMs;
    }

    /// <summary>Address of its send record in the outbound log: unique and increasing for the data directory's life.</summary>
    public long Address { get; }

    /// <summary>FastIngest's id of the send: <c>fo-</c> and <see cref="Address"/> in hex.</summary>
    public string Id => FormatId(Address);

    /// <summary>The tenant that sent it.</summary>
    public string Tenant { get; }

    /// <summary>The business phone number it goes from.</summary>
    public string PhoneNumberId { get; }

    /// <summary>The <c>Idempotency-Key</c> header, or <c>sha256:</c> and the hash of tenant and body.</summary>
    public string IdempotencyKey { get; }

    /// <summary>The recipient's wa_id (the body's <c>to</c>, digits only).</summary>
    public string To { get; }

    /// <summary>The message <c>type</c> (text, template, image...).</summary>
    public string Type { get; }

    /// <summary>The Graph API version of the bot's request path (e.g. <c>v21.0</c>): the send goes to Meta under the same one.</summary>
    public string Version { get; }

    /// <summary>
    /// The bot's <c>Authorization</c> header when the tenant passes it through to Meta, else null. Held in memory only:
    /// after a restart it is null and <see cref="TokenLost"/> is set.
    /// </summary>
    internal string? Authorization { get; }

    /// <summary>True when the send was queued with a passed-through token that a restart has since lost (it is never written to disk).</summary>
    internal bool TokenLost { get; init; }

    /// <summary>
    /// The status its last recorded step moves it to, committed or not (what the next step is checked against);
    /// <see cref="Status"/> follows once the step is committed.
    /// </summary>
    internal OutboundStatus Decided { get; set; } = OutboundStatus.Queued;

    /// <summary>The address of its last step record appended (committed or not), or -1: the next step links back to it.</summary>
    internal long LastStepAddress { get; set; } = -1;

    /// <summary>When its status last changed (Unix ms): an answered send idle for a while leaves memory (the send index keeps it).</summary>
    internal long LastChangeUnixMs { get; set; }

    /// <summary>Attempts that do not count against <c>Outbound:MaxAttempts</c> (those Meta refused for the tenant's expired token).</summary>
    internal int FreeAttempts { get; set; }

    /// <summary>The JSON body exactly as the bot sent it; released (empty) once Meta has answered for good.</summary>
    internal byte[] Body { get; set; }

    /// <summary>When it was queued (Unix ms).</summary>
    public long CreatedUnixMs { get; }

    /// <summary>The current status.</summary>
    public OutboundStatus Status { get; internal set; } = OutboundStatus.Queued;

    /// <summary>Meta's message id once accepted, else null.</summary>
    public string? Wamid { get; internal set; }

    /// <summary>Meta's error code of the failure or rejection, else 0.</summary>
    public int ErrorCode { get; internal set; }

    /// <summary>Meta's error message (or FastIngest's reason) of the failure or rejection, else null.</summary>
    public string? ErrorMessage { get; internal set; }

    /// <summary>Requests made to Meta for it.</summary>
    public int Attempts { get; internal set; }

    /// <summary>Meta's timestamp of the status webhook that set <see cref="Status"/> (Unix seconds), else 0.</summary>
    public long MetaUnixSeconds { get; internal set; }

    /// <summary>Every step so far, oldest first (mutated under the book's lock: read it through <see cref="HistorySnapshot"/>).</summary>
    internal List<OutboundStep> History { get; } = [];

    /// <summary>A copy of the history, oldest first.</summary>
    public OutboundStep[] HistorySnapshot()
    {
        lock (History)
            return [.. History];
    }

    /// <summary>Meta's answer as Meta gave it (HTTP status and body), kept in memory for <c>Prefer: wait</c>; null after a restart.</summary>
    internal (int Status, byte[] Body)? MetaAnswer { get; set; }

    private string? _pairKey;

    /// <summary><c>{phone_number_id}:{to}</c>, the key of its recipient pair's bucket (made once).</summary>
    internal string PairKey => _pairKey ??= PhoneNumberId + ":" + To;

    /// <summary>Earliest time of its next attempt (Unix ms; backoff after a failure).</summary>
    internal long NotBeforeUnixMs { get; set; }

    /// <summary>Transient failures in a row (the exponent of the backoff).</summary>
    internal int TransientFailures { get; set; }

    /// <summary>Completes when the send record is durable in the outbound log (already complete after a restart).</summary>
    internal Task Durable { get; set; } = Task.CompletedTask;

    /// <summary>Completed when Meta has answered for good (accepted, rejected or failed): what <c>Prefer: wait</c> waits for.</summary>
    internal TaskCompletionSource Answered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>True once Meta has answered for good or the send ended.</summary>
    public bool HasAnswer => Status >= OutboundStatus.Accepted;

    /// <summary>True for failed and rejected.</summary>
    public bool IsTerminalFailure => Status is OutboundStatus.Failed or OutboundStatus.Rejected;

    /// <summary>The id format of <see cref="Id"/>.</summary>
    public static string FormatId(long address) => "fo-" + address.ToString("x", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The address behind an id of <see cref="FormatId"/>, or -1.</summary>
    public static long ParseId(string id)
        => id is { Length: > 3 } && id.StartsWith("fo-", StringComparison.Ordinal)
           && long.TryParse(id.AsSpan(3), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var a) && a >= 0 ? a : -1;

    /// <summary>The lowercase name of a status, as the API and lifecycle events show it.</summary>
    public static string Name(OutboundStatus status) => status switch
    {
        OutboundStatus.Queued => "queued",
        OutboundStatus.Submitted => "submitted",
        OutboundStatus.Accepted => "accepted",
        OutboundStatus.Sent => "sent",
        OutboundStatus.Delivered => "delivered",
        OutboundStatus.Read => "read",
        OutboundStatus.Failed => "failed",
        OutboundStatus.Rejected => "rejected",
        _ => "unknown",
    };
}
