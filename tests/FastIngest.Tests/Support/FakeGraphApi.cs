using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace FastIngest.Tests.Support;

/// <summary>One send that reached the fake Graph API.</summary>
/// <param name="ArrivedUtc">When it arrived.</param>
/// <param name="Version">The Graph API version of the path.</param>
/// <param name="PhoneNumberId">The path's phone number id.</param>
/// <param name="Authorization">The Authorization header.</param>
/// <param name="To">The body's <c>to</c>.</param>
/// <param name="Body">The body as it came.</param>
/// <param name="Status">The HTTP status answered.</param>
/// <param name="Code">The error code answered, 0 for success.</param>
/// <param name="Wamid">The wamid given on success, else null.</param>
internal sealed record GraphSend(DateTime ArrivedUtc, string Version, string PhoneNumberId, string? Authorization, string To, byte[] Body, int Status, int Code, string? Wamid)
{
    public string Text => Encoding.UTF8.GetString(Body);
}

/// <summary>
/// A real HTTP server on loopback answering like Meta's Cloud API <c>POST /{version}/{phone_number_id}/messages</c>:
/// a wamid on success; Meta's documented error bodies (<c>error.code</c>, <c>error.message</c>, <c>error_data.details</c>)
/// for scripted failures; 130429 when a phone number goes over its throughput limit (a sliding 1 s window); 190 for a
/// wrong or expired token. It can post signed status webhooks (sent, delivered, read; in any order, repeated) for the
/// wamids it gave back to FastIngest's webhook, as Meta does.
/// </summary>
internal sealed class FakeGraphApi : IAsyncDisposable
{
    private readonly ConcurrentQueue<GraphSend> _sends = new();
    private readonly ConcurrentDictionary<string, ConcurrentQueue<(int Status, int Code, string Message)>> _scripted = new();
    private readonly ConcurrentDictionary<string, double> _limits = new();
    private readonly ConcurrentDictionary<string, Queue<DateTime>> _windows = new();
    private readonly SemaphoreSlim _arrived = new(0);
    private WebApplication? _app;
    private int _wamids;

    /// <summary>The token each request must carry (<c>Bearer</c> + this); null takes any.</summary>
    public string? Token { get; set; }

    /// <summary>How long to hold each request before answering.</summary>
    public TimeSpan Latency { get; set; }

    public string Url { get; private set; } = "";

    /// <summary>Every send so far, in arrival order.</summary>
    public IReadOnlyList<GraphSend> Sends => [.. _sends];

    /// <summary>Sends answered with a wamid.</summary>
    public IReadOnlyList<GraphSend> Accepted => [.. _sends.Where(s => s.Wamid is not null)];

    public static async Task<FakeGraphApi> StartAsync()
    {
        var fake = new FakeGraphApi();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.MapPost("/{version}/{phone}/messages", fake.HandleAsync);
        await app.StartAsync();
        fake._app = app;
        fake.Url = app.Urls.First();
        return fake;
    }

    private readonly System.Collections.Concurrent.ConcurrentQueue<(string Phone, string? Authorization, byte[] Body)> _reads = new();

    /// <summary>Read receipts (mark as read, typing indicator) received, in order.</summary>
    public IReadOnlyList<(string Phone, string? Authorization, byte[] Body)> Reads => [.. _reads];

    /// <summary>Meta's throughput limit of <paramref name="phoneNumberId"/>: more than this many accepted within any 1 s gets 130429.</summary>
    public void Limit(string phoneNumberId, double perSecond) => _limits[phoneNumberId] = perSecond;

    /// <summary>The next <paramref name="times"/> sends to <paramref name="to"/> get this error (HTTP status and Meta code).</summary>
    public void Fail(string to, int status, int code, string message, int times = 1)
    {
        var queue = _scripted.GetOrAdd(to, _ => new());
        for (var i = 0; i < times; i++)
            queue.Enqueue((status, code, message));
    }

    /// <summary>Waits until <paramref name="count"/> sends have been answered with a wamid.</summary>
    public async Task WaitForAcceptedAsync(int count, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        while (Accepted.Count < count)
        {
            try
            {
                await _arrived.WaitAsync(TimeSpan.FromMilliseconds(100), cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"{Accepted.Count} of {count} sends accepted ({Sends.Count} arrived)");
            }
        }
    }

    private async Task HandleAsync(HttpContext context)
    {
        var version = (string)context.Request.RouteValues["version"]!;
        var phone = (string)context.Request.RouteValues["phone"]!;
        using var ms = new MemoryStream();
        await context.Request.Body.CopyToAsync(ms);
        var body = ms.ToArray();
        var auth = context.Request.Headers.Authorization.ToString();
        if (Latency > TimeSpan.Zero)
            await Task.Delay(Latency);
        string to;
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.TryGetProperty("status", out var status) && status.GetString() == "read")
            {
                // Mark as read (and the typing indicator): Meta answers {"success":true} (its "Typing indicators" doc).
                if (Token is not null && auth != "Bearer " + Token)
                {
                    await Answer(context, version, phone, auth, "", body, 401, 190, "Error validating access token: Session has expired");
                    return;
                }
                _reads.Enqueue((phone, auth, body));
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync("""{"success":true}""");
                return;
            }
            to = doc.RootElement.GetProperty("to").GetString() ?? "";
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            await Answer(context, version, phone, auth, "", body, 400, 100, "(#100) Invalid parameter");
            return;
        }
        if (Token is not null && auth != "Bearer " + Token)
        {
            await Answer(context, version, phone, auth, to, body, 401, 190, "Error validating access token: Session has expired");
            return;
        }
        if (_scripted.TryGetValue(to, out var script) && script.TryDequeue(out var failure))
        {
            await Answer(context, version, phone, auth, to, body, failure.Status, failure.Code, failure.Message);
            return;
        }
        if (_limits.TryGetValue(phone, out var limit))
        {
            var window = _windows.GetOrAdd(phone, _ => new Queue<DateTime>());
            bool throttled;
            lock (window)
            {
                var now = DateTime.UtcNow;
                while (window.Count > 0 && now - window.Peek() > TimeSpan.FromSeconds(1))
                    window.Dequeue();
                throttled = window.Count >= limit;
                if (!throttled)
                    window.Enqueue(now);
            }
            if (throttled)
            {
                await Answer(context, version, phone, auth, to, body, 400, 130429, "(#130429) Rate limit hit");
                return;
            }
        }
        var wamid = $"wamid.FAKE{Interlocked.Increment(ref _wamids):D6}";
        _sends.Enqueue(new GraphSend(DateTime.UtcNow, version, phone, auth, to, body, 200, 0, wamid));
        _arrived.Release();
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync($$"""{"messaging_product":"whatsapp","contacts":[{"input":"{{to}}","wa_id":"{{to}}"}],"messages":[{"id":"{{wamid}}"}]}""");
    }

    private async Task Answer(HttpContext context, string version, string phone, string? auth, string to, byte[] body, int status, int code, string message)
    {
        _sends.Enqueue(new GraphSend(DateTime.UtcNow, version, phone, auth, to, body, status, code, null));
        _arrived.Release();
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync($$$"""{"error":{"message":"{{{message}}}","type":"OAuthException","code":{{{code}}},"error_data":{"messaging_product":"whatsapp","details":"{{{message}}} (fake Graph API)"},"fbtrace_id":"AbCdEf"}}""");
    }

    /// <summary>
    /// Posts one signed status webhook per entry of <paramref name="statuses"/> (in that order, repeats included) to
    /// <paramref name="webhook"/> for <paramref name="wamid"/>, as Meta does after a send; each must get 200.
    /// </summary>
    public static async Task PostStatusesAsync(HttpClient webhook, string tenant, string appSecret, string wamid, string recipient, params (string Status, long Timestamp)[] statuses)
    {
        foreach (var (status, ts) in statuses)
        {
            using var response = await webhook.SendAsync(Payloads.Webhook(tenant, Payloads.Status(wamid, status, ts, recipient), appSecret));
            if (!response.IsSuccessStatusCode)
                throw new InvalidOperationException($"status webhook {status} got {(int)response.StatusCode}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        _arrived.Dispose();
    }
}
