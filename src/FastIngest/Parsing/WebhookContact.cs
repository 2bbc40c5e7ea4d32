namespace FastIngest.Parsing;

/// <summary>One element of <c>value.contacts[]</c>, as offsets into the body.</summary>
public struct WebhookContact
{
    /// <summary>The whole contact object.</summary>
    public JsonSegment Raw;

    /// <summary><c>wa_id</c>: the customer's WhatsApp id (absent for contacts known only by business-scoped user id).</summary>
    public JsonSegment WaId;

    /// <summary><c>profile.name</c>.</summary>
    public JsonSegment Name;

    /// <summary><c>user_id</c>: the business-scoped user id (BSUID).</summary>
    public JsonSegment UserId;
}
