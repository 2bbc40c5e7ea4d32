namespace FastIngest.Tests.Support;

/// <summary>
/// A real <c>rabbitmq-server</c> (Debian's 3.10, installed by scripts/install-test-deps.sh) run directly (not through
/// the service wrapper) as a node of its own (<c>fi{random}@localhost</c>) on free loopback ports, with its database,
/// logs, cookie and an empty plugin list in a temporary directory. <see cref="KillAsync"/> SIGKILLs it and
/// <see cref="StartAgainAsync"/> starts the same node on the same data: durable queues and persistent, confirmed
/// messages survive, as on a real broker restart. User guest/guest, which RabbitMQ allows from loopback.
/// </summary>
internal sealed class RabbitMqServer : IDisposable
{
    private const string Server = "/usr/lib/rabbitmq/bin/rabbitmq-server";
    private readonly TempDir _dir;
    private readonly Dictionary<string, string> _env;
    private ChildProcess? _process;

    private RabbitMqServer(TempDir dir, int port, Dictionary<string, string> env)
    {
        _dir = dir;
        Port = port;
        _env = env;
    }

    public int Port { get; }

    /// <summary>The AMQP URI (<c>amqp://guest:guest@127.0.0.1:{port}/</c>): RabbitMQ's and Celery's form.</summary>
    public string Url => $"amqp://guest:guest@127.0.0.1:{Port}/";

    public static async Task<RabbitMqServer> StartAsync()
    {
        if (!File.Exists(Server))
            throw new InvalidOperationException($"{Server} is missing: run scripts/install-test-deps.sh");
        var dir = new TempDir("rabbitmq");
        var port = ChildProcess.FreePort();
        var dist = ChildProcess.FreePort();
        Directory.CreateDirectory(dir.Sub("mnesia"));
        Directory.CreateDirectory(dir.Sub("log"));
        File.WriteAllText(dir.Sub("enabled_plugins"), "[].\n");
        string Inv(int n) => n.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var env = new Dictionary<string, string>
        {
            ["HOME"] = dir.Path,
            ["RABBITMQ_NODENAME"] = $"fi{Guid.NewGuid().ToString("N")[..10]}@localhost",
            ["RABBITMQ_NODE_IP_ADDRESS"] = "127.0.0.1",
            ["RABBITMQ_NODE_PORT"] = Inv(port),
            ["RABBITMQ_DIST_PORT"] = Inv(dist),
            ["RABBITMQ_MNESIA_BASE"] = dir.Sub("mnesia"),
            ["RABBITMQ_LOG_BASE"] = dir.Sub("log"),
            ["RABBITMQ_LOGS"] = "-",
            ["RABBITMQ_ENABLED_PLUGINS_FILE"] = dir.Sub("enabled_plugins"),
            ["RABBITMQ_CONFIG_FILE"] = dir.Sub("rabbitmq"),
            ["RABBITMQ_PID_FILE"] = dir.Sub("pid"),
        };
        var server = new RabbitMqServer(dir, port, env);
        try
        {
            await server.StartAgainAsync();
        }
        catch
        {
            server.Dispose();
            throw;
        }
        return server;
    }

    /// <summary>Starts the node (again, on the same data) and waits for "Server startup complete".</summary>
    public async Task StartAgainAsync()
    {
        _process?.Dispose();
        _process = ChildProcess.Start(Server, [], _dir.Path, _env);
        await _process.WaitForLineAsync(l => l.Contains("Server startup complete", StringComparison.Ordinal), TimeSpan.FromSeconds(90));
    }

    /// <summary>The broker's last lines of output (its log), for a failing test's message.</summary>
    public string Tail => _process?.Tail ?? "";

    /// <summary>SIGSTOP of the broker: its connections stay open and it answers nothing (a hung broker).</summary>
    public void Freeze() => _process?.Signal("STOP");

    /// <summary>SIGCONT: the frozen broker goes on where it was.</summary>
    public void Thaw() => _process?.Signal("CONT");

    /// <summary>SIGKILL: the broker drops every connection without a word and loses whatever it had not written.</summary>
    public void Kill() => _process?.Kill();

    public void Dispose()
    {
        _process?.Dispose();
        _dir.Dispose();
    }
}
