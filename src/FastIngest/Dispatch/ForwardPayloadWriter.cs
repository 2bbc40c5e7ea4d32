using System.Text.Json;
using FastIngest.Internal;
using FastIngest.Parsing;

namespace FastIngest.Dispatch;

/// <summary>
/// Writes the webhook a bot receives for one event: the same envelope Meta sends
/// (<c>{"object","entry":[{"id","time","changes":[{"value","field"}]}]}</c>), holding that one event: for a message
/// or status, its change's <c>value</c> with every property kept except that <c>messages</c>/<c>statuses</c> hold just
/// this event and <c>contacts</c> just its matching contact; for any other change, the change's <c>value</c> whole.
/// Parts are copied from the received bytes with insignificant whitespace removed, so each payload is one line.
/// </summary>
internal static class ForwardPayloadWriter
{
    public static void Write(ReadOnlySpan<byte> body, EventBuffer events, int index, PooledBufferWriter output)
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
            WriteValueOfOne(body, events, in e, output);
        output.Write(",\"field\":"u8);
        WriteOrEmptyString(body, e.Field, output);
        output.Write("}]}]}"u8);
    }

    private static void WriteValueOfOne(ReadOnlySpan<byte> body, EventBuffer events, in WebhookEvent e, PooledBufferWriter output)
    {
        var value = e.Value.Raw(body);
        var reader = new Utf8JsonReader(value);
        reader.Read(); // StartObject
        output.Write((byte)'{');
        var first = true;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var nameStart = (int)reader.TokenStartIndex;
            var name = value.Slice(nameStart, reader.ValueSpan.Length + 2);
            var isMessages = reader.ValueTextEquals("messages"u8);
            var isStatuses = reader.ValueTextEquals("statuses"u8);
            var isContacts = reader.ValueTextEquals("contacts"u8);
            reader.Read();
            var valueStart = (int)reader.TokenStartIndex;
            reader.Skip();
            var raw = value[valueStart..(int)reader.BytesConsumed];

            ReadOnlySpan<byte> only = default;
            if (isMessages || isStatuses)
            {
                if (e.Kind != (isMessages ? WebhookEventKind.Message : WebhookEventKind.Status))
                    continue;
                only = e.Item.Raw(body);
            }
            else if (isContacts)
            {
                if (e.MatchedContact < 0)
                    continue;
                only = events.Contacts[e.MatchedContact].Raw.Raw(body);
            }

            if (!first)
                output.Write((byte)',');
            first = false;
            WriteCompact(name, output);
            output.Write((byte)':');
            if (only.IsEmpty)
            {
                WriteCompact(raw, output);
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

    /// <summary>Copies well-formed JSON, dropping whitespace outside strings (JSON strings cannot hold raw line breaks).</summary>
    internal static void WriteCompact(ReadOnlySpan<byte> json, PooledBufferWriter output)
    {
        var dest = output.GetSpan(json.Length);
        var n = 0;
        var inString = false;
        for (var i = 0; i < json.Length; i++)
        {
            var b = json[i];
            if (inString)
            {
                dest[n++] = b;
                if (b == (byte)'\\' && i + 1 < json.Length)
                    dest[n++] = json[++i];
                else if (b == (byte)'"')
                    inString = false;
            }
            else if (b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')
            {
                continue;
            }
            else
            {
                if (b == (byte)'"')
                    inString = true;
                dest[n++] = b;
            }
        }
        output.Advance(n);
    }
}
