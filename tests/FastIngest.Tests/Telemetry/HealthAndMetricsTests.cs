using System.Diagnostics;
using System.Net;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Telemetry;

/// <summary>
/// <c>/healthz</c>, <c>/readyz</c> and <c>/metrics</c> on the running server: the counters move with real traffic,
/// the output passes <c>promtool check metrics</c> (Debian package <c>prometheus</c>, installed by
/// <c>scripts/install-test-deps.sh</c>), and readiness fails, with its reason, when a tenant's backlog is too old or
/// the data directory is over its quota, while webhooks then get 503.
/// </summary>
public sealed class HealthAndMetricsTests
{
    [Fact]
    public async Task Metrics_count_real_traffic_and_pass_promtool()
    {
        using var dir = new TempDir();
        await using var bot = await BotServer.StartAsync();
        await using var server = await IngestServer.StartAsync(dir.Path, [new TestTenant("t1", ForwardUrl: bot.Url), new TestTenant("t2", AppSecret: "other")]);
        await server.PostAsync("t1", Payloads.Text("wamid.M1"), "app-secret");
        await server.PostAsync("t1", Payloads.Text("wamid.M1"), "app-secret"); // Meta's retry: a duplicate
        await server.PostAsync("t1", Payloads.Statuses(("wamid.S1", "sent", "1555"), ("wamid.S1", "delivered", "1555")), "app-secret");
        await server.PostAsync("t1", Payloads.Text("wamid.BAD"), "wrong-secret");
        await bot.WaitForDeliveredAsync(3);
        await Eventually.TrueAsync(async () => Value(await Metrics(server), "fastingest_events_forwarded_total", "tenant=\"t1\",destination=\"forward\"") == 3, seconds: 20);

        var text = await Metrics(server);
        Assert.Equal(3, Value(text, "fastingest_requests_total", "tenant=\"t1\",result=\"accepted\""));
        Assert.Equal(1, Value(text, "fastingest_requests_total", "tenant=\"t1\",result=\"unauthorized\""));
        Assert.Equal(1, Value(text, "fastingest_signature_failures_total", "tenant=\"t1\""));
        Assert.Equal(3, Value(text, "fastingest_events_accepted_total", "tenant=\"t1\""));
        Assert.Equal(1, Value(text, "fastingest_duplicate_events_total", "tenant=\"t1\""));
        Assert.Equal(0, Value(text, "fastingest_requests_total", "tenant=\"t2\",result=\"accepted\""));
        Assert.Equal(0, Value(text, "fastingest_backlog_events", "tenant=\"t1\",destination=\"forward\""));
        Assert.Equal(3, Value(text, "fastingest_ack_latency_seconds_count", null));
        Assert.True(Value(text, "fastingest_commit_latency_seconds_count", null) >= 1);
        Assert.True(Value(text, "fastingest_data_dir_bytes", null) > 0);

        var promtool = FindPromtool();
        var start = new ProcessStartInfo(promtool, "check metrics") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        await process.StandardInput.WriteAsync(text);
        process.StandardInput.Close();
        var report = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0 && report.Trim().Length == 0, $"promtool check metrics: exit {process.ExitCode}\n{report}\n---\n{text}");
    }

    [Fact]
    public async Task Readiness_fails_with_a_reason_when_a_backlog_is_too_old()
    {
        using var dir = new TempDir();
        await using var bot = await BotServer.StartAsync();
        bot.Respond = _ => 503;
        await using var server = await IngestServer.StartAsync(dir.Path, [new TestTenant("t1", ForwardUrl: bot.Url)],
            new Dictionary<string, string?> { ["FastIngest:Tenants:0:Forward:MaxBacklogAge"] = "00:00:00.5" });
        Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync("/readyz")).StatusCode);

        await server.PostAsync("t1", Payloads.Text("wamid.STUCK"), "app-secret");
        await Eventually.TrueAsync(async () => (await server.Client.GetAsync("/readyz")).StatusCode == HttpStatusCode.ServiceUnavailable, seconds: 20);
        var body = await server.Client.GetStringAsync("/healthz");
        Assert.Equal("ok", body.Trim());
        var ready = await server.Client.GetAsync("/readyz");
        Assert.Contains("tenant t1: oldest undelivered event", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.True(Value(await Metrics(server), "fastingest_oldest_unforwarded_age_seconds", "tenant=\"t1\",destination=\"forward\"") > 0.5);

        bot.Respond = _ => 200;
        await bot.WaitForDeliveredAsync(1);
        await Eventually.TrueAsync(async () => (await server.Client.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, seconds: 20);
    }

    [Fact]
    public async Task Over_the_disk_quota_webhooks_get_503_and_readiness_fails_and_nothing_accepted_is_lost()
    {
        using var dir = new TempDir();
        await using var bot = await BotServer.StartAsync();
        // The smallest quota these sizes allow (start-up refuses less), then a file that takes all of it.
        var quota = FastIngest.Storage.StorageFootprint.FixedDiskBytes(new FastIngest.Configuration.StorageOptions { LogMemoryBytes = 16 << 20, DedupeIndexBytes = 1 << 16 });
        await using var server = await IngestServer.StartAsync(dir.Path, [new TestTenant("t1", ForwardUrl: bot.Url)],
            new Dictionary<string, string?> { ["FastIngest:Storage:MaxDiskBytes"] = quota.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        var ballast = Path.Combine(dir.Path, "ballast");
        using (var f = File.Create(ballast))
            f.SetLength(quota); // sparse: counted at its length, costs no disk
        await Eventually.TrueAsync(async () => (await server.Client.GetAsync("/readyz")).StatusCode == HttpStatusCode.ServiceUnavailable, seconds: 20);
        var ready = await server.Client.GetAsync("/readyz");
        Assert.Contains("over Storage:MaxDiskBytes", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var refused = await server.PostAsync("t1", Payloads.Text("wamid.FULL"), "app-secret");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.NotNull(refused.Headers.RetryAfter);
        Assert.Equal(1, Value(await Metrics(server), "fastingest_requests_total", "tenant=\"t1\",result=\"unavailable\""));

        // Refused, not recorded (Meta keeps it and retries): back under the quota, a sentinel arrives and it does not.
        File.Delete(ballast);
        await Eventually.TrueAsync(async () => (await server.Client.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, seconds: 20);
        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("t1", Payloads.Text("wamid.SENTINEL"), "app-secret")).StatusCode);
        await bot.WaitForEventAsync("msg:wamid.SENTINEL");
        Assert.DoesNotContain(bot.Requests, r => r.EventId == "msg:wamid.FULL");
    }

    private static async Task<string> Metrics(IngestServer server)
    {
        var response = await server.Client.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain; version=0.0.4", response.Content.Headers.ContentType!.ToString(), StringComparison.Ordinal);
        return await response.Content.ReadAsStringAsync();
    }

    private static double Value(string text, string name, string? labels) => MetricsText.Value(text, name, labels);

    private static string FindPromtool()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/bin"))
        {
            var path = Path.Combine(dir, "promtool");
            if (File.Exists(path))
                return path;
        }
        Assert.Fail("promtool not found: run scripts/install-test-deps.sh (Debian package prometheus)");
        return "";
    }
}
