namespace FastIngest.Parsing;

/// <summary>
/// One event of a WhatsApp Cloud API webhook payload, as offsets into the body it was parsed from
/// (Meta, "WhatsApp Cloud API: Webhooks", payload reference for the <c>messages</c> field and others).
/// Holds no references and copies no bytes: read each part with <see cref="JsonSegment.Raw"/> or
/// <see cref="JsonSegment.GetString"/> over the same body.
/// </summary>
/// <remarks>
/// Fields for one kind are absent (<see cref="JsonSegmentKind.None"/>) on the others. The envelope parts
/// (<see cref="EntryId"/>, <see cref="Field"/>, <see cref="Value"/>, <see cref="PhoneNumberId"/>, ...) are set on every kind.
/// </remarks>
public struct WebhookEvent
{
    /// <summary>Message, status or whole change.</summary>
    public WebhookEventKind Kind;

    /// <summary>Position of this event's entry in <c>entry[]</c>.</summary>
    public int EntryIndex;

    /// <summary>Position of this event's change in its entry's <c>changes[]</c>.</summary>
    public int ChangeIndex;

    /// <summary>Index of the first contact of this event's change in <see cref="EventBuffer.Contacts"/>.</summary>
    public int ContactsStart;

    /// <summary>Number of contacts in this event's change (<c>value.contacts[]</c>).</summary>
    public int ContactsCount;

    /// <summary>Index into <see cref="EventBuffer.Contacts"/> of the contact this event is about, or -1 when none matches.</summary>
    public int MatchedContact;

    // ---- envelope ----

    /// <summary><c>entry[].id</c>: the WABA (WhatsApp Business Account) id.</summary>
    public JsonSegment EntryId;

    /// <summary><c>entry[].time</c> (Unix seconds), present on some fields only.</summary>
    public JsonSegment EntryTime;

    /// <summary><c>entry[].changes[].field</c>: <c>messages</c>, <c>message_template_status_update</c>, ...</summary>
    public JsonSegment Field;

    /// <summary><c>entry[].changes[].value</c>, the whole object.</summary>
    public JsonSegment Value;

    /// <summary><c>value.metadata</c>, the whole object.</summary>
    public JsonSegment Metadata;

    /// <summary><c>value.metadata.phone_number_id</c>: the business phone number the event belongs to.</summary>
    public JsonSegment PhoneNumberId;

    /// <summary><c>value.metadata.display_phone_number</c>.</summary>
    public JsonSegment DisplayPhoneNumber;

    /// <summary><c>value.contacts</c>, the whole array.</summary>
    public JsonSegment ContactsArray;

    /// <summary><c>value.errors</c>, the whole array (errors Meta reports for the change itself).</summary>
    public JsonSegment ValueErrors;

    /// <summary><c>value.event</c> for account and template updates (<c>APPROVED</c>, <c>ACCOUNT_DELETED</c>, ...).</summary>
    public JsonSegment ValueEvent;

    // ---- message or status ----

    /// <summary>The message or status object itself; for a <see cref="WebhookEventKind.Change"/>, same as <see cref="Value"/>.</summary>
    public JsonSegment Item;

    /// <summary><c>id</c>: the wamid of a message or status (a wacid for call statuses).</summary>
    public JsonSegment Id;

    /// <summary><c>timestamp</c> (Unix seconds, as a string).</summary>
    public JsonSegment Timestamp;

    /// <summary><c>errors</c> of the message or status, the whole array.</summary>
    public JsonSegment Errors;

    // ---- message ----

    /// <summary><c>from</c>: the customer's WhatsApp id (wa_id).</summary>
    public JsonSegment From;

    /// <summary><c>type</c>: text, image, interactive, ... or any type Meta adds later; absent on some malformed messages.</summary>
    public JsonSegment Type;

    /// <summary>The sub-type: <c>interactive.type</c>, <c>system.type</c> or <c>unsupported.type</c>.</summary>
    public JsonSegment SubType;

    /// <summary><c>context</c>, the whole object (replies, forwards, product enquiries).</summary>
    public JsonSegment Context;

    /// <summary><c>context.id</c>: the wamid this message replies to.</summary>
    public JsonSegment ContextId;

    /// <summary><c>context.forwarded</c>.</summary>
    public bool Forwarded;

    /// <summary><c>context.frequently_forwarded</c>.</summary>
    public bool FrequentlyForwarded;

    /// <summary><c>referral</c>, the whole object (click-to-WhatsApp ads).</summary>
    public JsonSegment Referral;

    /// <summary><c>text.body</c>.</summary>
    public JsonSegment TextBody;

    /// <summary><c>reaction.message_id</c>.</summary>
    public JsonSegment ReactionMessageId;

    /// <summary><c>reaction.emoji</c> (absent or empty when a reaction is removed).</summary>
    public JsonSegment ReactionEmoji;

    // ---- status ----

    /// <summary><c>status</c>: sent, delivered, read, failed, played, or a call state.</summary>
    public JsonSegment Status;

    /// <summary><c>recipient_id</c>: the customer's wa_id (or group id).</summary>
    public JsonSegment RecipientId;

    /// <summary><c>recipient_type</c> (<c>group</c> for group messages).</summary>
    public JsonSegment RecipientType;

    /// <summary><c>recipient_participant_id</c>: for a status of a group message, the participant's wa_id.</summary>
    public JsonSegment RecipientParticipantId;

    /// <summary><c>conversation.id</c>.</summary>
    public JsonSegment ConversationId;

    /// <summary><c>conversation.origin.type</c>: marketing, utility, authentication, service, user_initiated, ...</summary>
    public JsonSegment ConversationOrigin;

    /// <summary><c>pricing.pricing_model</c> (CBP, PMP).</summary>
    public JsonSegment PricingModel;

    /// <summary><c>pricing.category</c>.</summary>
    public JsonSegment PricingCategory;

    /// <summary><c>biz_opaque_callback_data</c>: the tracker the business attached to its send.</summary>
    public JsonSegment BizOpaqueCallbackData;
}
