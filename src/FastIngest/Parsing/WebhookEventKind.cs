namespace FastIngest.Parsing;

/// <summary>What one event of a webhook payload is.</summary>
public enum WebhookEventKind : byte
{
    /// <summary>One element of <c>value.messages[]</c>: an inbound message from a customer.</summary>
    Message = 1,

    /// <summary>One element of <c>value.statuses[]</c>: sent, delivered, read, failed (or a call status) for a wamid.</summary>
    Status = 2,

    /// <summary>
    /// A whole change without messages or statuses: template status/quality/category updates, account updates,
    /// user preferences, calls, echoes, errors-only changes, and any <c>field</c> this parser has never seen.
    /// </summary>
    Change = 3,
}
