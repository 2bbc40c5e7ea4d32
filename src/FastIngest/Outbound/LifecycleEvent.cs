using System.Buffers;
using System.Text.Json;

namespace FastIngest.Outbound;

/// <summary>
/// The event a lifecycle step (accepted, sent, delivered, read, failed, rejected) becomes for the tenant's bot, in the
/// shape of a Meta webhook so that it travels the event log and the destinations like one:
/// <c>{"object":"whatsapp_business_account","entry":[{"id":"fastingest","changes":[{"field":"fastingest_outbound","value":{"id","status","phone_number_id","metadata":{"phone_number_id"},"to","wamid","attempts","timestamp","recorded_at_ms","error":{"code","message"}}}]}]}</c>.
/// The bytes depend only on the send and its recorded steps (never on the clock or on state kept only in memory), so
/// an event emitted again after a restart has the same event id and is deduplicated like a webhook Meta resends.
/// </summary>
internal static class LifecycleEvent
{
    /// <summary>The <c>field</c> of lifecycle events.</summary>
    public const string Field = "fastingest_outbound";

    /// <summary><see cref="Field"/> as UTF-8.</summary>
    public static ReadOnlySpan<byte> FieldUtf8 => "fastingest_outbound"u8;

    /// <summary>The body of <paramref name="step"/>'s event, with the send as it is right after that step (its wamid, its attempts so far).</summary>
    public static byte[] Body(OutboundMessage message, OutboundStep step)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("object", "whatsapp_business_account");
            w.WriteStartArray("entry");
            w.WriteStartObject();
            w.WriteString("id", "fastingest");
            w.WriteStartArray("changes");
            w.WriteStartObject();
            w.WriteString("field", Field);
            w.WriteStartObject("value");
            w.WriteString("id", message.Id);
            w.WriteString("status", OutboundMessage.Name(step.Status));
            w.WriteString("phone_number_id", message.PhoneNumberId);
            w.WriteStartObject("metadata");
            w.WriteString("phone_number_id", message.PhoneNumberId);
            w.WriteEndObject();
            w.WriteString("to", message.To);
            if (message.Wamid is not null)
                w.WriteString("wamid", message.Wamid);
            w.WriteNumber("attempts", message.Attempts);
            w.WriteString("timestamp", (step.MetaUnixSeconds > 0 ? step.MetaUnixSeconds : step.AtUnixMs / 1000).ToString(System.Globalization.CultureInfo.InvariantCulture));
            w.WriteNumber("recorded_at_ms", step.AtUnixMs);
            if (step.Status is OutboundStatus.Failed or OutboundStatus.Rejected)
            {
                w.WriteStartObject("error");
                w.WriteNumber("code", step.Code);
                w.WriteString("message", step.Detail ?? "");
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
