using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Hosting;

/// <summary>
/// Configuration reload without a restart (<c>POST /admin/reload</c>, and an edited settings file): tenants added and
/// removed, secrets rotated under load with nothing refused that was valid under the secret in force, and a bad or
/// restart-only change refused with its key while the running configuration keeps working.
/// </summary>
public sealed class ConfigReloadTests
{
    private const string Admin = "admin-token-0123456789";
    private const string OldApp = "old-app-secret";
    private const string NewApp = "new-app-secret";
    private const string OldForward = "old-forward-secret";
    private const string NewForward = "new-forward-secret";

    private static Dictionary<string, object?> Tenant(string id, string botUrl, object? appSecret = null, IReadOnlyList<string>? appSecrets = null, string forwardSecret = OldForward, IReadOnlyList<string>? forwardSecrets = null, string? keyId = null)
    {
        var forward = new Dictionary<string, object?>
        {
            ["Url"] = botUrl,
            ["Secret"] = forwardSecret,
            ["Concurrency"] = 2,
            ["InitialBackoff"] = "00:00:00.05",
            ["MaxBackoff"] = "00:00:00.2",
            ["Timeout"] = "00:00:10",
        };
        if (forwardSecrets is not null)
            forward["Secrets"] = forwardSecrets;
        if (keyId is not null)
            forward["SecretKeyId"] = keyId;
        var tenant = new Dictionary<string, object?> { ["Id"] = id, ["AppSecret"] = appSecret ?? OldApp, ["VerifyToken"] = "verify-me", ["Forward"] = forward };
        if (appSecrets is not null)
            tenant["AppSecrets"] = appSecrets;
        return tenant;
    }

    private static void Write(string path, params Dictionary<string, object?>[] tenants)
        => WriteWith(path, new Dictionary<string, object?>(), tenants);

    private static void WriteWith(string path, Dictionary<string, object?> global, params Dictionary<string, object?>[] tenants)
    {
        var section = new Dictionary<string, object?>(global) { ["AdminToken"] = Admin, ["Tenants"] = tenants };
        var temp = path + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(new Dictionary<string, object?> { ["FastIngest"] = section }));
        File.Move(temp, path, overwrite: true);
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> ReloadAsync(IngestServer server)
        => await server.AdminAsync(HttpMethod.Post, "/admin/reload", Admin);

    private static bool SignedBy(BotRequest r, string secret)
    {
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), r.Body);
        return r.Signature == "sha256=" + Convert.ToHexStringLower(mac);
    }

    [Fact]
    public async Task A_reload_under_load_adds_a_tenant_and_rotates_the_app_secret_and_the_forward_secret_without_refusing_a_valid_webhook()
    {
        using var dir = new TempDir();
        await using var bot = await BotServer.StartAsync();
        var file = dir.Sub("appsettings.json");
        Write(file, Tenant("t1", bot.Url, keyId: "k1"));
        await using var server = await IngestServer.StartAsync(dir.Sub("data"), [], settingsFile: file);

        using (var before = await server.PostAsync("t2", Payloads.Text("wamid.T2EARLY"), OldApp))
            Assert.Equal(HttpStatusCode.NotFound, before.StatusCode);

        // Senders that never stop: the secret each webhook is signed with follows Meta's side of the rotation.
        var phase = 0; // 0: old only, 1: old and new, 2: new only
        var oldInFlight = 0;
        var sent = 0;
        var statuses = new ConcurrentQueue<(HttpStatusCode Status, int Phase, string Wamid)>();
        using var stop = new CancellationTokenSource();
        var senders = Enumerable.Range(0, 4).Select(s => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var p = Volatile.Read(ref phase);
                var useOld = p == 0 || (p == 1 && i % 2 == 0);
                if (useOld)
                    Interlocked.Increment(ref oldInFlight);
                var wamid = $"wamid.LOAD{s}x{i:D5}";
                try
                {
                    using var response = await server.PostAsync("t1", Payloads.Text(wamid, from: $"1650555{s:D4}"), useOld ? OldApp : NewApp);
                    statuses.Enqueue((response.StatusCode, p, wamid));
                }
                finally
                {
                    if (useOld)
                        Interlocked.Decrement(ref oldInFlight);
                }
                Interlocked.Increment(ref sent);
            }
        })).ToArray();

        async Task SendMoreAsync(int count)
        {
            var until = Volatile.Read(ref sent) + count;
            await Eventually.TrueAsync(() => Task.FromResult(Volatile.Read(ref sent) >= until));
        }

        await SendMoreAsync(60);
        // Step 1: the new app secret is accepted beside the old one, the bot's new forward secret signs (the bot
        // accepts both: it picks the key by X-FastIngest-Signature-Key), and a tenant is added.
        Write(file, Tenant("t1", bot.Url, appSecrets: [NewApp], forwardSecret: NewForward, forwardSecrets: [OldForward], keyId: "k2"), Tenant("t2", bot.Url, keyId: "k1"));
        var (status, body) = await ReloadAsync(server);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["t2"], body.GetProperty("added").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["t1"], body.GetProperty("rotated").EnumerateArray().Select(e => e.GetString()));
        Volatile.Write(ref phase, 1);
        await SendMoreAsync(60);

        // Step 2: Meta signs with the new secret only; once no webhook under the old one is in flight, it is removed.
        Volatile.Write(ref phase, 2);
        await Eventually.TrueAsync(() => Task.FromResult(Volatile.Read(ref oldInFlight) == 0));
        Write(file, Tenant("t1", bot.Url, appSecret: NewApp, forwardSecret: NewForward, keyId: "k2"), Tenant("t2", bot.Url, keyId: "k1"));
        (status, body) = await ReloadAsync(server);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["t1"], body.GetProperty("rotated").EnumerateArray().Select(e => e.GetString()));
        await SendMoreAsync(60);
        await stop.CancelAsync();
        await Task.WhenAll(senders);

        var all = statuses.ToArray();
        Assert.All(all, s => Assert.Equal(HttpStatusCode.OK, s.Status));
        Assert.Contains(all, s => s.Phase == 1);
        using (var added = await server.PostAsync("t2", Payloads.Text("wamid.T2ADDED", from: "16505559999"), OldApp))
            Assert.Equal(HttpStatusCode.OK, added.StatusCode);
        using (var retired = await server.PostAsync("t1", Payloads.Text("wamid.OLDSECRET"), OldApp))
            Assert.Equal(HttpStatusCode.Unauthorized, retired.StatusCode);

        // Every event reached the bot, each signed under the key its X-FastIngest-Signature-Key names.
        var delivered = await bot.WaitForDistinctAsync(all.Length + 1, TimeSpan.FromSeconds(60));
        var keys = new Dictionary<string, string> { ["k1"] = OldForward, ["k2"] = NewForward };
        Assert.All(delivered, r => Assert.True(r.SignatureKey is not null && keys.TryGetValue(r.SignatureKey, out var secret) && SignedBy(r, secret), $"{r.EventId} under key {r.SignatureKey}"));
        Assert.Contains(delivered, r => r.SignatureKey == "k1");
        Assert.Contains(delivered, r => r.SignatureKey == "k2");

        var metrics = await server.Client.GetStringAsync("/metrics");
        Assert.Equal(1d, MetricsText.Value(metrics, "fastingest_signature_failures_total", "tenant=\"t1\"")); // the one webhook under the removed secret
    }

    [Fact]
    public async Task A_reload_with_a_bad_or_restart_only_value_is_refused_naming_the_key_and_the_running_configuration_is_kept()
    {
        using var dir = new TempDir();
        await using var bot = await BotServer.StartAsync();
        var file = dir.Sub("appsettings.json");
        Write(file, Tenant("t1", bot.Url));
        await using var server = await IngestServer.StartAsync(dir.Sub("data"), [], settingsFile: file);

        // An empty secret in the list: validation fails as it would at start-up; the new secret is not taken either.
        Write(file, Tenant("t1", bot.Url, appSecrets: [NewApp, ""]));
        var (status, body) = await ReloadAsync(server);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("FastIngest:Tenants:0:AppSecrets:1", body.GetProperty("key").GetString());

        // A change that only a restart applies: a tenant's bot URL, a global setting.
        Write(file, Tenant("t1", bot.Url + "/moved", appSecrets: [NewApp]));
        (status, body) = await ReloadAsync(server);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("FastIngest:Tenants:0:Forward:Url", body.GetProperty("key").GetString());
        Assert.Contains("restart", body.GetProperty("error").GetString(), StringComparison.Ordinal);

        WriteWith(file, new Dictionary<string, object?> { ["MaxConnections"] = 77 }, Tenant("t1", bot.Url, appSecrets: [NewApp]));
        (status, body) = await ReloadAsync(server);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("FastIngest:MaxConnections", body.GetProperty("key").GetString());

        using (var old = await server.PostAsync("t1", Payloads.Text("wamid.KEPT1"), OldApp))
            Assert.Equal(HttpStatusCode.OK, old.StatusCode);
        using (var notYet = await server.PostAsync("t1", Payloads.Text("wamid.KEPT2"), NewApp))
            Assert.Equal(HttpStatusCode.Unauthorized, notYet.StatusCode);

        // Fixed, the same reload goes through.
        Write(file, Tenant("t1", bot.Url, appSecrets: [NewApp]));
        (status, _) = await ReloadAsync(server);
        Assert.Equal(HttpStatusCode.OK, status);
        using (var now = await server.PostAsync("t1", Payloads.Text("wamid.KEPT3"), NewApp))
            Assert.Equal(HttpStatusCode.OK, now.StatusCode);
        var metrics = await server.Client.GetStringAsync("/metrics");
        Assert.Equal(3d, MetricsText.Value(metrics, "fastingest_config_reloads_total", "result=\"refused\""));
        Assert.Equal(1d, MetricsText.Value(metrics, "fastingest_config_reloads_total", "result=\"applied\""));
    }

    [Fact]
    public async Task A_removed_tenant_gets_404_at_once_its_backlog_is_still_delivered_and_added_again_it_resumes_without_repeats()
    {
        using var dir = new TempDir();
        await using var bot = await BotServer.StartAsync();
        await using var held = await BotServer.StartAsync();
        var accept = false;
        held.Respond = _ => Volatile.Read(ref accept) ? 200 : 503;
        var file = dir.Sub("appsettings.json");
        Write(file, Tenant("t1", bot.Url), Tenant("t2", held.Url));
        await using var server = await IngestServer.StartAsync(dir.Sub("data"), [], settingsFile: file);

        for (var i = 0; i < 5; i++)
        {
            using var response = await server.PostAsync("t2", Payloads.Text($"wamid.BACKLOG{i}", from: $"1650555000{i}"), OldApp);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        Write(file, Tenant("t1", bot.Url));
        var (status, body) = await ReloadAsync(server);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["t2"], body.GetProperty("removed").EnumerateArray().Select(e => e.GetString()));
        using (var gone = await server.PostAsync("t2", Payloads.Text("wamid.AFTER"), OldApp))
            Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);

        // Added back while its backlog is still held: refused, it is not finished yet.
        Write(file, Tenant("t1", bot.Url), Tenant("t2", held.Url));
        (status, body) = await ReloadAsync(server);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("FastIngest:Tenants:1:Id", body.GetProperty("key").GetString());

        // The bot takes events again: the backlog of the removed tenant arrives, then its dispatcher stops.
        Volatile.Write(ref accept, true);
        await held.WaitForDistinctAsync(5);
        await Eventually.TrueAsync(() => Task.FromResult(!server.Engine.Dispatchers.Any(d => d.Tenant.Id == "t2")));

        // Added back: it starts where it stopped, so nothing it delivered goes again (the sentinel proves the rest came).
        (status, body) = await ReloadAsync(server);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["t2"], body.GetProperty("added").EnumerateArray().Select(e => e.GetString()));
        using (var back = await server.PostAsync("t2", Payloads.Text("wamid.SENTINEL", from: "16505550000"), OldApp))
            Assert.Equal(HttpStatusCode.OK, back.StatusCode);
        await held.WaitForDistinctAsync(6);
        var delivered = held.Delivered.GroupBy(r => r.EventId).ToDictionary(g => g.Key!, g => g.Count());
        Assert.All(delivered, kv => Assert.Equal(1, kv.Value));
        using (var t1 = await server.PostAsync("t1", Payloads.Text("wamid.T1"), OldApp))
            Assert.Equal(HttpStatusCode.OK, t1.StatusCode);
    }

    [Fact]
    public async Task Events_waiting_for_a_retry_when_the_forward_key_rotates_go_out_signed_under_the_new_key()
    {
        using var dir = new TempDir();
        await using var bot = await BotServer.StartAsync();
        bot.RespondByKey = (_, key) => key == "k2" ? 200 : 503; // takes only the new key: down until the rotation
        var file = dir.Sub("appsettings.json");
        Write(file, Tenant("t1", bot.Url, keyId: "k1"));
        await using var server = await IngestServer.StartAsync(dir.Sub("data"), [], settingsFile: file);
        for (var i = 0; i < 3; i++)
        {
            using var response = await server.PostAsync("t1", Payloads.Text($"wamid.RETRY{i}", from: $"1650555100{i}"), OldApp);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        await Eventually.TrueAsync(() => Task.FromResult(bot.Requests.Select(r => r.EventId).Distinct().Count() == 3));
        Assert.All(bot.Requests, r => Assert.Equal("k1", r.SignatureKey));

        // The bot now knows only the new key: the events prepared under the old one are signed again before they go.
        Write(file, Tenant("t1", bot.Url, forwardSecret: NewForward, keyId: "k2"));
        var (status, _) = await ReloadAsync(server);
        Assert.Equal(HttpStatusCode.OK, status);
        var delivered = await bot.WaitForDistinctAsync(3);
        Assert.All(delivered, r => Assert.True(r.SignatureKey == "k2" && SignedBy(r, NewForward), $"{r.EventId} under key {r.SignatureKey}"));
    }

    [Fact]
    public async Task An_edited_settings_file_is_applied_by_itself()
    {
        using var dir = new TempDir();
        await using var bot = await BotServer.StartAsync();
        var file = dir.Sub("appsettings.json");
        Write(file, Tenant("t1", bot.Url));
        await using var server = await IngestServer.StartAsync(dir.Sub("data"), [], settingsFile: file, watchFile: true);

        Write(file, Tenant("t1", bot.Url), Tenant("t3", bot.Url));
        await Eventually.TrueAsync(async () =>
        {
            using var response = await server.PostAsync("t3", Payloads.Text("wamid.WATCHED"), OldApp);
            return response.StatusCode == HttpStatusCode.OK;
        });
        await bot.WaitForDeliveredAsync(1);
    }
}
