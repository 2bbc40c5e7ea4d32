using System.Runtime.CompilerServices;
using System.Text.Json;

namespace FastIngest.Parsing;

/// <summary>
/// Parses a WhatsApp Cloud API webhook payload (Meta, "WhatsApp Cloud API: Webhooks"; envelope
/// <c>{"object", "entry":[{"id","time","changes":[{"field","value":{...}}]}]}</c>) into events, in one forward pass of a
/// <see cref="Utf8JsonReader"/> over the raw body. One event per element of <c>value.messages[]</c>, one per element of
/// <c>value.statuses[]</c>, and one per change that has neither. Every message type parses, including types this
/// parser has never seen; unknown properties are skipped, never rejected. Properties may come in any order.
/// </summary>
/// <remarks>
/// Allocation-free for well-formed input once the <see cref="EventBuffer"/> is warm. Malformed input costs one
/// exception inside the reader (the cold path), which <see cref="Parse"/> turns into a <see cref="ParseResult"/>.
/// </remarks>
public static class WebhookParser
{
    /// <summary>The deepest nesting accepted; Meta's payloads nest about ten levels.</summary>
    public const int MaxDepth = 64;

    private static readonly JsonReaderOptions s_options = new() { MaxDepth = MaxDepth, CommentHandling = JsonCommentHandling.Disallow };

    /// <summary>
    /// Parses <paramref name="body"/> into <paramref name="events"/> (cleared first).
    /// Returns <see cref="ParseError.None"/> on success; otherwise the reason, and <paramref name="events"/> is left empty.
    /// Never throws for bad input.
    /// </summary>
    public static ParseResult Parse(ReadOnlySpan<byte> body, EventBuffer events)
    {
        ArgumentNullException.ThrowIfNull(events);
        events.Clear();
        var reader = new Utf8JsonReader(body, s_options);
        try
        {
            var error = ParseRoot(ref reader, body, events);
            if (error != ParseError.None)
                events.Clear();
            return new ParseResult(error, reader.BytesConsumed);
        }
        catch (JsonException)
        {
            events.Clear();
            return new ParseResult(ParseError.InvalidJson, reader.BytesConsumed);
        }
    }

    private static ParseError ParseRoot(ref Utf8JsonReader reader, ReadOnlySpan<byte> body, EventBuffer events)
    {
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            // Read the rest so that a non-object root which is also malformed reports as invalid JSON.
            while (reader.Read()) { }
            return ParseError.RootNotObject;
        }

        var sawEntry = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("object"u8))
            {
                reader.Read();
                events.Object = Capture(ref reader);
            }
            else if (reader.ValueTextEquals("entry"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartArray)
                {
                    reader.Skip();
                    continue;
                }
                sawEntry = true;
                var entryIndex = 0;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType == JsonTokenType.StartObject)
                        ParseEntry(ref reader, body, events, entryIndex++);
                    else
                        reader.Skip();
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        // Anything after the root object is an error: the reader throws on it.
        while (reader.Read()) { }
        return sawEntry ? ParseError.None : ParseError.MissingEntry;
    }

    private static void ParseEntry(ref Utf8JsonReader reader, ReadOnlySpan<byte> body, EventBuffer events, int entryIndex)
    {
        var first = events.Count;
        JsonSegment id = default, time = default;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("id"u8))
            {
                reader.Read();
                id = Capture(ref reader);
            }
            else if (reader.ValueTextEquals("time"u8))
            {
                reader.Read();
                time = Capture(ref reader);
            }
            else if (reader.ValueTextEquals("changes"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartArray)
                {
                    reader.Skip();
                    continue;
                }
                var changeIndex = 0;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType == JsonTokenType.StartObject)
                        ParseChange(ref reader, body, events, entryIndex, changeIndex++);
                    else
                        reader.Skip();
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        for (var i = first; i < events.Count; i++)
        {
            ref var e = ref events.EventAt(i);
            e.EntryIndex = entryIndex;
            e.EntryId = id;
            e.EntryTime = time;
        }
    }

    /// <summary>Envelope parts of one change, filled in after its value has been read.</summary>
    private struct ChangeParts
    {
        public JsonSegment Field;
        public JsonSegment Value;
        public JsonSegment Metadata;
        public JsonSegment PhoneNumberId;
        public JsonSegment DisplayPhoneNumber;
        public JsonSegment ContactsArray;
        public JsonSegment Errors;
        public JsonSegment Event;
    }

    private static void ParseChange(ref Utf8JsonReader reader, ReadOnlySpan<byte> body, EventBuffer events, int entryIndex, int changeIndex)
    {
        var first = events.Count;
        var contactsStart = events.ContactCount;
        var parts = default(ChangeParts);

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("field"u8))
            {
                reader.Read();
                parts.Field = Capture(ref reader);
            }
            else if (reader.ValueTextEquals("value"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartObject)
                    ParseValue(ref reader, events, ref parts);
                else
                    parts.Value = Capture(ref reader);
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        var contactsCount = events.ContactCount - contactsStart;
        if (events.Count == first)
        {
            ref var change = ref events.AddEvent();
            change.Kind = WebhookEventKind.Change;
            change.Item = parts.Value;
        }

        for (var i = first; i < events.Count; i++)
        {
            ref var e = ref events.EventAt(i);
            e.EntryIndex = entryIndex;
            e.ChangeIndex = changeIndex;
            e.Field = parts.Field;
            e.Value = parts.Value;
            e.Metadata = parts.Metadata;
            e.PhoneNumberId = parts.PhoneNumberId;
            e.DisplayPhoneNumber = parts.DisplayPhoneNumber;
            e.ContactsArray = parts.ContactsArray;
            e.ValueErrors = parts.Errors;
            e.ValueEvent = parts.Event;
            e.ContactsStart = contactsStart;
            e.ContactsCount = contactsCount;
        }
        MatchContacts(body, events, first, contactsStart, contactsCount);
    }

    /// <summary>
    /// Sets each event's <see cref="WebhookEvent.MatchedContact"/>: for a message the contact whose <c>wa_id</c> is its
    /// <c>from</c>; for a status the one whose <c>wa_id</c> is its <c>recipient_id</c>, else its
    /// <c>recipient_participant_id</c> (a group message's participant). When the change carries exactly one contact
    /// and it matches none of the change's events (a business-scoped user id without <c>from</c>, a group status),
    /// every event of the change keeps it. -1 when none. Linear in events + contacts: past a few contacts their
    /// <c>wa_id</c>s go into an open-addressing table rented from the array pool.
    /// </summary>
    private static void MatchContacts(ReadOnlySpan<byte> body, EventBuffer events, int first, int start, int count)
    {
        if (count == 0)
            return;
        int[]? table = null;
        var mask = 0;
        if (count > 8)
        {
            var size = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)count * 2);
            mask = size - 1;
            table = System.Buffers.ArrayPool<int>.Shared.Rent(size);
            table.AsSpan(0, size).Fill(-1);
            for (var i = start; i < start + count; i++)
            {
                ref readonly var waId = ref events.ContactAt(i).WaId;
                if (waId.Kind != JsonSegmentKind.String)
                    continue; // absent or escaped: found by the linear scan below
                var slot = (int)(Internal.Fnv1a.Hash32(waId.RawValue(body)) & (uint)mask);
                while (table[slot] >= 0)
                    slot = (slot + 1) & mask;
                table[slot] = i;
            }
        }
        try
        {
            var matchedAny = false;
            for (var k = first; k < events.Count; k++)
            {
                ref var e = ref events.EventAt(k);
                e.MatchedContact = -1;
                if (e.Kind == WebhookEventKind.Change)
                    continue;
                var who = e.Kind == WebhookEventKind.Message ? e.From : e.RecipientId;
                var found = Find(body, events, in who, start, count, table, mask);
                if (found < 0 && e.Kind == WebhookEventKind.Status)
                    found = Find(body, events, in e.RecipientParticipantId, start, count, table, mask);
                e.MatchedContact = found;
                matchedAny |= found >= 0;
            }
            if (!matchedAny && count == 1)
            {
                for (var k = first; k < events.Count; k++)
                {
                    ref var e = ref events.EventAt(k);
                    if (e.Kind != WebhookEventKind.Change)
                        e.MatchedContact = start;
                }
            }
        }
        finally
        {
            if (table is not null)
                System.Buffers.ArrayPool<int>.Shared.Return(table);
        }
    }

    private static int Find(ReadOnlySpan<byte> body, EventBuffer events, in JsonSegment who, int start, int count, int[]? table, int mask)
    {
        if (!who.IsPresent)
            return -1;
        if (table is not null && who.Kind == JsonSegmentKind.String)
        {
            var slot = (int)(Internal.Fnv1a.Hash32(who.RawValue(body)) & (uint)mask);
            for (; table[slot] >= 0; slot = (slot + 1) & mask)
            {
                if (JsonSegment.ValuesEqual(body, in who, in events.ContactAt(table[slot]).WaId))
                    return table[slot];
            }
            // Not among the plain wa_ids; an escaped one (rare) is compared below.
        }
        for (var i = start; i < start + count; i++)
        {
            ref readonly var waId = ref events.ContactAt(i).WaId;
            if ((table is null || waId.Kind != JsonSegmentKind.String) && JsonSegment.ValuesEqual(body, in who, in waId))
                return i;
        }
        return -1;
    }


    private static void ParseValue(ref Utf8JsonReader reader, EventBuffer events, ref ChangeParts parts)
    {
        var start = (int)reader.TokenStartIndex;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("messages"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartArray)
                {
                    reader.Skip();
                    continue;
                }
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType == JsonTokenType.StartObject)
                        ParseMessage(ref reader, ref events.AddEvent());
                    else
                        reader.Skip();
                }
            }
            else if (reader.ValueTextEquals("statuses"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartArray)
                {
                    reader.Skip();
                    continue;
                }
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType == JsonTokenType.StartObject)
                        ParseStatus(ref reader, ref events.AddEvent());
                    else
                        reader.Skip();
                }
            }
            else if (reader.ValueTextEquals("metadata"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    parts.Metadata = Capture(ref reader);
                    continue;
                }
                var metaStart = (int)reader.TokenStartIndex;
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    if (reader.ValueTextEquals("phone_number_id"u8))
                    {
                        reader.Read();
                        parts.PhoneNumberId = Capture(ref reader);
                    }
                    else if (reader.ValueTextEquals("display_phone_number"u8))
                    {
                        reader.Read();
                        parts.DisplayPhoneNumber = Capture(ref reader);
                    }
                    else
                    {
                        reader.Read();
                        reader.Skip();
                    }
                }
                parts.Metadata = EndContainer(ref reader, metaStart, JsonSegmentKind.Object);
            }
            else if (reader.ValueTextEquals("contacts"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartArray)
                {
                    parts.ContactsArray = Capture(ref reader);
                    continue;
                }
                var arrayStart = (int)reader.TokenStartIndex;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType == JsonTokenType.StartObject)
                        ParseContact(ref reader, ref events.AddContact());
                    else
                        reader.Skip();
                }
                parts.ContactsArray = EndContainer(ref reader, arrayStart, JsonSegmentKind.Array);
            }
            else if (reader.ValueTextEquals("errors"u8))
            {
                reader.Read();
                parts.Errors = Capture(ref reader);
            }
            else if (reader.ValueTextEquals("event"u8))
            {
                reader.Read();
                parts.Event = Capture(ref reader);
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        parts.Value = EndContainer(ref reader, start, JsonSegmentKind.Object);
    }

    private static void ParseMessage(ref Utf8JsonReader reader, ref WebhookEvent e)
    {
        e.Kind = WebhookEventKind.Message;
        var start = (int)reader.TokenStartIndex;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("id"u8))
            {
                reader.Read();
                e.Id = Capture(ref reader);
            }
            else if (reader.ValueTextEquals("from"u8))
            {
                reader.Read();
                e.From = Capture(ref reader);
            }
            else if (reader.ValueTextEquals("timestamp"u8))
            {
                reader.Read();
                e.Timestamp = Capture(ref reader);
            }
            else if (reader.ValueTextEquals("type"u8))
            {
                reader.Read();
                e.Type = Capture(ref reader);
            }
            else if (reader.ValueTextEquals("context"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    e.Context = Capture(ref reader);
                    continue;
                }
                var ctxStart = (int)reader.TokenStartIndex;
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    if (reader.ValueTextEquals("id"u8))
                    {
                        reader.Read();
                        e.ContextId = Capture(ref reader);
                    }
                    else if (reader.ValueTextEquals("forwarded"u8))
                    {
                        reader.Read();
                        e.Forwarded = reader.TokenType == JsonTokenType.True;
                        reader.Skip();
                    }
                    else if (reader.ValueTextEquals("frequently_forwarded"u8))
                    {
                        reader.Read();
                        e.FrequentlyForwarded = reader.TokenType == JsonTokenType.True;
                        reader.Skip();
                    }
                    else
                    {
                        reader.Read();
                        reader.Skip();
                    }
                }
                e.Context = EndContainer(ref reader, ctxStart, JsonSegmentKind.Object);
            }
            else if (reader.ValueTextEquals("text"u8))
            {
                reader.Read();
                e.TextBody = ReadChildProperty(ref reader, "body"u8);
            }
            else if (reader.ValueTextEquals("interactive"u8) || reader.ValueTextEquals("system"u8) || reader.ValueTextEquals("unsupported"u8))
            {
                reader.Read();
                e.SubType = ReadChildProperty(ref reader, "type"u8);
            }
            else if (reader.ValueTextEquals("reaction"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    reader.Skip();
                    continue;
                }
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    if (reader.ValueTextEquals("message_id"u8))
                    {
                        reader.Read();
                        e.ReactionMessageId = Capture(ref reader);
                    }
                    else if (reader.ValueTextEquals("emoji"u8))
                    {
                        reader.Read();
                        e.ReactionEmoji = Capture(ref reader);
                    }
                    else
                    {
                        reader.Read();
                        reader.Skip();
                    }
                }
            }
            else if (reader.ValueTextEquals("referral"u8))
            {
                reader.Read();
                e.Referral = Capture(ref reader);
            }
            else if (reader.ValueTextEquals("errors"u8))
            {
                reader.Read();
                e.Errors = Capture(ref reader);
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        e.Item = EndContainer(ref reader, start, JsonSegmentKind.Object);
    }

    private static void ParseStatus(ref Utf8JsonReader reader, ref WebhookEvent e)
    {
        e.Kind = WebhookEventKind.Status;
        var start = (int)reader.TokenStartIndex;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("id"u8))
            {
                reader.Read();
                e.Id = Capture(ref reader);
            }
            else if (reader.ValueTextEquals("status"u8))
            {
                reader.Read();
                e.Status = Capture(ref reader);
            }
            else if (reader.ValueTextEquals("timestamp"u8))
            {
                reader.Read();
                e.Timestamp = Capture(ref reader);
            }
            else if (reader.ValueTextEquals("recipient_id"u8))
            {
                reader.Read();
                e.RecipientId = Capture(ref reader);
            }
            else if (reader.ValueTextEquals("recipient_type"u8))
            {
                reader.Read();
                e.RecipientType = Capture(ref reader);
            }
            else if (reader.ValueTextEquals("recipient_participant_id"u8))
            {
                reader.Read();
                e.RecipientParticipantId = Capture(ref reader);
            }
            else if (reader.ValueTextEquals("biz_opaque_callback_data"u8))
            {
                reader.Read();
                e.BizOpaqueCallbackData = Capture(ref reader);
            }
            else if (reader.ValueTextEquals("conversation"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    reader.Skip();
                    continue;
                }
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    if (reader.ValueTextEquals("id"u8))
                    {
                        reader.Read();
                        e.ConversationId = Capture(ref reader);
                    }
                    else if (reader.ValueTextEquals("origin"u8))
                    {
                        reader.Read();
                        e.ConversationOrigin = ReadChildProperty(ref reader, "type"u8);
                    }
                    else
                    {
                        reader.Read();
                        reader.Skip();
                    }
                }
            }
            else if (reader.ValueTextEquals("pricing"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    reader.Skip();
                    continue;
                }
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    if (reader.ValueTextEquals("pricing_model"u8))
                    {
                        reader.Read();
                        e.PricingModel = Capture(ref reader);
                    }
                    else if (reader.ValueTextEquals("category"u8))
                    {
                        reader.Read();
                        e.PricingCategory = Capture(ref reader);
                    }
                    else
                    {
                        reader.Read();
                        reader.Skip();
                    }
                }
            }
            else if (reader.ValueTextEquals("errors"u8))
            {
                reader.Read();
                e.Errors = Capture(ref reader);
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        e.Item = EndContainer(ref reader, start, JsonSegmentKind.Object);
    }

    private static void ParseContact(ref Utf8JsonReader reader, ref WebhookContact c)
    {
        var start = (int)reader.TokenStartIndex;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("wa_id"u8))
            {
                reader.Read();
                c.WaId = Capture(ref reader);
            }
            else if (reader.ValueTextEquals("user_id"u8))
            {
                reader.Read();
                c.UserId = Capture(ref reader);
            }
            else if (reader.ValueTextEquals("profile"u8))
            {
                reader.Read();
                c.Name = ReadChildProperty(ref reader, "name"u8);
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        c.Raw = EndContainer(ref reader, start, JsonSegmentKind.Object);
    }

    /// <summary>Reader on a value: when it is an object, captures its property <paramref name="name"/> and skips the rest.</summary>
    private static JsonSegment ReadChildProperty(ref Utf8JsonReader reader, ReadOnlySpan<byte> name)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return default;
        }
        JsonSegment found = default;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var match = reader.ValueTextEquals(name);
            reader.Read();
            if (match)
                found = Capture(ref reader);
            else
                reader.Skip();
        }
        return found;
    }

    /// <summary>Reader on the closing token of a container opened at <paramref name="start"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static JsonSegment EndContainer(ref Utf8JsonReader reader, int start, JsonSegmentKind kind)
        => new(start, (int)reader.BytesConsumed - start, kind);

    /// <summary>Captures the value token the reader is on; containers are skipped to their end.</summary>
    private static JsonSegment Capture(ref Utf8JsonReader reader)
    {
        var start = (int)reader.TokenStartIndex;
        switch (reader.TokenType)
        {
            case JsonTokenType.String:
                return new JsonSegment(start, reader.ValueSpan.Length + 2, reader.ValueIsEscaped ? JsonSegmentKind.EscapedString : JsonSegmentKind.String);
            case JsonTokenType.Number:
                return new JsonSegment(start, reader.ValueSpan.Length, JsonSegmentKind.Number);
            case JsonTokenType.True:
                return new JsonSegment(start, 4, JsonSegmentKind.True);
            case JsonTokenType.False:
                return new JsonSegment(start, 5, JsonSegmentKind.False);
            case JsonTokenType.Null:
                return new JsonSegment(start, 4, JsonSegmentKind.Null);
            case JsonTokenType.StartObject:
                reader.Skip();
                return EndContainer(ref reader, start, JsonSegmentKind.Object);
            case JsonTokenType.StartArray:
                reader.Skip();
                return EndContainer(ref reader, start, JsonSegmentKind.Array);
            default:
                return default;
        }
    }
}
