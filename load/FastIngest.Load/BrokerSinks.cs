using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using StackExchange.Redis;

namespace FastIngest.Load;

/// <summary>A broker the tool runs for one load run: Debian's redis-server or rabbitmq-server, on a free loopback port, in a temp directory.</summary>
internal sealed class BrokerProcess : IDisposable
{
    private readonly Process _process;
    private readonly string _dir;

    private BrokerProcess(Process process, string dir, int port)
    {
        _process = process;
        _dir = dir;
        Port = port;
    }

    public int Port { get; }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Starts <paramref name="file"/> and waits (up to 90 s) for a line containing <paramref name="ready"/>.</summary>
    public static async Task<BrokerProcess> StartAsync(string file, IEnumerable<string> args, Dictionary<string, string> env, string dir, int port, string ready)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = dir };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        foreach (var (k, v) in env)
            psi.Environment[k] = v;
        var process = Process.Start(psi) ?? throw new InvalidOperationException($"{file} did not start");
        var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var tail = new Queue<string>();
        void OnLine(string? line)
        {
            if (line is null)
                return;
            lock (tail)
            {
                tail.Enqueue(line);
                if (tail.Count > 40)
                    tail.Dequeue();
            }
            if (line.Contains(ready, StringComparison.Ordinal))
                seen.TrySetResult();
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var broker = new BrokerProcess(process, dir, port);
        if (await Task.WhenAny(seen.Task, Task.Delay(TimeSpan.FromSeconds(90))).ConfigureAwait(false) != seen.Task)
        {
            broker.Dispose();
            lock (tail)
                throw new InvalidOperationException($"{file} not ready in 90 s:\n{string.Join('\n', tail)}");
        }
        return broker;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
                _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>
/// BullMQ (one queue <c>wa-t{i}</c> per tenant, prefix <c>bull</c>) or Celery over Redis (queue <c>celery</c>) on a
/// redis-server of its own. The consumer pops what FastIngest wrote, as fast as it can: BullMQ job ids from each wait
/// list (the event id with <c>:</c> written as <c>|</c>), Celery task messages from the list, whose <c>headers.id</c>
/// is the event id.
/// </summary>
internal sealed class RedisSink : EventSink
{
    private readonly BrokerProcess _redis;
    private readonly ConnectionMultiplexer _client;
    private readonly CancellationTokenSource _stop = new();
    private readonly string _kind;
    private Task _consumer = Task.CompletedTask;
    private int _tenants;

    private RedisSink(string kind, BrokerProcess redis, ConnectionMultiplexer client)
    {
        _kind = kind;
        _redis = redis;
        _client = client;
    }

    public override string Kind => _kind;

    public static async Task<RedisSink> StartAsync(string kind)
    {
        var port = BrokerProcess.FreePort();
        var dir = Directory.CreateTempSubdirectory("fastingest-load-redis").FullName;
        var redis = await BrokerProcess.StartAsync("redis-server", ["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"],
            [], dir, port, "Ready to accept connections").ConfigureAwait(false);
        var client = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{port}").ConfigureAwait(false);
        var sink = new RedisSink(kind, redis, client);
        sink._consumer = Task.Run(sink.ConsumeAsync);
        return sink;
    }

    public override IEnumerable<string> TenantSettings(int tenant, int concurrency)
    {
        _tenants = Math.Max(_tenants, tenant + 1);
        var p = $"--FastIngest:Tenants:{tenant}:Destinations:0:";
        yield return $"{p}Name={_kind}";
        yield return $"{p}Kind={(_kind == "bullmq" ? "BullMQ" : "Celery")}";
        yield return $"{p}Concurrency={concurrency}";
        if (_kind == "bullmq")
        {
            yield return $"{p}ConnectionString=127.0.0.1:{_redis.Port}";
            yield return $"{p}Queue=wa-t{tenant}";
            yield return $"{p}JobName=whatsapp";
        }
        else
        {
            yield return $"{p}ConnectionString=redis://127.0.0.1:{_redis.Port}/0";
            yield return $"{p}Task=tasks.handle_whatsapp_event";
        }
    }

    private async Task ConsumeAsync()
    {
        var db = _client.GetDatabase();
        while (!_stop.IsCancellationRequested)
        {
            var got = 0;
            try
            {
                if (_kind == "bullmq")
                {
                    for (var t = 0; t < _tenants; t++)
                    {
                        foreach (var id in await db.ListRightPopAsync($"bull:wa-t{t}:wait", 1000).ConfigureAwait(false) ?? [])
                        {
                            Record(id.ToString().Replace('|', ':').Replace("%7C", "|", StringComparison.Ordinal));
                            got++;
                        }
                    }
                }
                else
                {
                    foreach (var message in await db.ListRightPopAsync("celery", 1000).ConfigureAwait(false) ?? [])
                    {
                        using var doc = JsonDocument.Parse((byte[])message!);
                        Record(doc.RootElement.GetProperty("headers").GetProperty("id").GetString()!);
                        got++;
                    }
                }
            }
            catch (RedisException)
            {
            }
            if (got == 0)
                await Task.Delay(5).ConfigureAwait(false);
        }
    }

    public override async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _consumer.ConfigureAwait(false);
        await _client.DisposeAsync().ConfigureAwait(false);
        _redis.Dispose();
        _stop.Dispose();
    }
}

/// <summary>
/// RabbitMQ: every tenant publishes, with publisher confirms, to the topic exchange <c>whatsapp</c> under
/// <c>whatsapp.{tenant}.{kind}</c>, into the quorum queue <c>wa-events</c>; the tool consumes it (auto-ack) and
/// records each message's <c>message_id</c>, the event id.
/// </summary>
internal sealed class RabbitMqSink : EventSink
{
    private readonly BrokerProcess _rabbit;
    private readonly IConnection _connection;
    private readonly IChannel _channel;

    private RabbitMqSink(BrokerProcess rabbit, IConnection connection, IChannel channel)
    {
        _rabbit = rabbit;
        _connection = connection;
        _channel = channel;
    }

    public override string Kind => "rabbitmq";

    private string Url => $"amqp://guest:guest@127.0.0.1:{_rabbit.Port}/";

    public static async Task<RabbitMqSink> StartAsync()
    {
        const string server = "/usr/lib/rabbitmq/bin/rabbitmq-server";
        if (!File.Exists(server))
            throw new ArgumentException($"{server} is missing: apt-get install rabbitmq-server (scripts/install-test-deps.sh does)");
        var port = BrokerProcess.FreePort();
        var dir = Directory.CreateTempSubdirectory("fastingest-load-rabbitmq").FullName;
        Directory.CreateDirectory(Path.Combine(dir, "mnesia"));
        Directory.CreateDirectory(Path.Combine(dir, "log"));
        await File.WriteAllTextAsync(Path.Combine(dir, "enabled_plugins"), "[].\n").ConfigureAwait(false);
        var env = new Dictionary<string, string>
        {
            ["HOME"] = dir,
            ["RABBITMQ_NODENAME"] = $"fiload{Guid.NewGuid().ToString("N")[..8]}@localhost",
            ["RABBITMQ_NODE_IP_ADDRESS"] = "127.0.0.1",
            ["RABBITMQ_NODE_PORT"] = port.ToString(CultureInfo.InvariantCulture),
            ["RABBITMQ_DIST_PORT"] = BrokerProcess.FreePort().ToString(CultureInfo.InvariantCulture),
            ["RABBITMQ_MNESIA_BASE"] = Path.Combine(dir, "mnesia"),
            ["RABBITMQ_LOG_BASE"] = Path.Combine(dir, "log"),
            ["RABBITMQ_LOGS"] = "-",
            ["RABBITMQ_ENABLED_PLUGINS_FILE"] = Path.Combine(dir, "enabled_plugins"),
            ["RABBITMQ_CONFIG_FILE"] = Path.Combine(dir, "rabbitmq"),
            ["RABBITMQ_PID_FILE"] = Path.Combine(dir, "pid"),
        };
        var rabbit = await BrokerProcess.StartAsync(server, [], env, dir, port, "Server startup complete").ConfigureAwait(false);
        var connection = await new ConnectionFactory { Uri = new Uri($"amqp://guest:guest@127.0.0.1:{port}/") }.CreateConnectionAsync().ConfigureAwait(false);
        var channel = await connection.CreateChannelAsync().ConfigureAwait(false);
        // The same declarations FastIngest makes, so that the consumer can start first.
        await channel.ExchangeDeclareAsync("whatsapp", ExchangeType.Topic, durable: true, autoDelete: false).ConfigureAwait(false);
        await channel.QueueDeclareAsync("wa-events", durable: true, exclusive: false, autoDelete: false, arguments: new Dictionary<string, object?> { ["x-queue-type"] = "quorum" }).ConfigureAwait(false);
        await channel.BasicQosAsync(0, 2000, false).ConfigureAwait(false);
        var sink = new RabbitMqSink(rabbit, connection, channel);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += async (_, delivery) =>
        {
            sink.Record(delivery.BasicProperties.MessageId ?? "");
            await channel.BasicAckAsync(delivery.DeliveryTag, multiple: false).ConfigureAwait(false);
        };
        await channel.BasicConsumeAsync("wa-events", autoAck: false, consumer).ConfigureAwait(false);
        return sink;
    }

    public override IEnumerable<string> TenantSettings(int tenant, int concurrency)
    {
        var p = $"--FastIngest:Tenants:{tenant}:Destinations:0:";
        yield return $"{p}Name=rabbitmq";
        yield return $"{p}Kind=RabbitMQ";
        yield return $"{p}ConnectionString={Url}";
        yield return $"{p}Exchange=whatsapp";
        yield return $"{p}Queue=wa-events";
        yield return $"{p}Concurrency={concurrency}";
    }

    public override async ValueTask DisposeAsync()
    {
        try
        {
            await _channel.DisposeAsync().ConfigureAwait(false);
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RabbitMQ.Client.Exceptions.RabbitMQClientException or IOException)
        {
        }
        _rabbit.Dispose();
    }
}
