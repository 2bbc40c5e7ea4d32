using System.Collections.Concurrent;
using System.Text.Json;

namespace FastIngest.Tests.Support;

/// <summary>
/// A real bot built on the npm library whatsapp-api-js 6.3.0 (its stock node:http middleware, <c>Bots/wajs-bot.mjs</c>),
/// run with Node on a loopback port: it verifies each forward's <c>X-Hub-Signature-256</c> over escapeUnicode(body)
/// and answers what the library answers. <c>scripts/install-test-deps.sh</c> installs the package.
/// </summary>
internal sealed class WhatsAppApiJsBot : IDisposable
{
    private readonly ConcurrentQueue<(string? EventId, int Status)> _answers = new();
    private readonly SemaphoreSlim _answered = new(0);
    private ChildProcess _process = null!;

    public string Url { get; private set; } = "";

    /// <summary>Every request so far: its event id and the status whatsapp-api-js answered.</summary>
    public IReadOnlyList<(string? EventId, int Status)> Answers => [.. _answers];

    public static async Task<WhatsAppApiJsBot> StartAsync(string appSecret)
    {
        var dir = Path.Combine(RepoPaths.Root, "tests", "FastIngest.Tests", "Bots");
        if (!Directory.Exists(Path.Combine(dir, "node_modules", "whatsapp-api-js")))
            throw new InvalidOperationException($"whatsapp-api-js is not installed in {dir}: run scripts/install-test-deps.sh");
        var bot = new WhatsAppApiJsBot();
        bot._process = ChildProcess.Start("node", ["wajs-bot.mjs", appSecret], dir, onStdout: line =>
        {
            if (!line.StartsWith('{'))
                return;
            using var doc = JsonDocument.Parse(line);
            bot._answers.Enqueue((doc.RootElement.GetProperty("eventId").GetString(), doc.RootElement.GetProperty("status").GetInt32()));
            bot._answered.Release();
        });
        try
        {
            await bot._process.WaitForLineAsync(l => l.StartsWith("listening ", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        }
        catch
        {
            bot.Dispose();
            throw;
        }
        var port = bot._process.Stdout.First(l => l.StartsWith("listening ", StringComparison.Ordinal))["listening ".Length..];
        bot.Url = $"http://127.0.0.1:{port}/webhook";
        return bot;
    }

    /// <summary>Waits until <paramref name="done"/> holds over <see cref="Answers"/> (or fails after 30 s).</summary>
    public async Task WaitUntilAsync(Func<IReadOnlyList<(string? EventId, int Status)>, bool> done, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!done(Answers))
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
                throw new TimeoutException($"{what}; answers: {string.Join(", ", Answers.Select(a => $"{a.EventId}={a.Status}"))}");
            await _answered.WaitAsync(left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200));
        }
    }

    public void Dispose()
    {
        _process?.Dispose();
        _answered.Dispose();
    }
}
