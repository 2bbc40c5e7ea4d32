using System.Text.Json;

namespace FastIngest.Outbound;

/// <summary>
/// The <c>/messages</c> bodies that are not sends: mark as read, <c>{"messaging_product":"whatsapp","status":"read",
/// "message_id":"wamid..."}</c>, optionally with the typing indicator <c>"typing_indicator":{"type":"text"}</c> (Meta's
/// WhatsApp Business Platform docs, "Typing indicators" and "Mark messages as read"; Meta answers
/// <c>{"success":true}</c>). They concern a message the customer sent, so the 24-hour window does not apply, and
/// they are only worth something now: FastIngest passes them straight to Meta and returns Meta's answer.
/// </summary>
internal static class ReadReceipt
{
    /// <summary>
    /// Whether <paramref name="body"/> is a read receipt (it has <c>"status"</c>). When it has <c>"status"</c> but is
    /// malformed, returns true with <paramref name="field"/> and <paramref name="problem"/> set.
    /// </summary>
    public static bool Is(ReadOnlySpan<byte> body, out string? field, out string? problem)
    {
        field = problem = null;
        try
        {
            var reader = new Utf8JsonReader(body);
            using var doc = JsonDocument.ParseValue(ref reader);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("status", out var status))
                return false;
            if (status.ValueKind != JsonValueKind.String || status.GetString() != "read")
                (field, problem) = ("status", "must be \"read\" (mark as read; a send has \"to\" and \"type\" instead)");
            else if (!root.TryGetProperty("messaging_product", out var product) || product.ValueKind != JsonValueKind.String || product.GetString() != "whatsapp")
                (field, problem) = ("messaging_product", "must be \"whatsapp\"");
            else if (!root.TryGetProperty("message_id", out var id) || id.ValueKind != JsonValueKind.String || id.GetString() is not { Length: > 0 and <= 512 })
                (field, problem) = ("message_id", "is required: the wamid of the customer's message, as a string");
            else if (root.TryGetProperty("typing_indicator", out var typing)
                && (typing.ValueKind != JsonValueKind.Object || !typing.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || type.GetString() != "text"))
                (field, problem) = ("typing_indicator.type", "must be \"text\"");
            return true;
        }
        catch (JsonException)
        {
            return false; // not JSON: the send validation says so
        }
    }
}
