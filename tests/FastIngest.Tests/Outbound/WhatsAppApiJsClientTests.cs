using System.Diagnostics;
using System.Net;
using System.Text.Json;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Outbound;

/// <summary>
/// A bot written against Meta with the npm library whatsapp-api-js 6.3.0, unchanged but for its fetch pointing at
/// FastIngest (<c>Bots/wajs-sender.mjs</c>, run with Node): its own sendMessage (text, template, a reply with
/// <c>context</c>) and markAsRead (with and without the typing indicator) calls go through FastIngest to a fake Graph
/// API, and it gets back what Meta answered, wamids included. <c>scripts/install-test-deps.sh</c> installs the package.
/// </summary>
public sealed class WhatsAppApiJsClientTests : IAsyncLifetime
{
    private const string Customer = "16505550091";
    private readonly TempDir _dir = new();
    private FakeGraphApi _graph = null!;
    private BotServer _bot = null!;
    private IngestServer _server = null!;

    public async Task InitializeAsync()
    {
        _graph = await FakeGraphApi.StartAsync();
        _graph.Token = OutboundTests.MetaToken;
        _bot = await BotServer.StartAsync();
        _server = await IngestServer.StartAsync(_dir.Path, [new TestTenant("t1", OutboundTests.Secret, ForwardUrl: _bot.Url)], new Dictionary<string, string?>
        {
            ["FastIngest:Outbound:GraphUrl"] = _graph.Url,
            ["FastIngest:Tenants:0:Outbound:PhoneNumberIds:0"] = OutboundTests.Phone,
            ["FastIngest:Tenants:0:Outbound:AccessToken"] = OutboundTests.MetaToken,
            ["FastIngest:Tenants:0:Outbound:BotToken"] = OutboundTests.BotToken,
            // A bot written against Meta reads the wamid from the send's answer: wait for Meta's.
            ["FastIngest:Tenants:0:Outbound:DefaultWait"] = "00:00:10",
        });
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _bot.DisposeAsync();
        await _graph.DisposeAsync();
        _dir.Dispose();
    }

    [Fact]
    public async Task Its_sends_replies_and_read_receipts_go_through_FastIngest_and_it_gets_Metas_answers()
    {
        using (var inbound = await _server.PostAsync("t1", Payloads.InboundAt("wamid.WAJSIN", Customer), OutboundTests.Secret))
            Assert.Equal(HttpStatusCode.OK, inbound.StatusCode);
        await _bot.WaitForEventAsync("msg:wamid.WAJSIN"); // the customer wrote: the 24-hour window is open

        var results = await RunSenderAsync(OutboundTests.BotToken);

        // Meta's answers as whatsapp-api-js reads them: its wamids (not FastIngest's fo- ids), and {"success":true}.
        var accepted = _graph.Accepted.Select(s => s.Wamid!).ToHashSet();
        foreach (var call in new[] { "text", "template", "reply" })
        {
            var id = results.GetProperty(call).GetProperty("messages")[0].GetProperty("id").GetString()!;
            Assert.Contains(id, accepted);
        }
        Assert.True(results.GetProperty("read").GetProperty("success").GetBoolean());
        Assert.True(results.GetProperty("typing").GetProperty("success").GetBoolean());

        // What reached Meta: the library's bodies byte for byte, under the tenant's token; the reply with its context.
        Assert.Equal(3, _graph.Sends.Count);
        Assert.All(_graph.Sends, s => Assert.Equal("Bearer " + OutboundTests.MetaToken, s.Authorization));
        var reply = JsonDocument.Parse(_graph.Sends.Single(s => s.Text.Contains("Replying", StringComparison.Ordinal)).Body).RootElement;
        Assert.Equal("wamid.WAJSIN", reply.GetProperty("context").GetProperty("message_id").GetString());
        Assert.Equal("template", JsonDocument.Parse(_graph.Sends.Single(s => s.Text.Contains("order_update", StringComparison.Ordinal)).Body).RootElement.GetProperty("type").GetString());
        Assert.Equal(2, _graph.Reads.Count);
        Assert.All(_graph.Reads, r => Assert.Equal("wamid.WAJSIN", JsonDocument.Parse(r.Body).RootElement.GetProperty("message_id").GetString()));
        Assert.Single(_graph.Reads, r => JsonDocument.Parse(r.Body).RootElement.TryGetProperty("typing_indicator", out _));
    }

    [Fact]
    public async Task Without_the_bot_token_its_calls_get_Metas_shape_of_a_token_error()
    {
        var results = await RunSenderAsync("not-the-bot-token-at-all");
        Assert.Equal(190, results.GetProperty("text").GetProperty("error").GetProperty("code").GetInt32());
        Assert.Equal(190, results.GetProperty("read").GetProperty("error").GetProperty("code").GetInt32());
        Assert.Empty(_graph.Sends);
        Assert.Empty(_graph.Reads);
    }

    private async Task<JsonElement> RunSenderAsync(string token)
    {
        var dir = Path.Combine(RepoPaths.Root, "tests", "FastIngest.Tests", "Bots");
        if (!Directory.Exists(Path.Combine(dir, "node_modules", "whatsapp-api-js")))
            throw new InvalidOperationException($"whatsapp-api-js is not installed in {dir}: run scripts/install-test-deps.sh");
        var psi = new ProcessStartInfo("node") { WorkingDirectory = dir, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "wajs-sender.mjs", _server.Client.BaseAddress!.ToString().TrimEnd('/'), OutboundTests.Phone, token, Customer, "wamid.WAJSIN" })
            psi.ArgumentList.Add(arg);
        using var node = Process.Start(psi)!;
        var stdout = node.StandardOutput.ReadToEndAsync();
        var stderr = node.StandardError.ReadToEndAsync();
        await node.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(node.ExitCode == 0, $"node exited {node.ExitCode}: {await stderr}");
        var line = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).Last();
        return JsonDocument.Parse(line).RootElement.Clone();
    }
}
