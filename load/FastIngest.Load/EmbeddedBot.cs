namespace FastIngest.Load;

/// <summary>
/// The forward target: a real Kestrel server on loopback standing in for every tenant's bot. It answers 200 at once,
/// and records, per <c>X-FastIngest-Event-Id</c>, how many times the event came and when it first came.
/// </summary>
internal sealed class EmbeddedBot : EventSink
{
    private readonly WebApplication _app;

    private EmbeddedBot(WebApplication app) => _app = app;

    public string Url { get; private set; } = "";

    public override string Kind => "webhook";

    public override IEnumerable<string> TenantSettings(int tenant, int concurrency)
    {
        var p = $"--FastIngest:Tenants:{tenant}:";
        yield return $"{p}Forward:Url={Url}/bot/t{tenant}";
        yield return $"{p}Forward:Secret=forward-{tenant}";
        yield return $"{p}Forward:Concurrency={concurrency}";
    }

    public static async Task<EmbeddedBot> StartAsync(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var bot = new EmbeddedBot(app);
        app.Run(bot.HandleAsync);
        await app.StartAsync().ConfigureAwait(false);
        bot.Url = app.Urls.First();
        return bot;
    }

    private async Task HandleAsync(HttpContext context)
    {
        // Read the whole body, as a bot would.
        while (true)
        {
            var read = await context.Request.BodyReader.ReadAsync().ConfigureAwait(false);
            context.Request.BodyReader.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
                break;
        }
        Record(context.Request.Headers["X-FastIngest-Event-Id"].ToString());
        context.Response.StatusCode = 200;
    }

    public override async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
