using System.Text.Json;
using FastIngest.Dispatch;

namespace FastIngest.Destinations;

/// <summary>
/// Chatwoot's WhatsApp Cloud channel: each message or status goes to <c>POST {Url}/webhooks/whatsapp/{phone_number}</c>,
/// the route of Chatwoot's <c>Webhooks::WhatsappController#process_payload</c> (Chatwoot's <c>config/routes.rb</c>),
/// where <c>phone_number</c> is the channel's number as Chatwoot stores it (<c>Channel::Whatsapp#phone_number</c>:
/// <c>+</c> and the digits), built from the payload's <c>metadata.display_phone_number</c>. The body is the Meta-shaped
/// payload, signed with <c>X-Hub-Signature-256</c> under the installation's <c>WHATSAPP_APP_SECRET</c>, as Meta would
/// sign it. Chatwoot answers 422 for a number it lists as inactive (<c>INACTIVE_WHATSAPP_NUMBERS</c>): permanent, like any
/// 4xx other than 408, 425 and 429, so the event goes to the dead-letter queue.
/// </summary>
internal sealed class ChatwootTarget(WebhookTarget http, Uri baseUrl) : IForwardTarget
{
    private readonly string _base = baseUrl.ToString().TrimEnd('/');

    public string Describe => $"chatwoot {_base}";

    public ValueTask<ForwardResult> SendAsync(ForwardItem item, CancellationToken cancellationToken)
    {
        if (PhoneNumberOf(item.Payload.Span) is not { } number)
            return ValueTask.FromResult(new ForwardResult(false, "no metadata.display_phone_number in the payload: Chatwoot routes by it", Permanent: true));
        return http.PostAsync(new Uri($"{_base}/webhooks/whatsapp/{number}"), item, cancellationToken);
    }

    /// <summary>
    /// <c>+</c> and the digits of the first <c>display_phone_number</c> in <paramref name="payload"/> (Meta writes it
    /// with or without a <c>+</c>, sometimes with spaces or dashes), or null.
    /// </summary>
    internal static string? PhoneNumberOf(ReadOnlySpan<byte> payload)
    {
        var reader = new Utf8JsonReader(payload);
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType != JsonTokenType.PropertyName || !reader.ValueTextEquals("display_phone_number"u8))
                    continue;
                if (!reader.Read() || reader.TokenType != JsonTokenType.String)
                    return null;
                var digits = new string([.. reader.GetString()!.Where(char.IsAsciiDigit)]);
                return digits.Length == 0 ? null : "+" + digits;
            }
        }
        catch (JsonException)
        {
        }
        return null;
    }

    public void Dispose()
    {
    }
}
