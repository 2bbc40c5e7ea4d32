using System.Net;
using System.Text;
using FastIngest.Ingest;
using FastIngest.Tests.Dispatch;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Ingest;

/// <summary>
/// Payloads with raw UTF-8 (emoji, accents): Meta signs "an escaped unicode version of the payload", some senders
/// sign the raw bytes; both are accepted. What the bot then gets is ASCII-only, so a verifier over the raw bytes and
/// whatsapp-api-js's verifier over escapeUnicode(body) both accept it. Real server, real bot.
/// </summary>
public sealed class EscapedSignatureTests : BotTest
{

    /// <summary>The project's own raw-UTF-8 fixture, and the corpus's, when the corpus is there.</summary>
    private static IEnumerable<byte[]> RawUtf8Payloads()
    {
        yield return File.ReadAllBytes(Path.Combine(RepoPaths.Fixtures, "unicode-and-unknown.json"));
        if (RepoPaths.Corpus is null)
            yield break;
        foreach (var file in Directory.GetFiles(RepoPaths.Corpus, "*.json").Order(StringComparer.Ordinal))
        {
            var body = File.ReadAllBytes(file);
            if (!Ascii.IsValid(body))
                yield return body;
        }
    }

    private static string SignEscaped(string secret, byte[] body)
        => WebhookSignature.Sign(secret, Encoding.UTF8.GetBytes(ForwardPayloadWriterTests.JsEscapeUnicode(Encoding.UTF8.GetString(body))));

    [Fact]
    public async Task Both_signature_forms_are_accepted_and_every_forward_passes_both_verifiers()
    {
        await using var server = await IngestServer.StartAsync(Dir.Path, [new TestTenant("t1", ForwardUrl: Bot.Url)]);
        var payloads = RawUtf8Payloads().ToList();
        Assert.True(payloads.Count >= 1);
        var expected = 0;
        foreach (var body in payloads)
        {
            Assert.False(Ascii.IsValid(body));
            using (var escaped = await server.PostAsync("t1", body, secret: null, rawSignature: SignEscaped("app-secret", body)))
                Assert.Equal(HttpStatusCode.OK, escaped.StatusCode);
            using (var raw = await server.PostAsync("t1", body, "app-secret"))
                Assert.Equal(HttpStatusCode.OK, raw.StatusCode); // the same events again: deduped
            using (var forged = await server.PostAsync("t1", body, secret: null, rawSignature: SignEscaped("wrong-secret", body)))
                Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
            using var events = new FastIngest.Parsing.EventBuffer();
            FastIngest.Parsing.WebhookParser.Parse(body, events);
            expected += events.Count;
        }

        var delivered = await Bot.WaitForDeliveredAsync(expected);
        Assert.Equal(expected, delivered.Count);
        foreach (var request in delivered)
        {
            Assert.True(Ascii.IsValid(request.Body), Encoding.UTF8.GetString(request.Body));
            Assert.Equal(request.Signature, WebhookSignature.Sign("forward-secret", request.Body));
            Assert.Equal(request.Signature, SignEscaped("forward-secret", request.Body));
        }
        // The emoji survived as an escape: the JSON value is Meta's.
        Assert.Contains(delivered, r => Encoding.ASCII.GetString(r.Body).Contains("\\u", StringComparison.Ordinal));
    }
}
