namespace FastIngest.Load;

/// <summary>
/// The baseline of the side-by-side run: plain Kestrel that reads each request body to the end and answers 200,
/// nothing else. Also a fine fast bot for FastIngest to forward to.
/// </summary>
internal static class BareServer
{
    public static async Task RunAsync(string urls)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(urls);
        builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false);
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.Run(async context =>
        {
            var reader = context.Request.BodyReader;
            while (true)
            {
                var read = await reader.ReadAsync().ConfigureAwait(false);
                reader.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                    break;
            }
            context.Response.StatusCode = 200;
        });
        Console.WriteLine($"bare Kestrel listening on {urls}");
        await app.RunAsync().ConfigureAwait(false);
    }
}
