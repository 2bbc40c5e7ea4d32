using System.Text;
using System.Text.Json;
using FastIngest.Dispatch;
using StackExchange.Redis;

namespace FastIngest.Destinations;

/// <summary>
/// One BullMQ job per event on queue <c>Queue</c> under key prefix <c>Prefix</c> (default <c>bull</c>), written the
/// way BullMQ's own <c>Queue.add</c> writes a standard job (bullmq 5, the <c>addStandardJob</c> Lua script), in one
/// script of our own so that it is atomic:
/// <list type="number">
/// <item><c>INCR {prefix}:{queue}:id</c>; <c>opts.maxLenEvents</c> read from <c>:meta</c> (set to 10000 if absent);</item>
/// <item>when the job hash <c>{prefix}:{queue}:{jobId}</c> exists already, a <c>duplicated</c> event and nothing else
/// (so an event delivered again after a crash is still one job);</item>
/// <item>else the job hash (<c>name</c>, <c>data</c>, <c>opts</c>, <c>timestamp</c>, <c>delay</c> 0, <c>priority</c> 0),
/// an <c>added</c> event, <c>LPUSH</c> of the id on <c>:wait</c> (<c>:paused</c> while the queue is paused), the
/// marker <c>ZADD :marker 0 "0"</c> that wakes blocked workers (unless paused or at its concurrency limit), and a
/// <c>waiting</c> event on the <c>:events</c> stream.</item>
/// </list>
/// <c>data</c> is the Meta-shaped payload itself (the JSON object), so a worker written for a receiver that enqueued
/// Meta's body works unchanged. The job name is <c>JobName</c>, or the event's kind (<c>message</c>, <c>status</c>,
/// <c>change</c>, <c>lifecycle</c>). The job id is the event id with <c>:</c> written as <c>|</c> (BullMQ refuses
/// custom ids with <c>:</c>, its key separator) and <c>|</c> as <c>%7C</c>; <see cref="JobId"/>. <c>opts</c> is
/// <c>{"jobId":...,"attempts":0}</c> merged with <c>JobOptions</c>. Delivered = Redis ran the script.
/// For Redis Cluster, give the prefix a hash tag (<c>{bull}</c>) so that every key of the queue is in one slot.
/// </summary>
internal sealed class BullMqTarget : IForwardTarget
{
    // KEYS: 1 wait, 2 paused, 3 meta, 4 id, 5 active, 6 events, 7 marker, 8 the job's hash.
    // ARGV: 1 job id, 2 name, 3 data, 4 opts, 5 timestamp (Unix ms).
    private const string Script = """
        local maxEvents = redis.call('HGET', KEYS[3], 'opts.maxLenEvents')
        if not maxEvents then
          maxEvents = 10000
          redis.call('HSET', KEYS[3], 'opts.maxLenEvents', maxEvents)
        end
        redis.call('INCR', KEYS[4])
        if redis.call('EXISTS', KEYS[8]) == 1 then
          redis.call('XADD', KEYS[6], 'MAXLEN', '~', maxEvents, '*', 'event', 'duplicated', 'jobId', ARGV[1])
          return 0
        end
        redis.call('HSET', KEYS[8], 'name', ARGV[2], 'data', ARGV[3], 'opts', ARGV[4], 'timestamp', ARGV[5], 'delay', 0, 'priority', 0)
        redis.call('XADD', KEYS[6], '*', 'event', 'added', 'jobId', ARGV[1], 'name', ARGV[2])
        local state = redis.call('HMGET', KEYS[3], 'paused', 'concurrency')
        local target, held = KEYS[1], false
        if state[1] then
          target, held = KEYS[2], true
        elseif state[2] and redis.call('LLEN', KEYS[5]) >= tonumber(state[2]) then
          held = true
        end
        redis.call('LPUSH', target, ARGV[1])
        if not held then
          redis.call('ZADD', KEYS[7], 0, '0')
        end
        redis.call('XADD', KEYS[6], 'MAXLEN', '~', maxEvents, '*', 'event', 'waiting', 'jobId', ARGV[1])
        return 1
        """;

    private static readonly string[] s_queueKeyNames = ["wait", "paused", "meta", "id", "active", "events", "marker"];
    private readonly RedisConnection _redis;
    private readonly string _queueKey;
    private readonly RedisKey[] _queueKeys;
    private readonly string? _jobName;
    private readonly JsonElement? _jobOptions;
    private readonly TimeProvider _time;

    public BullMqTarget(RedisConnection redis, string prefix, string queue, string? jobName, string? jobOptions, TimeProvider time)
    {
        _redis = redis;
        _queueKey = $"{prefix}:{queue}";
        _queueKeys = [.. s_queueKeyNames.Select(k => (RedisKey)$"{_queueKey}:{k}")];
        _jobName = jobName;
        _jobOptions = string.IsNullOrWhiteSpace(jobOptions) ? null : JsonDocument.Parse(jobOptions).RootElement.Clone();
        _time = time;
    }

    public string Describe => $"bullmq {_redis.Describe} {_queueKey}";

    /// <summary>The BullMQ job id of event <paramref name="eventId"/>: <c>|</c> as <c>%7C</c>, then <c>:</c> as <c>|</c> (reversible).</summary>
    public static string JobId(string eventId) => eventId.Replace("|", "%7C", StringComparison.Ordinal).Replace(':', '|');

    /// <summary>The <c>opts</c> field of the job hash: <c>jobId</c> and <c>attempts</c> (0, BullMQ's default) under <paramref name="extra"/>'s keys.</summary>
    internal static string Options(string jobId, JsonElement? extra)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("jobId", jobId);
            var attemptsGiven = false;
            if (extra is { } e)
            {
                foreach (var p in e.EnumerateObject())
                {
                    if (p.NameEquals("jobId"))
                        continue;
                    attemptsGiven |= p.NameEquals("attempts");
                    p.WriteTo(w);
                }
            }
            if (!attemptsGiven)
                w.WriteNumber("attempts", 0);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public ValueTask<ForwardResult> SendAsync(ForwardItem item, CancellationToken cancellationToken)
    {
        var jobId = JobId(item.EventId);
        var keys = new RedisKey[8];
        _queueKeys.CopyTo(keys, 0);
        keys[7] = $"{_queueKey}:{jobId}";
        RedisValue[] args =
        [
            jobId,
            _jobName ?? EventFilter.Name(item.Class),
            item.Payload,
            Options(jobId, _jobOptions),
            _time.GetUtcNow().ToUnixTimeMilliseconds(),
        ];
        return _redis.WriteAsync((Keys: keys, Args: args), static (db, s) => db.ScriptEvaluateAsync(Script, s.Keys, s.Args), cancellationToken);
    }

    public void Dispose() => _redis.Dispose();
}
