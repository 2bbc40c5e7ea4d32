using System.Text.Json;

namespace FastIngest.Outbound;

/// <summary>
/// What FastIngest reads from a send body before queuing it, and the checks it makes. The body is Meta's Cloud API
/// "Send messages" JSON: <c>{"messaging_product":"whatsapp","recipient_type":"individual","to":wa_id,"type":t, t:{...}}</c>;
/// it is queued and sent byte for byte as the bot wrote it.
/// </summary>
/// <param name="To">The recipient's wa_id: <c>to</c> with '+', spaces, '-' and parentheses removed.</param>
/// <param name="Type">The message type (<c>text</c> when absent, as Meta defaults it).</param>
public readonly record struct SendRequest(string To, string Type)
{
    private static readonly HashSet<string> s_types = new(StringComparer.Ordinal)
    {
        "text", "template", "image", "audio", "video", "document", "sticker", "location", "contacts", "interactive", "reaction",
    };

    /// <summary>Templates may go outside the customer service window; everything else is free-form.</summary>
    public bool IsTemplate => Type == "template";

    /// <summary>Longest text body Meta takes, in characters.</summary>
    public const int MaxTextLength = 4096;

    /// <summary>
    /// Reads and checks <paramref name="body"/>. Returns the request, or null with <paramref name="field"/> (the JSON
    /// path at fault, e.g. <c>text.body</c>) and <paramref name="problem"/> (one sentence).
    /// </summary>
    public static SendRequest? TryRead(ReadOnlySpan<byte> body, out string field, out string problem)
    {
        field = "";
        problem = "";
        JsonDocument doc;
        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 64 });
            doc = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException ex)
        {
            (field, problem) = ("body", $"is not valid JSON ({ex.Message.Split('.')[0]})");
            return null;
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                return Fail(out field, out problem, "body", "must be a JSON object");
            if (!root.TryGetProperty("messaging_product", out var product) || product.ValueKind != JsonValueKind.String || product.GetString() != "whatsapp")
                return Fail(out field, out problem, "messaging_product", "must be \"whatsapp\"");
            if (root.TryGetProperty("recipient_type", out var rt) && rt.ValueKind != JsonValueKind.String)
                return Fail(out field, out problem, "recipient_type", "must be a string (\"individual\")");
            if (!root.TryGetProperty("to", out var toElement) || toElement.ValueKind != JsonValueKind.String)
                return Fail(out field, out problem, "to", "is required: the customer's phone number or wa_id, as a string");
            var to = Normalize(toElement.GetString()!);
            if (to is null)
                return Fail(out field, out problem, "to", "must be a phone number: 5 to 20 digits, optionally with '+', spaces, '-' or parentheses");
            var type = "text";
            if (root.TryGetProperty("type", out var typeElement))
            {
                if (typeElement.ValueKind != JsonValueKind.String || !s_types.Contains(typeElement.GetString()!))
                    return Fail(out field, out problem, "type", $"must be one of {string.Join(", ", s_types)}");
                type = typeElement.GetString()!;
            }
            if (!root.TryGetProperty(type, out var content) || content.ValueKind != (type == "contacts" ? JsonValueKind.Array : JsonValueKind.Object))
                return Fail(out field, out problem, type, $"is required for type {type} ({(type == "contacts" ? "an array" : "an object")})");
            switch (type)
            {
                case "text":
                    if (!content.TryGetProperty("body", out var text) || text.ValueKind != JsonValueKind.String || text.GetString()!.Length == 0)
                        return Fail(out field, out problem, "text.body", "is required (a non-empty string)");
                    if (text.GetString()!.Length > MaxTextLength)
                        return Fail(out field, out problem, "text.body", $"must be at most {MaxTextLength} characters");
                    break;
                case "template":
                    if (!content.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String || name.GetString()!.Length == 0)
                        return Fail(out field, out problem, "template.name", "is required (the approved template's name)");
                    if (!content.TryGetProperty("language", out var language) || language.ValueKind != JsonValueKind.Object
                        || !language.TryGetProperty("code", out var code) || code.ValueKind != JsonValueKind.String || code.GetString()!.Length == 0)
                        return Fail(out field, out problem, "template.language.code", "is required (e.g. \"en_US\")");
                    break;
                case "reaction":
                    if (!content.TryGetProperty("message_id", out var mid) || mid.ValueKind != JsonValueKind.String)
                        return Fail(out field, out problem, "reaction.message_id", "is required (the wamid reacted to)");
                    break;
                case "image" or "audio" or "video" or "document" or "sticker":
                    if (!content.TryGetProperty("id", out _) && !content.TryGetProperty("link", out _))
                        return Fail(out field, out problem, type, "needs an id (uploaded media) or a link");
                    break;
            }
            return new SendRequest(to, type);
        }
    }

    private static SendRequest? Fail(out string field, out string problem, string f, string p)
    {
        field = f;
        problem = p;
        return null;
    }

    private static string? Normalize(string to)
    {
        Span<char> digits = stackalloc char[24];
        var n = 0;
        foreach (var c in to)
        {
            if (char.IsAsciiDigit(c))
            {
                if (n == digits.Length)
                    return null;
                digits[n++] = c;
            }
            else if (c is not ('+' or ' ' or '-' or '(' or ')'))
            {
                return null;
            }
        }
        return n is >= 5 and <= 20 ? new string(digits[..n]) : null;
    }
}
