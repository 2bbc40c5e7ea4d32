using FastIngest.Admin;
using FastIngest.Configuration;
using FastIngest.Hosting;
using FastIngest.Ingest;
using FastIngest.Outbound;
using FastIngest.Telemetry;

namespace FastIngest.Server;

/// <summary>
/// The FastIngest executable: Kestrel with the webhook middleware in front. Listening addresses come from the
/// standard <c>--urls</c> (default <c>http://localhost:5000</c>); everything else from the <c>FastIngest</c>
/// configuration section (see <see cref="FastIngestOptions"/>).
/// </summary>
public static class FastIngestServer
{
    /// <summary>
    /// Builds the server without starting it; the engine's storage is opened and recovered here.
    /// <paramref name="configure"/> lets a host (or a test) adjust the builder before the options are read.
    /// </summary>
    /// <exception cref="ConfigurationException">A bad or missing setting; the message names the key.</exception>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        // appsettings.json is read from beside the executable, wherever it is started from; a relative DataDir is the
        // working directory's (see FastIngestEngine).
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        // ASP.NET Core's per-request hosting log (and with it a logging scope, an Activity and their execution-context
        // entries on every request: ~700 bytes a webhook) is off; FastIngest's own logs and metrics say what it does.
        // A host that wants it back sets Logging:LogLevel:Microsoft.AspNetCore.Hosting.Diagnostics.
        builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);
        configure?.Invoke(builder);
        var options = OptionsLoader.Load(builder.Configuration);

        var connections = new ConnectionLimit(options.MaxConnections);
        builder.Services.AddSingleton(connections);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.ConfigureEndpointDefaults(listen => listen.Use(next => connection => connections.OnConnectionAsync(connection, next)));
            // Our own limit answers 413 first; Kestrel's stops a body that lies about its length.
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes + 1L;
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.ShutdownTimeout);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(sp => CreateEngine(options, sp.GetRequiredService<ILoggerFactory>(), sp.GetService<Dispatch.ForwardTargetWrapper>(), sp.GetService<TimeProvider>()));
        builder.Services.AddHostedService(sp => sp.GetRequiredService<FastIngestEngine>());

        var app = builder.Build();
        var engine = app.Services.GetRequiredService<FastIngestEngine>();
        app.Lifetime.ApplicationStopping.Register(engine.ShutdownRequested);
        app.UseMiddleware<WebhookMiddleware>();
        var adminTokens = new AdminTokens(options.AdminTokenValues);
        app.MapFastIngestAdmin(engine, adminTokens);
        app.MapFastIngestOutbound(engine.Outbound, adminTokens);
        // Tenants and secrets change without a restart: POST /admin/reload, and appsettings.json edited (reloadOnChange).
        var reload = new ConfigReload(app.Configuration, engine, adminTokens, app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("FastIngest.Reload"));
        engine.Metrics.ObserveReloads(reload);
        app.MapFastIngestReload(reload, adminTokens);
        if (options.ReloadOnChange)
            app.Lifetime.ApplicationStarted.Register(() => app.Lifetime.ApplicationStopping.Register(reload.WatchChanges().Dispose));
        // /healthz: the process is up. /readyz: it should get traffic (log writable, under quota, backlogs in bounds).
        // /healthz fails only for what a restart fixes: the event log has failed for good (a disk that is full, read-only
        // or frozen is retried in place, so it shows on /readyz instead).
        app.MapGet("/healthz", () => engine.Log.Failure is { } failure
            ? Results.Text($"event log failed and takes no more writes ({failure.Message}); restart\n", statusCode: StatusCodes.Status503ServiceUnavailable)
            : Results.Text("ok\n"));
        app.MapGet("/readyz", () => engine.NotReadyReasons() is { Count: > 0 } reasons
            ? Results.Text(string.Join('\n', reasons) + "\n", statusCode: StatusCodes.Status503ServiceUnavailable)
            : Results.Text("ready\n"));
        app.MapGet("/metrics", () => Results.Text(engine.Metrics.Exporter.Render(), PrometheusExporter.ContentType));
        return app;
    }

    private static FastIngestEngine CreateEngine(FastIngestOptions options, ILoggerFactory loggerFactory, Dispatch.ForwardTargetWrapper? faults, TimeProvider? time)
    {
        try
        {
            return new FastIngestEngine(options, loggerFactory, time, faults);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ConfigurationException($"{FastIngestOptions.SectionName}:DataDir", $"cannot use '{options.DataDir}': {ex.Message}");
        }
    }

    /// <summary>
    /// Runs the server until SIGTERM or Ctrl+C (exit code 2 for a configuration error), or, with <c>deadletters</c> or
    /// <c>quarantine</c> as the first argument, the operator's command line against a running server (see <see cref="AdminCli"/>).
    /// </summary>
    public static int Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length > 0 && args[0] is AdminCli.Command or AdminCli.QuarantineCommand or AdminCli.DamageCommand)
            return AdminCli.RunAsync(args[0], args[1..], Console.Out, Console.Error).GetAwaiter().GetResult();
        WebApplication app;
        try
        {
            app = Build(args);
        }
        catch (ConfigurationException ex)
        {
            Console.Error.WriteLine($"fastingest: configuration error: {ex.Message}");
            return 2;
        }
        catch (InvalidOperationException ex) when (ex.InnerException is ConfigurationException inner)
        {
            Console.Error.WriteLine($"fastingest: configuration error: {inner.Message}");
            return 2;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Never a stack trace: one line with what failed (the storage errors name their file).
            var inner = ex is InvalidOperationException { InnerException: { } i } ? i : ex;
            Console.Error.WriteLine($"fastingest: start-up failed: {inner.GetType().Name}: {inner.Message.Split('\n', 2)[0].Trim()}");
            return 3;
        }
        var stopping = false;
        app.Lifetime.ApplicationStopping.Register(() => stopping = true);
        try
        {
            app.Run();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            var line = $"{ex.GetType().Name}: {ex.Message.Split('\n', 2)[0].Trim()}";
            if (!stopping)
            {
                Console.Error.WriteLine($"fastingest: start-up failed: {line}");
                return 3;
            }
            // A failure while shutting down (a disk that refuses writes): everything acknowledged was durable before
            // its 200, so the shutdown is still a clean one.
            Console.Error.WriteLine($"fastingest: shutdown finished after a failure: {line}");
        }
        return 0;
    }
}
