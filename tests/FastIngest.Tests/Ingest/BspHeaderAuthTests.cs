using System.Net;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Ingest;

/// <summary>
/// A number hosted at a BSP (360dialog): its webhooks carry no <c>X-Hub-Signature-256</c> but a secret header the BSP
/// is configured to send (<c>Inbound:Auth=Header</c>). Valid under the current or the old value (rotation), 401 when
/// missing, wrong or duplicated; no handshake (GET is 404); everything after authentication is the same (the event is
/// recorded and delivered).
/// </summary>
public sealed class BspHeaderAuthTests
{
    private const string Current = "partner-secret-0123456789";
    private const string Previous = "partner-secret-old-987654";

    [Fact]
    public async Task A_BSP_tenant_is_authenticated_by_its_secret_header_and_has_no_handshake()
    {
        await using var bot = await BotServer.StartAsync();
        using var dir = new TempDir();
        await using var server = await IngestServer.StartAsync(dir.Path, [], new Dictionary<string, string?>
        {
            ["FastIngest:Tenants:0:Id"] = "d360",
            ["FastIngest:Tenants:0:Inbound:Auth"] = "Header",
            ["FastIngest:Tenants:0:Inbound:HeaderName"] = "X-Partner-Auth",
            ["FastIngest:Tenants:0:Inbound:HeaderValue"] = Current,
            ["FastIngest:Tenants:0:Inbound:HeaderValues:0"] = Previous,
            ["FastIngest:Tenants:0:Forward:Url"] = bot.Url,
            ["FastIngest:Tenants:0:Forward:Secret"] = "forward-secret",
        });

        Assert.Equal(HttpStatusCode.OK, await PostAsync(server, "wamid.CUR", Current));
        Assert.Equal(HttpStatusCode.OK, await PostAsync(server, "wamid.OLD", Previous));
        Assert.Equal(HttpStatusCode.Unauthorized, await PostAsync(server, "wamid.WRONG", "partner-secret-wrong-0000"));
        Assert.Equal(HttpStatusCode.Unauthorized, await PostAsync(server, "wamid.NONE"));
        Assert.Equal(HttpStatusCode.Unauthorized, await PostAsync(server, "wamid.TWICE", Current, Current));
        // A Meta signature is not what this tenant takes.
        using (var signed = await server.PostAsync("d360", Payloads.Text("wamid.META"), "some-app-secret"))
            Assert.Equal(HttpStatusCode.Unauthorized, signed.StatusCode);

        using (var handshake = await server.Client.GetAsync("/webhooks/d360?hub.mode=subscribe&hub.verify_token=x&hub.challenge=42"))
            Assert.Equal(HttpStatusCode.NotFound, handshake.StatusCode);

        // Sentinel: the last accepted event; once it is at the bot, the refused ones would have been too.
        Assert.Equal(HttpStatusCode.OK, await PostAsync(server, "wamid.LAST", Current));
        await bot.WaitForEventAsync("msg:wamid.LAST");
        Assert.Equal(["msg:wamid.CUR", "msg:wamid.LAST", "msg:wamid.OLD"], bot.Delivered.Select(r => r.EventId!).Order(StringComparer.Ordinal));

        var metrics = await server.Client.GetStringAsync("/metrics");
        Assert.Equal(2d, MetricsText.Value(metrics, "fastingest_signature_key_used_total", "tenant=\"d360\",key_index=\"0\""));
        Assert.Equal(1d, MetricsText.Value(metrics, "fastingest_signature_key_used_total", "tenant=\"d360\",key_index=\"1\""));
    }

    private static async Task<HttpStatusCode> PostAsync(IngestServer server, string wamid, params string[] headerValues)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/webhooks/d360") { Content = new ByteArrayContent(Payloads.Text(wamid)) };
        request.Content.Headers.ContentType = new("application/json");
        foreach (var value in headerValues)
            request.Headers.TryAddWithoutValidation("X-Partner-Auth", value);
        using var response = await server.Client.SendAsync(request);
        return response.StatusCode;
    }

}
