using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace FastIngest.Tests.Support;

/// <summary>A received forward: body bytes and the headers FastIngest sets.</summary>
internal sealed record BotRequest(byte[] Body, string? Signature, string? EventId, string? ContentType, int AnsweredStatus, DateTime ArrivedUtc = default, bool Stale = false, string Path = "", string? SignatureKey = null);

/// <summary>
/// A real HTTP server on loopback playing a tenant's bot: records every request and answers with whatever
/// <see cref="Respond"/> says (200 by default).
/// </summary>
internal sealed class BotServer : IAsyncDisposable
{
    private readonly ConcurrentQueue<BotRequest> _requests = new();
    private readonly SemaphoreSlim _arrived = new(0);
    private WebApplication? _app;
    private int _port;

    /// <summary>Decides the status for each request (called with the request's event id); default 200.</summary>
    public Func<string?, int> Respond { get; set; } = _ => 200;

    /// <summary>When set, decides the status instead of <see cref="Respond"/>, from the event id and the <c>X-FastIngest-Signature-Key</c>.</summary>
    public Func<string?, string?, int>? RespondByKey { get; set; }

    /// <summary>How long to hold each request before answering (called with the request's event id); default none.</summary>
    public Func<string?, TimeSpan> Delay { get; set; } = _ => TimeSpan.Zero;

    /// <summary>A <c>Retry-After</c> value sent with every non-2xx answer, or null for none.</summary>
    public string? RetryAfter { get; set; }

    /// <summary>Every request so far, in arrival order.</summary>
    public IReadOnlyList<BotRequest> Requests => [.. _requests];

    /// <summary>Requests answered with 2xx: what the bot actually took.</summary>
    public IReadOnlyList<BotRequest> Delivered => [.. _requests.Where(r => r.AnsweredStatus is >= 200 and < 300)];

    public string Url { get; private set; } = "";

    public static async Task<BotServer> StartAsync()
    {
        var bot = new BotServer();
        await bot.ListenAsync();
        bot.Url = bot._app!.Urls.First() + "/bot";
        bot._port = new Uri(bot.Url).Port;
        return bot;
    }

    private async Task ListenAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{_port}");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.Run(HandleAsync);
        await app.StartAsync();
        _app = app;
    }

    /// <summary>Stops listening: connections to <see cref="Url"/> are refused until <see cref="ComeBackAsync"/>.</summary>
    public async Task GoDownAsync()
    {
        if (_app is not { } app)
            return;
        _app = null;
        await app.StopAsync();
        await app.DisposeAsync();
    }

    /// <summary>Listens again on the same port.</summary>
    public Task ComeBackAsync() => _app is null ? ListenAsync() : Task.CompletedTask;

    private async Task HandleAsync(HttpContext context)
    {
        using var ms = new MemoryStream();
        await context.Request.Body.CopyToAsync(ms);
        var eventId = context.Request.Headers["X-FastIngest-Event-Id"].ToString();
        if (Delay(eventId) is { } delay && delay > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(delay, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                // FastIngest gave up on this request: it arrived, but nobody took the answer.
                _requests.Enqueue(new BotRequest(ms.ToArray(), null, eventId, context.Request.ContentType, 499, DateTime.UtcNow));
                return;
            }
        }
        var status = RespondByKey is { } byKey ? byKey(eventId, context.Request.Headers["X-FastIngest-Signature-Key"].ToString()) : Respond(eventId);
        _requests.Enqueue(new BotRequest(ms.ToArray(), context.Request.Headers["X-Hub-Signature-256"].ToString(), eventId, context.Request.ContentType, status, DateTime.UtcNow,
            context.Request.Headers["X-FastIngest-Stale"] == "true", context.Request.Path.ToString(),
            context.Request.Headers.TryGetValue("X-FastIngest-Signature-Key", out var key) ? key.ToString() : null));
        context.Response.StatusCode = status;
        if (status is < 200 or >= 300 && RetryAfter is { } retryAfter)
            context.Response.Headers.RetryAfter = retryAfter;
        _arrived.Release();
    }

    /// <summary>Waits until at least <paramref name="count"/> requests were answered 2xx (or fails after <paramref name="timeout"/>).</summary>
    public async Task<IReadOnlyList<BotRequest>> WaitForDeliveredAsync(int count, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (Delivered.Count < count)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
                throw new TimeoutException($"bot got {Delivered.Count} of {count} deliveries; requests: {Requests.Count}");
            await _arrived.WaitAsync(left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200));
        }
        return Delivered;
    }

    /// <summary>
    /// Waits until <paramref name="count"/> distinct event ids were answered 2xx (or fails after <paramref name="timeout"/>):
    /// for tests whose point is that everything arrives, where a delivery that timed out under load and was sent
    /// again (at-least-once, same event id) must not end the wait early.
    /// </summary>
    public async Task<IReadOnlyList<BotRequest>> WaitForDistinctAsync(int count, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (Delivered.Select(r => r.EventId).Distinct().Count() < count)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
                throw new TimeoutException($"bot got {Delivered.Select(r => r.EventId).Distinct().Count()} of {count} distinct events; requests: {Requests.Count}");
            await _arrived.WaitAsync(left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200));
        }
        return Delivered;
    }

    /// <summary>
    /// Waits until the event <paramref name="eventId"/> was answered 2xx (or fails after <paramref name="timeout"/>).
    /// As a sentinel: sent after an event that must not arrive, from the same customer (so it travels behind it),
    /// its arrival proves that the other one would have arrived by now.
    /// </summary>
    public async Task WaitForEventAsync(string eventId, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (!Delivered.Any(r => r.EventId == eventId))
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
                throw new TimeoutException($"{eventId} was not delivered; got {string.Join(", ", Delivered.Select(r => r.EventId))}");
            await _arrived.WaitAsync(left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await GoDownAsync();
        _arrived.Dispose();
    }
}
