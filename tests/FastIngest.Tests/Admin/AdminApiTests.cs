using System.Net;
using FastIngest.Server;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Admin;

/// <summary>The admin API's guard, and the <c>fastingest deadletters</c> command line against a running server.</summary>
public sealed class AdminApiTests
{
    private const string Token = "admin-token-0123456789";

    [Fact]
    public async Task Without_a_configured_token_the_admin_API_is_off()
    {
        using var dir = new TempDir();
        await using var server = await IngestServer.StartAsync(dir.Path, [new TestTenant("t1")]);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/deadletters");
        request.Headers.Authorization = new("Bearer", Token);
        Assert.Equal(HttpStatusCode.NotFound, (await server.Client.SendAsync(request)).StatusCode);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("Bearer wrong-token-0123456789")]
    [InlineData("Basic YWRtaW46YWRtaW4=")]
    [InlineData("Bearer admin-token-012345678")]
    public async Task A_missing_or_wrong_token_gets_401(string? authorization)
    {
        using var dir = new TempDir();
        await using var server = await IngestServer.StartAsync(dir.Path, [new TestTenant("t1")], new Dictionary<string, string?> { ["FastIngest:AdminToken"] = Token });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/deadletters/replay");
        if (authorization is not null)
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        var response = await server.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.ToString());
    }

    [Fact]
    public async Task During_a_rotation_the_old_and_the_new_admin_token_are_both_accepted_and_no_other()
    {
        using var dir = new TempDir();
        const string next = "admin-token-next-9876543210";
        await using var server = await IngestServer.StartAsync(dir.Path, [new TestTenant("t1")], new Dictionary<string, string?>
        {
            ["FastIngest:AdminToken"] = Token,
            ["FastIngest:AdminTokens:0"] = next,
        });
        foreach (var (token, expected) in new[] { (Token, HttpStatusCode.OK), (next, HttpStatusCode.OK), ("admin-token-neither-000000", HttpStatusCode.Unauthorized) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/deadletters");
            request.Headers.Authorization = new("Bearer", token);
            Assert.Equal(expected, (await server.Client.SendAsync(request)).StatusCode);
        }
    }

    [Fact]
    public async Task The_command_line_lists_shows_and_replays_dead_letters()
    {
        using var dir = new TempDir();
        await using var bot = await BotServer.StartAsync();
        bot.Respond = _ => 400;
        await using var server = await IngestServer.StartAsync(dir.Path, [new TestTenant("t1", ForwardUrl: bot.Url)], new Dictionary<string, string?> { ["FastIngest:AdminToken"] = Token });
        await server.PostAsync("t1", Payloads.Text("wamid.CLI"), "app-secret");
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (server.Engine.DeadLetters.Count == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "not dead-lettered");
            await Task.Delay(50);
        }
        var url = server.Client.BaseAddress!.ToString();

        var (code, output) = await Cli("list", "--tenant", "t1", "--url", url, "--token", Token);
        Assert.Equal(0, code);
        Assert.Contains("\"eventId\":\"msg:wamid.CLI\"", output, StringComparison.Ordinal);
        var id = server.Engine.DeadLetters.List()[0].Id.ToString(System.Globalization.CultureInfo.InvariantCulture);

        (code, output) = await Cli("show", id, "--url", url, "--token", Token);
        Assert.Equal(0, code);
        Assert.Contains("\"payload\":{", output, StringComparison.Ordinal);

        (code, _) = await Cli("show", "999999999", "--url", url, "--token", Token);
        Assert.Equal(1, code);
        (code, _) = await Cli("list", "--url", url, "--token", "not-the-token-at-all");
        Assert.Equal(1, code);
        (code, _) = await Cli("frobnicate", "--url", url, "--token", Token);
        Assert.Equal(2, code);

        bot.Respond = _ => 200;
        (code, output) = await Cli("replay", "--tenant", "t1", "--url", url, "--token", Token);
        Assert.Equal(0, code);
        Assert.Contains("\"replayed\":1", output, StringComparison.Ordinal);
        Assert.Equal("msg:wamid.CLI", (await bot.WaitForDeliveredAsync(1))[0].EventId);
    }

    /// <summary>Runs <c>fastingest deadletters ...</c> in process: its exit code and what it printed.</summary>
    internal static async Task<(int Code, string Output)> Cli(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await AdminCli.RunAsync(args, output, error);
        return (code, output + error.ToString());
    }
}
