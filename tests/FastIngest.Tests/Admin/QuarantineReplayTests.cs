using System.Net;
using System.Text;
using System.Text.Json;
using FastIngest.Server;
using FastIngest.Storage;
using FastIngest.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastIngest.Tests.Admin;

/// <summary>
/// Quarantined payloads after an upgrade: an older version quarantined a payload today's parser reads (written here
/// straight into the quarantine log, as that version would have), next to one that is still broken. Replay through
/// the admin API ingests the first (delivered to the bot once) and keeps the second; the command line lists and
/// discards; resolutions survive a restart.
/// </summary>
public sealed class QuarantineReplayTests : IAsyncLifetime
{
    private const string Token = "admin-token-0123456789";
    private readonly TempDir _dir = new();
    private BotServer _bot = null!;

    public async Task InitializeAsync() => _bot = await BotServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _bot.DisposeAsync();
        _dir.Dispose();
    }

    private Task<IngestServer> Start() => IngestServer.StartAsync(_dir.Path, [new TestTenant("t1", ForwardUrl: _bot.Url)],
        new Dictionary<string, string?> { ["FastIngest:AdminToken"] = Token });

    private static async Task<JsonElement> Admin(IngestServer server, HttpMethod method, string path)
    {
        var (status, body) = await server.AdminAsync(method, path, Token);
        Assert.True(status == HttpStatusCode.OK, $"{method} {path}: {(int)status} {body}");
        return body;
    }

    [Fact]
    public async Task Payloads_that_parse_now_are_replayed_and_the_rest_stay_until_discarded()
    {
        var broken = Encoding.UTF8.GetBytes("""{"object":"whatsapp_business_account","entry":[{"id":""" );
        await using (var server = await Start())
        {
            Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("t1", broken, "app-secret")).StatusCode);
            Assert.Equal(1, (await Admin(server, HttpMethod.Get, "/admin/quarantine")).GetProperty("count").GetInt32());
        }

        // What an older FastIngest wrote for a payload its parser did not know (same log settings as the engine's).
        var readable = Payloads.Text("wamid.UPGRADED", text: "quarantined by an older version");
        using (var log = new EventLog(Path.Combine(_dir.Path, "quarantine"), "quarantine", 256 * 1024 + 64 * 1024, 4L << 20, NullLogger.Instance))
            await log.AppendDurableAsync(new QuarantineRecord(Encoding.UTF8.GetBytes("t1"), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), "unknown field (v0)"u8.ToArray(), readable, readable.Length));

        await using (var server = await Start())
        {
            var list = await Admin(server, HttpMethod.Get, "/admin/quarantine?tenant=t1");
            Assert.Equal(2, list.GetProperty("count").GetInt32());
            var upgradedId = list.GetProperty("items").EnumerateArray().Single(e => e.GetProperty("reason").GetString() == "unknown field (v0)").GetProperty("id").GetInt64();
            var shown = await Admin(server, HttpMethod.Get, $"/admin/quarantine/{upgradedId}");
            Assert.Equal(readable, Convert.FromBase64String(shown.GetProperty("payloadBase64").GetString()!));
            Assert.Equal(Encoding.UTF8.GetString(readable), shown.GetProperty("payloadText").GetString());

            var replay = await Admin(server, HttpMethod.Post, "/admin/quarantine/replay");
            Assert.Equal(1, replay.GetProperty("replayed").GetInt32());
            Assert.Equal(1, replay.GetProperty("unparseable").GetInt32());
            var delivered = await _bot.WaitForDeliveredAsync(1);
            Assert.Equal("msg:wamid.UPGRADED", delivered[0].EventId);

            // The command line sees the one left, and discards it.
            var output = new StringWriter();
            Assert.Equal(0, await AdminCli.RunAsync(AdminCli.QuarantineCommand, ["list", "--url", server.Client.BaseAddress!.ToString(), "--token", Token], output, TextWriter.Null));
            var left = JsonDocument.Parse(output.ToString()).RootElement;
            Assert.Equal(1, left.GetProperty("count").GetInt32());
            var brokenId = left.GetProperty("items")[0].GetProperty("id").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(0, await AdminCli.RunAsync(AdminCli.QuarantineCommand, ["discard", brokenId, "--url", server.Client.BaseAddress!.ToString(), "--token", Token], TextWriter.Null, TextWriter.Null));
            Assert.Equal(1, await AdminCli.RunAsync(AdminCli.QuarantineCommand, ["show", brokenId, "--url", server.Client.BaseAddress!.ToString(), "--token", Token], TextWriter.Null, TextWriter.Null));
        }

        await using (var server = await Start())
        {
            Assert.Equal(0, (await Admin(server, HttpMethod.Get, "/admin/quarantine")).GetProperty("count").GetInt32());
            Assert.Equal(0, (await Admin(server, HttpMethod.Post, "/admin/quarantine/replay")).GetProperty("replayed").GetInt32());
            await Task.Delay(300);
            Assert.Single(_bot.Delivered);
        }
    }
}
