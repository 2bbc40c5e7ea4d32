using System.Text.Json;
using FastIngest.Internal;
using FastIngest.Parsing;

namespace FastIngest.Dispatch;

/// <summary>
/// Writes the webhook a bot receives for one event: the same envelope Meta sends
/// (<c>{"object","entry":[{"id","time","changes":[{"value","field"}]}]}</c>), holding that one event: for a message
/// or status, its change's <c>value</c> with every property kept except that <c>messages</c>/<c>statuses</c> hold just
/// this event and <c>contacts</c> just its matching contact; for any other change, the change's <c>value</c> whole.
/// Parts are copied from the received bytes with insignificant whitespace removed, so each payload is one line, and
/// with every non-ASCII character written as a lowercase <c>\uXXXX</c> escape (two, a surrogate pair, past the BMP):
/// the JSON values are unchanged, and the body is then the same bytes whether a bot verifies the signature over the
/// raw body or over its "escaped unicode version ... with lowercase hex digits", which is what Meta signs (Meta's
/// Graph API webhooks docs, "Getting Started", Validating Payloads) and what whatsapp-api-js verifies.
/// </summary>
/// <remarks>
/// Building the forwards of all N events of a payload is O(size of the payload): the properties of each change's
/// <c>value</c> are located once (<see cref="ValueLayout"/>) and reused for every event of that change.
/// </remarks>
internal static class ForwardPayloadWriter
{
    /// <summary>
    /// Writes the forward of event <paramref name="index"/>. <paramref name="layout"/>, when given, remembers where the
    /// properties of the last change's value are; call <see cref="ValueLayout.Reset"/> before a new body.
    /// </summary>
    public static void Write(ReadOnlySpan<byte> body, EventBuffer events, int index, PooledBufferWriter output, ValueLayout? layout = null)
    {
        ref readonly var e = ref events[index];
        output.Write("{\"object\":"u8);
        if (events.Object.IsPresent)
            WriteCompact(events.Object.Raw(body), output);
        else
            output.Write("\"whatsapp_business_account\""u8);
        output.Write(",\"entry\":[{\"id\":"u8);
        WriteOrEmptyString(body, e.EntryId, output);
        if (e.EntryTime.IsPresent)
        {
            output.Write(",\"time\":"u8);
            WriteCompact(e.EntryTime.Raw(body), output);
        }
        output.Write(",\"changes\":[{\"value\":"u8);
        if (e.Kind == WebhookEventKind.Change || e.Value.Kind != JsonSegmentKind.Object)
            WriteOrNull(body, e.Value, output);
        else
            WriteValueOfOne(body, events, in e, output, layout ?? new ValueLayout());
        output.Write(",\"field\":"u8);
        WriteOrEmptyString(body, e.Field, output);
        output.Write("}]}]}"u8);
    }

    private static void WriteValueOfOne(ReadOnlySpan<byte> body, EventBuffer events, in WebhookEvent e, PooledBufferWriter output, ValueLayout layout)
    {
        var props = layout.Of(body, in e.Value);
        output.Write((byte)'{');
        var first = true;
        foreach (ref readonly var p in props)
        {
            ReadOnlySpan<byte> only = default;
            switch (p.Kind)
            {
                case ValueLayout.PropertyKind.Messages or ValueLayout.PropertyKind.Statuses:
                    if (e.Kind != (p.Kind == ValueLayout.PropertyKind.Messages ? WebhookEventKind.Message : WebhookEventKind.Status))
                        continue;
                    only = e.Item.Raw(body);
                    break;
                case ValueLayout.PropertyKind.Contacts:
                    if (e.MatchedContact < 0)
                        continue;
                    only = events.Contacts[e.MatchedContact].Raw.Raw(body);
                    break;
            }

            if (!first)
                output.Write((byte)',');
            first = false;
            WriteCompact(body.Slice(p.NameStart, p.NameLength), output);
            output.Write((byte)':');
            if (only.IsEmpty)
            {
                WriteCompact(body.Slice(p.ValueStart, p.ValueLength), output);
            }
            else
            {
                output.Write((byte)'[');
                WriteCompact(only, output);
                output.Write((byte)']');
            }
        }
        output.Write((byte)'}');
    }

    private static void WriteOrEmptyString(ReadOnlySpan<byte> body, in JsonSegment s, PooledBufferWriter output)
    {
        if (s.IsPresent)
            WriteCompact(s.Raw(body), output);
        else
            output.Write("\"\""u8);
    }

    private static void WriteOrNull(ReadOnlySpan<byte> body, in JsonSegment s, PooledBufferWriter output)
    {
        if (s.IsPresent)
            WriteCompact(s.Raw(body), output);
        else
            output.Write("null"u8);
    }

    /// <summary>
    /// Copies well-formed JSON, dropping whitespace outside strings (JSON strings cannot hold raw line breaks) and
    /// writing each non-ASCII character (valid UTF-8 only occurs inside strings) as lowercase <c>\uXXXX</c>.
    /// </summary>
    internal static void WriteCompact(ReadOnlySpan<byte> json, PooledBufferWriter output)
    {
        var dest = output.GetSpan(json.Length);
        var n = 0;
        var inString = false;
        var escaping = false;
        for (var i = 0; i < json.Length; i++)
        {
            var b = json[i];
            if (b >= 0x80)
            {
                if (!escaping)
                {
                    // Cold for most payloads: from here on, up to 6 output bytes per input byte.
                    output.Advance(n);
                    dest = output.GetSpan(UnicodeEscape.MaxEscapedLength(json.Length - i));
                    n = 0;
                    escaping = true;
                }
                n += UnicodeEscape.EscapeRune(json[i..], dest[n..], out var consumed);
                i += consumed - 1;
            }
            else if (inString)
            {
                dest[n++] = b;
                if (b == (byte)'\\' && i + 1 < json.Length)
                    dest[n++] = json[++i];
                else if (b == (byte)'"')
                    inString = false;
            }
            else if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
            {
                if (b == (byte)'"')
                    inString = true;
                dest[n++] = b;
            }
        }
        output.Advance(n);
    }
}

/// <summary>
/// Where the top-level properties of one change's <c>value</c> are in the body (name and value offsets, and which
/// of them are <c>messages</c>, <c>statuses</c>, <c>contacts</c>), found once and reused for each event of that
/// change. One per dispatcher; <see cref="Reset"/> before each new body. Not thread-safe.
/// </summary>
internal sealed class ValueLayout
{
    /// <summary>What a property is to the forward writer.</summary>
    public enum PropertyKind : byte
    {
        /// <summary>Copied as it is.</summary>
        Other,
        /// <summary><c>messages</c>: replaced by the one message.</summary>
        Messages,
        /// <summary><c>statuses</c>: replaced by the one status.</summary>
        Statuses,
        /// <summary><c>contacts</c>: replaced by the one matching contact, or left out.</summary>
        Contacts,
    }

    /// <summary>One property: offsets into the body, in bytes.</summary>
    public readonly record struct Property(int NameStart, int NameLength, int ValueStart, int ValueLength, PropertyKind Kind);

    private Property[] _props = new Property[16];
    private int _count;
    private int _valueStart = -1;

    /// <summary>Bytes of values this layout has read so far (each change's value once per body, however many events it holds).</summary>
    public long BytesScanned { get; private set; }

    /// <summary>Forgets the cached value (the next body is another one).</summary>
    public void Reset() => _valueStart = -1;

    /// <summary>The properties of <paramref name="value"/> (an object segment of <paramref name="body"/>), in order.</summary>
    public ReadOnlySpan<Property> Of(ReadOnlySpan<byte> body, in JsonSegment value)
    {
        if (_valueStart == value.Start)
            return _props.AsSpan(0, _count);
        _count = 0;
        var raw = value.Raw(body);
        BytesScanned += raw.Length;
        var reader = new Utf8JsonReader(raw);
        reader.Read(); // StartObject
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var nameStart = (int)reader.TokenStartIndex;
            var nameLength = reader.ValueSpan.Length + 2;
            var kind = reader.ValueTextEquals("messages"u8) ? PropertyKind.Messages
                : reader.ValueTextEquals("statuses"u8) ? PropertyKind.Statuses
                : reader.ValueTextEquals("contacts"u8) ? PropertyKind.Contacts
                : PropertyKind.Other;
            reader.Read();
            var valueStart = (int)reader.TokenStartIndex;
            reader.Skip();
            if (_count == _props.Length)
                Array.Resize(ref _props, _count * 2);
            _props[_count++] = new Property(value.Start + nameStart, nameLength, value.Start + valueStart, (int)reader.BytesConsumed - valueStart, kind);
        }
        _valueStart = value.Start;
        return _props.AsSpan(0, _count);
    }
}
