using System.Net;
using System.Security.Cryptography;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Dispatch;

/// <summary>
/// Forward secrets as a list: requests are signed with the first, and <c>X-FastIngest-Signature-Key</c> names the key
/// (the configured <c>SecretKeyId</c>, or a fingerprint), never the secret.
/// </summary>
public sealed class ForwardSigningTests
{
    private static string Hex(byte[] bytes) => Convert.ToHexStringLower(bytes);

    [Fact]
    public async Task Forwards_are_signed_with_the_first_secret_of_the_list_and_name_its_key()
    {
        using var dir = new TempDir();
        await using var bot = await BotServer.StartAsync();
        await using var chatty = await BotServer.StartAsync();
        await using var server = await IngestServer.StartAsync(dir.Path, [new TestTenant("t1", ForwardUrl: bot.Url, ForwardSecret: "first-forward-secret")], new Dictionary<string, string?>
        {
            ["FastIngest:Tenants:0:Forward:Secrets:0"] = "second-forward-secret",
            // A second destination with only a list, and a key id of its own.
            ["FastIngest:Tenants:0:Destinations:0:Name"] = "bot",
            ["FastIngest:Tenants:0:Destinations:0:Kind"] = "Webhook",
            ["FastIngest:Tenants:0:Destinations:0:Url"] = bot.Url,
            ["FastIngest:Tenants:0:Destinations:0:Secret"] = "first-forward-secret",
            ["FastIngest:Tenants:0:Destinations:1:Name"] = "other",
            ["FastIngest:Tenants:0:Destinations:1:Kind"] = "Webhook",
            ["FastIngest:Tenants:0:Destinations:1:Url"] = chatty.Url,
            ["FastIngest:Tenants:0:Destinations:1:Secrets:0"] = "list-secret-a",
            ["FastIngest:Tenants:0:Destinations:1:Secrets:1"] = "list-secret-b",
            ["FastIngest:Tenants:0:Destinations:1:SecretKeyId"] = "2026-12",
        });
        using (var response = await server.PostAsync("t1", Payloads.Text("wamid.SIGNED"), "app-secret"))
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var first = (await bot.WaitForDeliveredAsync(1))[0];
        Assert.Equal("sha256=" + Hex(HMACSHA256.HashData("first-forward-secret"u8, first.Body)), first.Signature);
        Assert.Equal("sha256:" + Hex(SHA256.HashData("first-forward-secret"u8))[..8], first.SignatureKey);

        var other = (await chatty.WaitForDeliveredAsync(1))[0];
        Assert.Equal("sha256=" + Hex(HMACSHA256.HashData("list-secret-a"u8, other.Body)), other.Signature);
        Assert.Equal("2026-12", other.SignatureKey);
        Assert.DoesNotContain("secret", other.SignatureKey!, StringComparison.Ordinal);
    }
}
