using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using FastIngest.Ingest;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Ingest;

/// <summary>
/// Hostile requests against the running server, all at once and alongside legitimate traffic: each gets its defined
/// status, nothing crashes, nothing hostile reaches the bot, and every legitimate event arrives exactly once.
/// </summary>
public sealed class HostileInputTests : IAsyncLifetime
{
    private const string Secret = "app-secret";
    private const string OtherSecret = "other-tenant-secret";
    private const int MaxBody = 256 * 1024; // IngestServer's MaxBodyBytes
    private const int Legit = 300;
    private readonly TempDir _dir = new();
    private BotServer _bot = null!;
    private IngestServer _server = null!;

    public async Task InitializeAsync()
    {
        _bot = await BotServer.StartAsync();
        _server = await IngestServer.StartAsync(_dir.Path,
            [new TestTenant("t1", Secret, ForwardUrl: _bot.Url), new TestTenant("t2", OtherSecret)]);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _bot.DisposeAsync();
        _dir.Dispose();
    }

    /// <summary>What a hostile request must get: its status (0: connection closed without an answer), and whether the (authentic) payload is kept in quarantine.</summary>
    private sealed record Case(string Name, Func<Task<int>> Send, int Status, bool Quarantined = false);

    private Uri Base => _server.Client.BaseAddress!;

    private async Task<int> Post(byte[]? body, string? signature, string? contentType = "application/json", string path = "/webhooks/t1", HttpMethod? method = null)
    {
        using var request = new HttpRequestMessage(method ?? HttpMethod.Post, path) { Content = body is null ? null : new ByteArrayContent(body) };
        if (contentType is not null && request.Content is not null)
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if (signature is not null)
            request.Headers.TryAddWithoutValidation(WebhookSignature.HeaderName, signature);
        // Each hostile request on its own connection, as a hostile peer would send it: what the server does to one
        // connection (answering before the body is read, closing after a 413) must not decide another case's result.
        using var client = new HttpClient { BaseAddress = Base };
        using var response = await client.SendAsync(request);
        return (int)response.StatusCode;
    }

    private Task<int> Signed(byte[] body) => Post(body, WebhookSignature.Sign(Secret, body));

    private Task<int> Signed(string body) => Signed(Encoding.UTF8.GetBytes(body));

    private static byte[] Valid(string wamid) => Payloads.Text(wamid);

    private static string Wrap(string value) =>
        $$"""{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{{value}}}]}]}""";

    private Task<int> Raw(string head, Func<NetworkStream, Task>? body = null, TimeSpan? timeout = null)
        => RawHttp.SendAsync(Base, $"{head}\nHost: {Base.Authority}", body, timeout);

    private IEnumerable<Case> Cases()
    {
        var valid = Valid("wamid.HOSTILE");
        var validSignature = WebhookSignature.Sign(Secret, valid);

        // Authentic (signed) but not a payload we can read: 200 so Meta stops retrying, and kept in quarantine.
        yield return new("truncated JSON", () => Signed(valid.AsSpan(0, valid.Length / 2).ToArray()), 200, Quarantined: true);
        yield return new("invalid JSON", () => Signed("""{"object":"whatsapp_business_account","entry":[}"""), 200, Quarantined: true);
        yield return new("JSON that is not an object", () => Signed("[1,2,3]"), 200, Quarantined: true);
        yield return new("empty body", () => Signed(""), 200, Quarantined: true);
        yield return new("invalid UTF-8 in a string", () => Signed([.. Encoding.UTF8.GetBytes(Wrap("""{"messages":[{"id":"wamid.X","from":"1","type":"text","text":{"body":" """)), 0xC3, 0x28, 0xFF, .. Encoding.UTF8.GetBytes("\"}}]}")]), 200, Quarantined: true);
        yield return new("nesting 10,000 deep", () => Signed(Wrap(new string('[', 10_000) + new string(']', 10_000))), 200, Quarantined: true);
        // Well-formed, with a field FastIngest does not interpret: recorded and forwarded as Meta sent it.
        yield return new("a 200 KB number", () => Signed(Wrap("""{"messages":[{"id":"wamid.BIGNUM","from":"1","type":"text","timestamp":""" + new string('9', 200_000) + "}]}")), 200);
        yield return new("a 200 KB string", () => Signed(Wrap("""{"messages":[{"id":"wamid.BIGSTR","from":"1","type":"text","text":{"body":" """ + new string('x', 200_000) + "\"}}]}")), 200);

        // Over the size limit: declared, or streamed chunked without a length.
        // The server answers from the declared length without reading the body (and closes): sent as a raw request whose
        // body never follows, since an HTTP client still uploading would see the close as a broken pipe before the 413.
        yield return new("body far over the limit (Content-Length)", () => Raw(
            $"POST /webhooks/t1 HTTP/1.1\nContent-Type: application/json\nContent-Length: {MaxBody * 8}\n{WebhookSignature.HeaderName}: {validSignature}"), 413);
        yield return new("body over the limit, chunked", () => Raw(
            $"POST /webhooks/t1 HTTP/1.1\nContent-Type: application/json\nTransfer-Encoding: chunked\n{WebhookSignature.HeaderName}: {validSignature}",
            async s =>
            {
                var chunk = new byte[64 * 1024];
                for (var i = 0; i < 8; i++)
                {
                    await s.WriteAsync(Encoding.ASCII.GetBytes($"{chunk.Length:X}\r\n"));
                    await s.WriteAsync(chunk);
                    await s.WriteAsync("\r\n"u8.ToArray());
                }
                await s.WriteAsync("0\r\n\r\n"u8.ToArray());
            }), 413);
        // The client hangs up mid-body: Kestrel drops the connection (there is no one to answer); nothing is recorded.
        yield return new("body shorter than its Content-Length, then hang up", () => Raw(
            $"POST /webhooks/t1 HTTP/1.1\nContent-Type: application/json\nContent-Length: {valid.Length + 100}\n{WebhookSignature.HeaderName}: {validSignature}",
            async s =>
            {
                await s.WriteAsync(valid);
                s.Socket.Shutdown(SocketShutdown.Send);
            }), 0);
        // Kestrel's minimum body data rate (240 bytes/s after a 5 s grace) cuts a slow drip: 408, nothing recorded.
        yield return new("slow-drip body", () => Raw(
            $"POST /webhooks/t1 HTTP/1.1\nContent-Type: application/json\nContent-Length: {valid.Length}\n{WebhookSignature.HeaderName}: {validSignature}",
            async s =>
            {
                for (var i = 0; i < valid.Length; i++)
                {
                    await s.WriteAsync(valid.AsMemory(i, 1));
                    await Task.Delay(100);
                }
            }, TimeSpan.FromSeconds(40)), 408);

        // Signatures.
        yield return new("missing signature", () => Post(valid, null), 401);
        yield return new("wrong signature", () => Post(valid, WebhookSignature.Sign(Secret, Valid("wamid.OTHER"))), 401);
        yield return new("signature of another tenant's secret", () => Post(valid, WebhookSignature.Sign(OtherSecret, valid)), 401);
        yield return new("malformed signature: not hex", () => Post(valid, "sha256=" + new string('z', 64)), 401);
        yield return new("malformed signature: short", () => Post(valid, "sha256=abcdef"), 401);
        yield return new("malformed signature: other algorithm", () => Post(valid, "sha1=" + new string('a', 40)), 401);
        yield return new("malformed signature: no prefix", () => Post(valid, validSignature["sha256=".Length..]), 401);
        yield return new("duplicated signature header", () => Raw(
            $"POST /webhooks/t1 HTTP/1.1\nContent-Type: application/json\nContent-Length: {valid.Length}\n{WebhookSignature.HeaderName}: {validSignature}\n{WebhookSignature.HeaderName}: {validSignature}",
            s => s.WriteAsync(valid).AsTask()), 401);
        yield return new("a 64 KB header", () => Post(valid, validSignature + new string('a', 64 * 1024)), 431);

        // Content types, methods, paths.
        yield return new("content type text/plain", () => Post(valid, validSignature, "text/plain"), 415);
        yield return new("content type form", () => Post(valid, validSignature, "application/x-www-form-urlencoded"), 415);
        yield return new("PUT", () => Post(valid, validSignature, method: HttpMethod.Put), 405);
        yield return new("DELETE", () => Post(valid, validSignature, method: HttpMethod.Delete), 405);
        yield return new("PATCH", () => Post(valid, validSignature, method: HttpMethod.Patch), 405);
        yield return new("unknown tenant", () => Post(valid, validSignature, path: "/webhooks/nobody"), 404);
        yield return new("tenant path with extra segments", () => Post(valid, validSignature, path: "/webhooks/t1/x"), 404);
        yield return new("no tenant", () => Post(valid, validSignature, path: "/webhooks/"), 404);
        yield return new("handshake with a wrong verify token", () => Post(null, null, method: HttpMethod.Get, path: "/webhooks/t1?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"), 403);
        yield return new("handshake without a challenge", () => Post(null, null, method: HttpMethod.Get, path: "/webhooks/t1?hub.mode=subscribe&hub.verify_token=verify-me"), 400);
        yield return new("garbage request line", () => Raw("\u0001\u0002 NOT HTTP"), 400);
    }

    [Fact]
    public async Task Each_hostile_request_gets_its_status_while_legitimate_traffic_all_arrives()
    {
        var quarantinedBefore = _server.Engine.Pipeline.QuarantinedCount;
        var cases = Cases().ToList();

        // Legitimate traffic runs for as long as the hostile cases do (the slow drip takes ~5 s).
        var legit = Task.Run(async () =>
        {
            for (var i = 0; i < Legit; i++)
            {
                using var response = await _server.PostAsync("t1", Payloads.Text($"wamid.LEGIT{i:D4}", from: $"1650555{i % 50:D4}"), Secret);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                await Task.Delay(15);
            }
        });
        var results = await Task.WhenAll(cases.Select(async c =>
        {
            try
            {
                return (c, Got: await c.Send(), Error: (string?)null);
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or SocketException or OperationCanceledException)
            {
                return (c, Got: -1, Error: ex.ToString());
            }
        }));
        await legit;

        var wrong = results.Where(r => r.Got != r.c.Status).Select(r => $"{r.c.Name}: expected {r.c.Status}, got {r.Got} {r.Error}").ToList();
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));

        // Still up and ready; the authentic-but-unreadable payloads were kept, nothing else was.
        Assert.Equal("ok\n", await _server.Client.GetStringAsync("/healthz"));
        Assert.Equal(cases.Count(c => c.Quarantined), _server.Engine.Pipeline.QuarantinedCount - quarantinedBefore);

        // Every legitimate event arrives once; of the hostile ones only the two well-formed giants do.
        await _bot.WaitForDeliveredAsync(Legit + 2);
        await Task.Delay(300);
        var ids = _bot.Delivered.Select(r => r.EventId).ToList();
        Assert.Equal(Legit + 2, ids.Count);
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.Contains("msg:wamid.BIGSTR", ids);
        Assert.Contains("msg:wamid.BIGNUM", ids);
        Assert.All(Enumerable.Range(0, Legit), i => Assert.Contains($"msg:wamid.LEGIT{i:D4}", ids));
    }
}
