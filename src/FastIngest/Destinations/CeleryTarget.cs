using System.Buffers;
using System.Text;
using System.Text.Json;
using FastIngest.Dispatch;
using RabbitMQ.Client;

namespace FastIngest.Destinations;

/// <summary>
/// One Celery task message per event, in Celery's message protocol version 2 (Celery's docs, "Message Protocol"), so
/// that a task <c>def handle_whatsapp_event(payload)</c> runs with the Meta-shaped payload as its one argument:
/// <list type="bullet">
/// <item>headers: <c>lang</c> <c>py</c>, <c>task</c> the configured name, <c>id</c> and <c>root_id</c> the event id (the
/// task's <c>self.request.id</c>), <c>retries</c> 0, <c>timelimit</c> <c>[null, null]</c>, <c>argsrepr</c>,
/// <c>kwargsrepr</c> <c>{}</c>, <c>origin</c> <c>fastingest@{host}</c>, the rest null or false as Celery writes them;</item>
/// <item>body: <c>[[payload], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]</c>, JSON.</item>
/// </list>
/// Over Redis (<c>redis://host:port/db</c>): kombu's Redis transport envelope, <c>LPUSH</c>ed on the queue's list
/// (default <c>celery</c>): <c>{"body": base64, "content-encoding": "utf-8", "content-type": "application/json",
/// "headers": ..., "properties": {"correlation_id", "reply_to", "delivery_mode": 2, "delivery_info": {"exchange": "",
/// "routing_key": queue}, "priority": 0, "body_encoding": "base64", "delivery_tag": uuid}}</c>. Delivered = Redis
/// answered the push.
/// Over AMQP (<c>amqp://user:pass@host:port/vhost</c>): published persistent to the queue's exchange (Celery's default:
/// a durable direct exchange named like the queue, routing key the queue name), declared the way Celery's worker
/// declares them, with the headers as AMQP headers and publisher confirms: delivered = the broker confirmed.
/// Either way a crash between the broker's answer and our ack sends the task again with the same task id.
/// </summary>
internal sealed class CeleryTarget : IForwardTarget
{
    private readonly string _task;
    private readonly string _queue;
    private readonly RedisConnection? _redis;
    private readonly AmqpConnection? _amqp;
    private readonly string _origin = $"fastingest@{Environment.MachineName}";
    private static readonly byte[] s_embed = """{"callbacks": null, "errbacks": null, "chain": null, "chord": null}"""u8.ToArray();

    public CeleryTarget(Uri broker, string task, string? queue, TimeSpan timeout)
    {
        _task = task;
        _queue = string.IsNullOrEmpty(queue) ? "celery" : queue;
        if (broker.Scheme == "redis")
        {
            var db = broker.AbsolutePath.Trim('/') is { Length: > 0 } path && int.TryParse(path, out var n) ? n : 0;
            var config = $"{broker.Host}:{(broker.Port > 0 ? broker.Port : 6379)},defaultDatabase={db}";
            if (broker.UserInfo.Split(':', 2) is [var user, var password])
                config += $",password={Uri.UnescapeDataString(password)}" + (user.Length > 0 ? $",user={Uri.UnescapeDataString(user)}" : "");
            _redis = new RedisConnection(config, timeout);
        }
        else
        {
            // pyamqp:// is Celery's name for the same AMQP URI.
            var amqp = new UriBuilder(broker) { Scheme = "amqp", Port = broker.Port > 0 ? broker.Port : 5672 }.Uri;
            var queueName = _queue;
            _amqp = new AmqpConnection(amqp, timeout, async (channel, ct) =>
            {
                await channel.ExchangeDeclareAsync(queueName, ExchangeType.Direct, durable: true, autoDelete: false, arguments: null, cancellationToken: ct).ConfigureAwait(false);
                await channel.QueueDeclareAsync(queueName, durable: true, exclusive: false, autoDelete: false, arguments: null, cancellationToken: ct).ConfigureAwait(false);
                await channel.QueueBindAsync(queueName, queueName, queueName, arguments: null, cancellationToken: ct).ConfigureAwait(false);
            });
        }
    }

    public string Describe => _redis is not null ? $"celery {_redis.Describe} queue {_queue}" : $"celery {_amqp!.Describe} queue {_queue}";

    /// <summary>The protocol-2 body: <c>[[payload], {}, embed]</c>.</summary>
    internal static byte[] Body(ReadOnlySpan<byte> payload)
    {
        var body = new byte[payload.Length + s_embed.Length + 10]; // "[[" + payload + "], {}, " + embed + "]"
        var at = 0;
        "[["u8.CopyTo(body);
        at += 2;
        payload.CopyTo(body.AsSpan(at));
        at += payload.Length;
        "], {}, "u8.CopyTo(body.AsSpan(at));
        at += 7;
        s_embed.CopyTo(body.AsSpan(at));
        at += s_embed.Length;
        body[at] = (byte)']';
        return body;
    }

    /// <summary>The <c>argsrepr</c> header: the argument list as text, cut at 256 characters like Celery's own repr limit of its logs.</summary>
    private static string ArgsRepr(ReadOnlySpan<byte> payload)
    {
        var text = "[" + Encoding.UTF8.GetString(payload.Length > 254 ? payload[..254] : payload) + (payload.Length > 254 ? "...]" : "]");
        return text;
    }

    private void WriteHeaders(Utf8JsonWriter w, string id, ReadOnlySpan<byte> payload)
    {
        w.WriteString("lang", "py");
        w.WriteString("task", _task);
        w.WriteString("id", id);
        w.WriteNull("shadow");
        w.WriteNull("eta");
        w.WriteNull("expires");
        w.WriteNull("group");
        w.WriteNull("group_index");
        w.WriteNumber("retries", 0);
        w.WriteStartArray("timelimit");
        w.WriteNullValue();
        w.WriteNullValue();
        w.WriteEndArray();
        w.WriteString("root_id", id);
        w.WriteNull("parent_id");
        w.WriteString("argsrepr", ArgsRepr(payload));
        w.WriteString("kwargsrepr", "{}");
        w.WriteString("origin", _origin);
        w.WriteBoolean("ignore_result", false);
    }

    /// <summary>kombu's Redis envelope of the task message (see the class summary).</summary>
    internal byte[] RedisEnvelope(string id, ReadOnlySpan<byte> payload)
    {
        var buffer = new ArrayBufferWriter<byte>(payload.Length * 2 + 1024);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteBase64String("body", Body(payload));
            w.WriteString("content-encoding", "utf-8");
            w.WriteString("content-type", "application/json");
            w.WriteStartObject("headers");
            WriteHeaders(w, id, payload);
            w.WriteEndObject();
            w.WriteStartObject("properties");
            w.WriteString("correlation_id", id);
            w.WriteString("reply_to", "");
            w.WriteNumber("delivery_mode", 2);
            w.WriteStartObject("delivery_info");
            w.WriteString("exchange", "");
            w.WriteString("routing_key", _queue);
            w.WriteEndObject();
            w.WriteNumber("priority", 0);
            w.WriteString("body_encoding", "base64");
            w.WriteString("delivery_tag", Guid.NewGuid().ToString());
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The headers as AMQP field values (strings, null as void, the time limit as an array).</summary>
    internal Dictionary<string, object?> AmqpHeaders(string id, ReadOnlySpan<byte> payload) => new()
    {
        ["lang"] = "py",
        ["task"] = _task,
        ["id"] = id,
        ["shadow"] = null,
        ["eta"] = null,
        ["expires"] = null,
        ["group"] = null,
        ["group_index"] = null,
        ["retries"] = 0,
        ["timelimit"] = new List<object?> { null, null },
        ["root_id"] = id,
        ["parent_id"] = null,
        ["argsrepr"] = ArgsRepr(payload),
        ["kwargsrepr"] = "{}",
        ["origin"] = _origin,
        ["ignore_result"] = false,
    };

    public ValueTask<ForwardResult> SendAsync(ForwardItem item, CancellationToken cancellationToken)
    {
        if (_redis is not null)
        {
            return _redis.WriteAsync((Queue: _queue, Envelope: RedisEnvelope(item.EventId, item.Payload.Span)),
                static (db, s) => db.ListLeftPushAsync(s.Queue, s.Envelope), cancellationToken);
        }
        var properties = new BasicProperties
        {
            Persistent = true,
            ContentType = "application/json",
            ContentEncoding = "utf-8",
            CorrelationId = item.EventId,
            Priority = 0,
            Headers = AmqpHeaders(item.EventId, item.Payload.Span),
        };
        return _amqp!.PublishAsync(_queue, _queue, properties, Body(item.Payload.Span), cancellationToken);
    }

    public void Dispose()
    {
        _redis?.Dispose();
        _amqp?.Dispose();
    }
}
