using System.Text.Json;
using FastIngest.Parsing;

namespace FastIngest.Dispatch;

/// <summary>
/// The ordering key of an event: the customer whose conversation it belongs to. Events with one key reach a
/// destination one at a time in log order; events of different keys are independent. Key 0 means "ordered behind
/// nothing".
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>message (<c>value.messages[]</c>): <c>from</c>, the customer's wa_id;</item>
/// <item>status (<c>value.statuses[]</c>): <c>recipient_id</c>, the customer's wa_id;</item>
/// <item>outbound lifecycle change (<c>field: fastingest_outbound</c>): its <c>value.to</c>, the customer the send
/// went to, so a send's accepted, sent, delivered and read keep their order with that customer's statuses;</item>
/// <item>any other change (account, template, phone number updates, unknown fields): 0.</item>
/// </list>
/// The key is the 64-bit FNV-1a hash of the wa_id's raw bytes (never 0); two customers colliding would only share
/// an order.
/// </remarks>
internal static class OrderKeys
{
    private static ReadOnlySpan<byte> To => "to"u8;

    /// <summary>The key of <paramref name="e"/>, an event parsed from <paramref name="body"/>.</summary>
    public static ulong Of(ReadOnlySpan<byte> body, in WebhookEvent e) => e.Kind switch
    {
        WebhookEventKind.Message => Hash(e.From.RawValue(body)),
        WebhookEventKind.Status => Hash(e.RecipientId.RawValue(body)),
        _ when e.Field.ValueEquals(body, Outbound.LifecycleEvent.FieldUtf8) => Hash(TopLevelString(e.Value.Raw(body), To)),
        _ => 0,
    };

    /// <summary>FNV-1a 64 of <paramref name="bytes"/>; 0 for none, never 0 otherwise.</summary>
    public static ulong Hash(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
            return 0;
        var hash = Internal.Fnv1a.Hash64(bytes);
        return hash == 0 ? 1 : hash;
    }

    /// <summary>FNV-1a 64 of the UTF-16 code units of <paramref name="text"/> (for event ids); never 0.</summary>
    public static ulong Hash(string text)
    {
        var hash = 14695981039346656037ul;
        foreach (var c in text)
            hash = (hash ^ c) * 1099511628211ul;
        return hash == 0 ? 1 : hash;
    }

    /// <summary>The raw bytes of a top-level string property of a JSON object; empty when absent or not a string.</summary>
    private static ReadOnlySpan<byte> TopLevelString(ReadOnlySpan<byte> obj, ReadOnlySpan<byte> name)
    {
        var reader = new Utf8JsonReader(obj);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                return default;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var match = reader.ValueTextEquals(name);
                if (!reader.Read())
                    return default;
                if (match && reader.TokenType == JsonTokenType.String)
                    return obj.Slice((int)reader.TokenStartIndex + 1, reader.ValueSpan.Length);
                reader.Skip();
            }
        }
        catch (JsonException)
        {
        }
        return default;
    }
}
