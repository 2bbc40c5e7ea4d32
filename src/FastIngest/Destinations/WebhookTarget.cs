using System.Net.Http.Headers;
using FastIngest.Ingest;

using FastIngest.Dispatch;

namespace FastIngest.Destinations;

/// <summary>
/// POSTs each event to the tenant's bot as a Meta-shaped webhook with <c>Content-Type: application/json</c>,
/// <c>X-Hub-Signature-256</c> under the tenant's forward secret, <c>X-FastIngest-Signature-Key</c> naming that key
/// (<see cref="ForwardSigning.KeyId"/>) and <c>X-FastIngest-Event-Id</c>. Any 2xx is
/// delivered. Failure classes: 5xx, 408, 425, 429, timeouts and connection failures are retried (429 and 503 after
/// their <c>Retry-After</c>, seconds or an HTTP date, up to an hour, instead of the backoff); any other 4xx is permanent (the event goes to the dead-letter
/// queue); a redirect is not followed and is retried, since a bot's webhook URL that moves is a configuration error.
/// </summary>
internal sealed class WebhookTarget(HttpClient client, Uri url, TimeSpan timeout, TimeProvider? time = null) : IForwardTarget
{
    /// <summary>The header carrying the event id (see <see cref="EventIdentity"/>).</summary>
    public const string EventIdHeader = "X-FastIngest-Event-Id";

    /// <summary>Set (to <c>true</c>) on a status that is behind the message's known delivery state.</summary>
    public const string StaleHeader = "X-FastIngest-Stale";

    private static readonly MediaTypeHeaderValue s_json = new("application/json");

    public string Describe => url.ToString();

    public ValueTask<ForwardResult> SendAsync(ForwardItem item, CancellationToken cancellationToken)
        => PostAsync(url, item, cancellationToken);

    /// <summary>One attempt of <paramref name="item"/> to <paramref name="to"/> (a route of this target's, e.g. Chatwoot's per-number one).</summary>
    internal async ValueTask<ForwardResult> PostAsync(Uri to, ForwardItem item, CancellationToken cancellationToken)
    {
        using var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutCts.CancelAfter(timeout);
        using var request = new HttpRequestMessage(HttpMethod.Post, to)
        {
            Content = new ReadOnlyMemoryContent(item.Payload),
        };
        request.Content.Headers.ContentType = s_json;
        request.Headers.TryAddWithoutValidation(WebhookSignature.HeaderName, item.Signature);
        if (item.Signing is { } signing)
            request.Headers.TryAddWithoutValidation(ForwardSigning.KeyIdHeader, signing.KeyId);
        request.Headers.TryAddWithoutValidation(EventIdHeader, item.EventId);
        if (item.Stale)
            request.Headers.TryAddWithoutValidation(StaleHeader, "true");
        try
        {
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeoutCts.Token).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
                return ForwardResult.Ok;
            var status = (int)response.StatusCode;
            var retryAfter = response.Headers.RetryAfter is { } ra
                ? ra.Delta ?? (ra.Date is { } date ? date - (time ?? TimeProvider.System).GetUtcNow() : null)
                : null;
            if (retryAfter is { } r && (r <= TimeSpan.Zero || r > CircuitBreaker.MaxRetryAfter))
                retryAfter = r <= TimeSpan.Zero ? null : CircuitBreaker.MaxRetryAfter;
            var permanent = status is >= 400 and < 500 and not 408 and not 425 and not 429;
            return new ForwardResult(false, $"HTTP {status}", retryAfter, permanent, Throttled: status == 429);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new ForwardResult(false, $"timed out after {timeout.TotalMilliseconds:0} ms");
        }
        catch (HttpRequestException ex)
        {
            return new ForwardResult(false, ex.HttpRequestError.ToString(),
                ConnectionFailed: ex.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError);
        }
    }

    public void Dispose()
    {
        // The HttpClient is shared by all tenants and owned by the engine.
    }
}
