using System.Text;

namespace FastIngest.Tests.Support;

/// <summary>Builds Meta-shaped webhook payloads (the <c>messages</c> field) for tests.</summary>
internal static class Payloads
{
    public const string PhoneNumberId = "106540352242922";

    public static byte[] Messages(params (string Wamid, string From, string Text)[] messages)
    {
        var contacts = string.Join(",", messages.Select(m => m.From).Distinct().Select(f => $$$"""{"profile":{"name":"Customer {{{f}}}"},"wa_id":"{{{f}}}"}"""));
        var items = string.Join(",", messages.Select(m =>
            $$$"""{"from":"{{{m.From}}}","id":"{{{m.Wamid}}}","timestamp":"1749416383","type":"text","text":{"body":"{{{m.Text}}}"}}"""));
        return Envelope($$$"""{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"{{{PhoneNumberId}}}"},"contacts":[{{{contacts}}}],"messages":[{{{items}}}]}""");
    }

    public static byte[] Text(string wamid, string from = "16505551234", string text = "hello") => Messages((wamid, from, text));

    /// <summary>One inbound text message sent at <paramref name="timestamp"/> (Unix seconds; now by default) from <paramref name="from"/>.</summary>
    public static byte[] InboundAt(string wamid, string from, long? timestamp = null, string text = "hi")
        => Envelope($$$"""{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"{{{PhoneNumberId}}}"},"contacts":[{"profile":{"name":"Customer"},"wa_id":"{{{from}}}"}],"messages":[{"from":"{{{from}}}","id":"{{{wamid}}}","timestamp":"{{{timestamp ?? DateTimeOffset.UtcNow.ToUnixTimeSeconds()}}}","type":"text","text":{"body":"{{{text}}}"}}]}""");

    public static byte[] Statuses(params (string Wamid, string Status, string Recipient)[] statuses)
    {
        var items = string.Join(",", statuses.Select(s =>
            $$$"""{"id":"{{{s.Wamid}}}","status":"{{{s.Status}}}","timestamp":"1749416400","recipient_id":"{{{s.Recipient}}}"}"""));
        return Envelope($$$"""{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"{{{PhoneNumberId}}}"},"statuses":[{{{items}}}]}""");
    }

    /// <summary>One status webhook with Meta's <paramref name="timestamp"/> (Unix seconds).</summary>
    public static byte[] Status(string wamid, string status, long timestamp, string recipient = "16505551234")
        => Envelope($$$"""{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"{{{PhoneNumberId}}}"},"statuses":[{"id":"{{{wamid}}}","status":"{{{status}}}","timestamp":"{{{timestamp}}}","recipient_id":"{{{recipient}}}"}]}""");

    /// <summary>
    /// A webhook POST as Meta sends it: <paramref name="body"/> to <c>/webhooks/{tenant}</c> as application/json,
    /// with <c>X-Hub-Signature-256</c> under <paramref name="secret"/>, or the given raw header, or none.
    /// </summary>
    public static HttpRequestMessage Webhook(string tenant, byte[] body, string? secret, string? rawSignature = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/webhooks/{tenant}") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        if ((rawSignature ?? (secret is null ? null : FastIngest.Ingest.WebhookSignature.Sign(secret, body))) is { } signature)
            request.Headers.TryAddWithoutValidation(FastIngest.Ingest.WebhookSignature.HeaderName, signature);
        return request;
    }

    private static byte[] Envelope(string value)
        => Encoding.UTF8.GetBytes($$$"""{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{{{value}}},"field":"messages"}]}]}""");
}
