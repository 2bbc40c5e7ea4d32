using StackExchange.Redis;

namespace FastIngest.Tests.Support;

/// <summary>
/// A real <c>redis-server</c> (Debian's, installed by scripts/install-test-deps.sh) on a free loopback port, in a
/// temporary directory, without persistence; never the system service. Dispose stops it and deletes the directory.
/// </summary>
internal sealed class RedisServer : IDisposable
{
    private readonly ChildProcess _process;
    private readonly TempDir _dir;
    private ConnectionMultiplexer? _client;

    private RedisServer(ChildProcess process, TempDir dir, int port)
    {
        _process = process;
        _dir = dir;
        Port = port;
    }

    public int Port { get; }

    /// <summary>A StackExchange.Redis configuration string for it (<c>127.0.0.1:{port}</c>).</summary>
    public string ConnectionString => $"127.0.0.1:{Port}";

    /// <summary>Celery's <c>broker_url</c> for database 0.</summary>
    public string Url => $"redis://127.0.0.1:{Port}/0";

    public static async Task<RedisServer> StartAsync()
    {
        var dir = new TempDir("redis");
        var port = ChildProcess.FreePort();
        var process = ChildProcess.Start("redis-server", ["--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", dir.Path, "--save", "", "--appendonly", "no", "--protected-mode", "no"]);
        var server = new RedisServer(process, dir, port);
        try
        {
            await process.WaitForLineAsync(l => l.Contains("Ready to accept connections", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        }
        catch
        {
            server.Dispose();
            throw;
        }
        return server;
    }

    /// <summary>A client of the test's own, to look at what FastIngest wrote.</summary>
    public IDatabase Db()
    {
        _client ??= ConnectionMultiplexer.Connect(ConnectionString);
        return _client.GetDatabase();
    }

    public void Dispose()
    {
        _client?.Dispose();
        _process.Dispose();
        _dir.Dispose();
    }
}
