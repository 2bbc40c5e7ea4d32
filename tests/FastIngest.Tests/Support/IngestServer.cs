using System.Net;
using System.Text.Json;
using FastIngest.Hosting;
using FastIngest.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace FastIngest.Tests.Support;

/// <summary>A tenant as the tests configure it.</summary>
internal sealed record TestTenant(string Id, string AppSecret = "app-secret", string VerifyToken = "verify-me", string? ForwardUrl = null, string ForwardSecret = "forward-secret", int Concurrency = 2);

/// <summary>
/// The real FastIngest server (the same <see cref="FastIngestServer.Build"/> as the executable) on a loopback port,
/// with a data directory that outlives it, so a test can stop it and start it again on the same data.
/// </summary>
internal sealed class IngestServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private IngestServer(WebApplication app, HttpClient client)
    {
        _app = app;
        Client = client;
    }

    public HttpClient Client { get; }

    public FastIngestEngine Engine => _app.Services.GetRequiredService<FastIngestEngine>();

    /// <summary>The server's service container.</summary>
    public IServiceProvider Services => _app.Services;

    /// <summary>
    /// Starts the server; <paramref name="services"/> may add to its service container (a fault-injecting
    /// <c>ForwardTargetWrapper</c>), <paramref name="time"/> replaces the engine's clock (a <c>ManualClock</c>);
    /// <paramref name="settingsFile"/>, when given, is a JSON file read after these settings (and again by a reload),
    /// as <c>appsettings.json</c> would be; <paramref name="watchFile"/> makes an edit of it reload by itself.
    /// </summary>
    public static async Task<IngestServer> StartAsync(string dataDir, IEnumerable<TestTenant> tenants, IDictionary<string, string?>? extra = null, Action<IServiceCollection>? services = null, TimeProvider? time = null, string? settingsFile = null, bool watchFile = false)
    {
        var settings = new Dictionary<string, string?>
        {
            ["FastIngest:DataDir"] = dataDir,
            ["FastIngest:CheckpointInterval"] = "00:00:00.5",
            ["FastIngest:Storage:LogMemoryBytes"] = (16 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["FastIngest:Storage:DedupeIndexBytes"] = (1 << 16).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["FastIngest:Storage:DedupeMemoryBytes"] = (1 << 22).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["FastIngest:MaxBodyBytes"] = (256 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        var i = 0;
        foreach (var t in tenants)
        {
            var p = $"FastIngest:Tenants:{i++}:";
            settings[p + "Id"] = t.Id;
            settings[p + "AppSecret"] = t.AppSecret;
            settings[p + "VerifyToken"] = t.VerifyToken;
            settings[p + "Forward:Concurrency"] = t.Concurrency.ToString(System.Globalization.CultureInfo.InvariantCulture);
            settings[p + "Forward:InitialBackoff"] = "00:00:00.05";
            settings[p + "Forward:MaxBackoff"] = "00:00:00.2";
            // Long enough that a busy 2-core machine running the suite in parallel does not cut deliveries (a cut one is
            // sent again: at-least-once, but a duplicate at the bot); tests about timeouts set their own.
            settings[p + "Forward:Timeout"] = "00:00:10";
            if (t.ForwardUrl is not null)
            {
                settings[p + "Forward:Url"] = t.ForwardUrl;
                settings[p + "Forward:Secret"] = t.ForwardSecret;
            }
        }
        foreach (var kv in extra ?? new Dictionary<string, string?>())
            settings[kv.Key] = kv.Value;

        var app = FastIngestServer.Build(["--urls", "http://127.0.0.1:0"], b =>
        {
            b.Configuration.Sources.Clear();
            b.Configuration.AddInMemoryCollection(settings);
            if (settingsFile is not null)
                b.Configuration.AddJsonFile(settingsFile, optional: false, reloadOnChange: watchFile);
            b.Logging.ClearProviders();
            b.Logging.SetMinimumLevel(LogLevel.Warning);
            if (Environment.GetEnvironmentVariable("FASTINGEST_TEST_LOGS") == "1")
                b.Logging.AddSimpleConsole(); // the server's warnings on the test host's stdout, to debug one test
            
            services?.Invoke(b.Services);
            if (time is not null)
                b.Services.AddSingleton(time); // the engine's clock: silence, backoff, breaker, TTLs, metrics
        });
        await app.StartAsync();
        var client = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
        return new IngestServer(app, client);
    }

    /// <summary>POSTs <paramref name="body"/> to /webhooks/{tenant}, signed with <paramref name="secret"/> (or with the given raw header).</summary>
    public Task<HttpResponseMessage> PostAsync(string tenant, byte[] body, string? secret, string? rawSignature = null)
        => Client.SendAsync(Payloads.Webhook(tenant, body, secret, rawSignature));

    /// <summary>An admin API call with <c>Authorization: Bearer {token}</c>: the status and the JSON body.</summary>
    public async Task<(HttpStatusCode Status, JsonElement Body)> AdminAsync(HttpMethod method, string path, string token)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new("Bearer", token);
        using var response = await Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
