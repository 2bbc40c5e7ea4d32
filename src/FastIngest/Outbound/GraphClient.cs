using System.Net.Http.Headers;
using System.Text.Json;

namespace FastIngest.Outbound;

/// <summary>Meta's answer to one send, as FastIngest reads it.</summary>
/// <param name="HttpStatus">Meta's HTTP status; 0 when no answer came (timeout, connection error).</param>
/// <param name="Body">Meta's body as Meta gave it (empty without an answer).</param>
/// <param name="ContentType">Meta's content type, or null.</param>
/// <param name="Wamid">The accepted message's <c>messages[0].id</c>, or null.</param>
/// <param name="Code"><c>error.code</c>, or 0.</param>
/// <param name="Detail"><c>error.message</c> and <c>error_data.details</c>, or the transport error.</param>
/// <param name="Class">What to do about it (<see cref="MetaErrors"/>).</param>
/// <param name="RetryAfter">Meta's <c>Retry-After</c>, if it sent one.</param>
public readonly record struct GraphAnswer(int HttpStatus, byte[] Body, string? ContentType, string? Wamid, int Code, string? Detail, MetaErrorClass Class, TimeSpan? RetryAfter);

/// <summary>
/// Sends one message to Meta's Cloud API: <c>POST {GraphUrl}/{version}/{phone_number_id}/messages</c> with the bot's
/// JSON body exactly as queued and <c>Authorization: Bearer</c> the tenant's token (or the bot's own header), and
/// reads the answer: <c>{"messaging_product","contacts":[...],"messages":[{"id":wamid}]}</c> on success,
/// <c>{"error":{"message","type","code","error_data":{"details"}}}</c> otherwise (Meta's "Send messages" and "Error
/// codes" pages).
/// </summary>
internal sealed class GraphClient(HttpClient http, Uri graphUrl, TimeSpan timeout)
{
    private readonly string _base = graphUrl.AbsoluteUri.TrimEnd('/');

    /// <summary>Sends and classifies; never throws for Meta's or the network's failures (they come back as <see cref="MetaErrorClass.Transient"/>).</summary>
    /// <remarks>
    /// With <paramref name="d360Url"/> (a tenant whose <c>Outbound:Provider</c> is 360dialog) the send goes to that URL
    /// (<c>{BaseUrl}/messages</c>) with <paramref name="authorization"/> as <c>D360-API-KEY</c>; the answer is read the same way.
    /// </remarks>
    public async Task<GraphAnswer> SendAsync(OutboundMessage message, string authorization, byte[] body, CancellationToken cancellationToken, string? d360Url = null)
    {
        using var request = Request(message.Version, message.PhoneNumberId, authorization, body, d360Url);
        using var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutCts.CancelAfter(timeout);
        try
        {
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, timeoutCts.Token).ConfigureAwait(false);
            var bytes = await response.Content.ReadAsByteArrayAsync(timeoutCts.Token).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            var retryAfter = response.Headers.RetryAfter?.Delta;
            var (wamid, code, detail) = Read(bytes);
            var cls = MetaErrors.Classify(status, code);
            if (cls == MetaErrorClass.None && wamid is null)
            {
                cls = MetaErrorClass.Transient;
                detail = $"HTTP {status} without messages[0].id";
            }
            return new GraphAnswer(status, bytes, response.Content.Headers.ContentType?.ToString(), wamid, code, detail ?? $"HTTP {status}", cls, retryAfter);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new GraphAnswer(0, [], null, null, 0, $"no answer within Outbound:Timeout ({timeout.TotalSeconds:0.#} s)", MetaErrorClass.Transient, null);
        }
        catch (HttpRequestException ex)
        {
            return new GraphAnswer(0, [], null, null, 0, ex.Message, MetaErrorClass.Transient, null);
        }
    }

    /// <summary>
    /// Posts <paramref name="body"/> to <c>{version}/{phone_number_id}/messages</c> as it is and returns Meta's answer
    /// as Meta gave it (status, bytes, content type); null when Meta did not answer (timeout, connection error).
    /// </summary>
    public async Task<(int Status, byte[] Body, string? ContentType)?> ForwardAsync(string version, string phoneNumberId, string authorization, byte[] body, CancellationToken cancellationToken, string? d360Url = null)
    {
        using var request = Request(version, phoneNumberId, authorization, body, d360Url);
        using var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutCts.CancelAfter(timeout);
        try
        {
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, timeoutCts.Token).ConfigureAwait(false);
            var bytes = await response.Content.ReadAsByteArrayAsync(timeoutCts.Token).ConfigureAwait(false);
            return ((int)response.StatusCode, bytes, response.Content.Headers.ContentType?.ToString());
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return null;
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    /// <summary>
    /// A POST of <paramref name="body"/> (JSON) to <c>{version}/{phone_number_id}/messages</c> under
    /// <paramref name="authorization"/>; or, for 360dialog, to <paramref name="d360Url"/> with it as <c>D360-API-KEY</c>.
    /// </summary>
    private HttpRequestMessage Request(string version, string phoneNumberId, string authorization, byte[] body, string? d360Url)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, d360Url ?? $"{_base}/{version}/{phoneNumberId}/messages") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.TryAddWithoutValidation(d360Url is null ? "Authorization" : "D360-API-KEY", authorization);
        return request;
    }

    /// <summary><c>messages[0].id</c> of a success, or <c>error.code</c> and its message and details.</summary>
    internal static (string? Wamid, int Code, string? Detail) Read(byte[] body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                return (null, 0, null);
            if (root.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object)
            {
                var code = error.TryGetProperty("code", out var c) && c.TryGetInt32(out var n) ? n : 0;
                var text = error.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
                if (error.TryGetProperty("error_data", out var data) && data.ValueKind == JsonValueKind.Object
                    && data.TryGetProperty("details", out var d) && d.ValueKind == JsonValueKind.String)
                    text = text is null ? d.GetString() : $"{text}: {d.GetString()}";
                return (null, code, text);
            }
            if (root.TryGetProperty("messages", out var messages) && messages.ValueKind == JsonValueKind.Array && messages.GetArrayLength() > 0
                && messages[0].TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String)
                return (id.GetString(), 0, null);
        }
        catch (JsonException)
        {
        }
        return (null, 0, null);
    }
}
