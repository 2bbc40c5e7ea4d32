using System.Net;
using System.Text;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Dispatch;

/// <summary>
/// FastIngest in front of a real bot built on whatsapp-api-js, as a new user would put it: the library's own
/// signature check accepts every forward (raw UTF-8 emoji payloads included), and the changes its stock handler
/// answers 500 (anything without value.metadata) are poison for themselves only.
/// </summary>
public sealed class WhatsAppApiJsBotTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static IEnumerable<(string Name, byte[] Body)> RawUtf8Payloads()
    {
        yield return ("unicode-and-unknown.json", File.ReadAllBytes(Path.Combine(RepoPaths.Fixtures, "unicode-and-unknown.json")));
        if (RepoPaths.Corpus is null)
            yield break;
        foreach (var file in Directory.GetFiles(RepoPaths.Corpus, "*.json").Order(StringComparer.Ordinal))
        {
            var body = File.ReadAllBytes(file);
            if (!Ascii.IsValid(body))
                yield return (Path.GetFileName(file), body);
        }
    }

    [Fact]
    public async Task Its_signature_check_accepts_forwards_of_raw_UTF8_payloads_and_a_change_it_refuses_blocks_nothing()
    {
        using var bot = await WhatsAppApiJsBot.StartAsync("forward-secret");
        await using var server = await IngestServer.StartAsync(_dir.Path, [new TestTenant("t1", ForwardUrl: bot.Url, Concurrency: 4)],
            new Dictionary<string, string?> { ["FastIngest:Tenants:0:Forward:MaxAttempts"] = "4" });

        // A change without value.metadata first: whatsapp-api-js's handler throws on it, 500, every time.
        var accountUpdate = Encoding.UTF8.GetBytes("""{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","time":1743451903,"changes":[{"value":{"event":"ACCOUNT_VIOLATION","violation_info":{"violation_type":"ADULT"}},"field":"account_update"}]}]}""");
        using (var r = await server.PostAsync("t1", accountUpdate, "app-secret"))
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);

        var expected = new List<string>();
        foreach (var (name, body) in RawUtf8Payloads())
        {
            using var r = await server.PostAsync("t1", body, "app-secret");
            Assert.True(r.StatusCode == HttpStatusCode.OK, name);
        }
        for (var i = 0; i < 20; i++)
        {
            using var r = await server.PostAsync("t1", Payloads.Text($"wamid.WAJS{i:D2}", from: $"1650555{i:D4}", text: $"olá {i} 👋"), "app-secret");
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            expected.Add($"msg:wamid.WAJS{i:D2}");
        }

        await bot.WaitUntilAsync(a => expected.All(id => a.Any(x => x.EventId == id && x.Status == 200)), "every customer message accepted by whatsapp-api-js");
        // Nothing forwarded was refused for its signature: escapeUnicode(body) is the body.
        Assert.DoesNotContain(bot.Answers, a => a.Status == 401);
        await bot.WaitUntilAsync(a => a.Count(x => x.EventId!.StartsWith("change:account_update:", StringComparison.Ordinal)) >= 4, "the refused change tried MaxAttempts times");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (server.Engine.DeadLetters.Count < 1)
        {
            Assert.True(DateTime.UtcNow < deadline, "the refused change never reached the dead-letter queue");
            await Task.Delay(20);
        }
        Assert.Equal(1, server.Engine.DeadLetters.Count);
        Assert.Equal(0, server.Engine.DispatchStats()[0].CircuitOpened);
    }
}
