namespace FastIngest.Configuration;

/// <summary>The kinds of destination (<c>Destinations:{j}:Kind</c>).</summary>
public enum DestinationKind
{
    /// <summary>An HTTP webhook (the bot): POST of the Meta-shaped payload, re-signed with <c>X-Hub-Signature-256</c>.</summary>
    Webhook,

    /// <summary>Chatwoot's WhatsApp Cloud channel route, <c>POST {Url}/webhooks/whatsapp/{display_phone_number}</c>.</summary>
    Chatwoot,

    /// <summary>One BullMQ job per event on <c>{Prefix}:{Queue}</c>, written as BullMQ's own job add writes it.</summary>
    BullMQ,

    /// <summary>One Celery task message (protocol v2) per event, over Redis or AMQP.</summary>
    Celery,

    /// <summary>AMQP 0-9-1 publish to an exchange, persistent, with publisher confirms.</summary>
    RabbitMQ,

    /// <summary><c>XADD {Stream} MAXLEN ~ N * ...</c>, one stream entry per event.</summary>
    RedisStream,

    /// <summary>One JSON line per event, appended to a file.</summary>
    File,
}

/// <summary>
/// <c>FastIngest:Tenants:{i}:Destinations:{j}</c>: one place a tenant's events go. Each destination has its own position
/// in the event log, its own acks, retries, backoff, circuit breaker, dead letters and metrics (label
/// <c>destination</c>). The delivery keys (<c>Concurrency</c>, <c>Timeout</c>, <c>MaxAttempts</c>, ...) mean what they
/// mean under <c>Forward</c>, and default to the tenant's <c>Forward</c> values.
/// </summary>
public sealed class DestinationOptions
{
    /// <summary><c>Name</c>: unique per tenant (letters, digits, '-', '_', at most 64); used in metrics, logs, the admin API and dead letters.</summary>
    public string Name { get; set; } = "";

    /// <summary><c>Kind</c>: one of <see cref="DestinationKind"/> (a string, so that a bad value is reported with its key).</summary>
    public string Kind { get; set; } = "";

    /// <summary><c>Url</c>: the webhook (Webhook), or the Chatwoot installation's base URL (Chatwoot).</summary>
    public string? Url { get; set; }

    /// <summary><c>Secret</c>: key of <c>X-Hub-Signature-256</c> (Webhook), or the Chatwoot installation's <c>WHATSAPP_APP_SECRET</c> (Chatwoot).</summary>
    public string? Secret { get; set; }

    /// <summary><c>Secrets:{n}</c>: <see cref="Secret"/> as a list for a rotation; signed with the first (see <see cref="ForwardOptions.Secrets"/>).</summary>
    public List<string> Secrets { get; set; } = [];

    /// <summary><c>SecretKeyId</c>: the value of <c>X-FastIngest-Signature-Key</c> (see <see cref="ForwardOptions.SecretKeyId"/>).</summary>
    public string? SecretKeyId { get; set; }

    /// <summary>
    /// <c>ConnectionString</c>: BullMQ and RedisStream, a StackExchange.Redis configuration string (<c>127.0.0.1:6379</c>);
    /// RabbitMQ, an AMQP URI (<c>amqp://user:pass@host:5672/vhost</c>); Celery, its broker URL exactly as Celery's own
    /// <c>broker_url</c> (<c>redis://host:port/0</c> or <c>amqp://user:pass@host:port/vhost</c>).
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary><c>Queue</c>: the BullMQ queue, the Celery queue (default <c>celery</c>), or the RabbitMQ queue to declare and bind (optional).</summary>
    public string? Queue { get; set; }

    /// <summary><c>Prefix</c>: BullMQ's key prefix (default <c>bull</c>; <c>{name}</c> for a Redis Cluster hash tag).</summary>
    public string? Prefix { get; set; }

    /// <summary><c>JobName</c>: the BullMQ job name; default the event kind (<c>message</c>, <c>status</c>, <c>change</c>, <c>lifecycle</c>).</summary>
    public string? JobName { get; set; }

    /// <summary>
    /// <c>JobOptions</c>: BullMQ job options as a JSON object, merged into each job's <c>opts</c> (e.g.
    /// <c>{"attempts":3,"backoff":{"type":"exponential","delay":1000},"removeOnComplete":1000}</c>); <c>jobId</c> is always the event's.
    /// </summary>
    public string? JobOptions { get; set; }

    /// <summary><c>Task</c>: the Celery task name, e.g. <c>tasks.handle_whatsapp_event</c>.</summary>
    public string? Task { get; set; }

    /// <summary><c>Exchange</c>: the RabbitMQ exchange ("" is the default exchange, which routes by queue name).</summary>
    public string? Exchange { get; set; }

    /// <summary>
    /// <c>RoutingKey</c>: the RabbitMQ routing key template; <c>{tenant}</c>, <c>{kind}</c> and <c>{field}</c> are
    /// replaced per event. Default <c>whatsapp.{tenant}.{kind}</c>.
    /// </summary>
    public string? RoutingKey { get; set; }

    /// <summary><c>QuorumQueue</c>: RabbitMQ only; declare <see cref="Queue"/> as a quorum queue (durable) instead of a classic durable queue. Default true.</summary>
    public bool QuorumQueue { get; set; } = true;

    /// <summary><c>Stream</c>: the Redis stream key (RedisStream).</summary>
    public string? Stream { get; set; }

    /// <summary><c>MaxLength</c>: the approximate cap of the stream (<c>MAXLEN ~</c>); 0 for none. Default 1,000,000 entries.</summary>
    public long MaxLength { get; set; } = 1_000_000;

    /// <summary><c>Path</c>: the JSONL file (File); default <c>DataDir/out/{tenant}.{name}.jsonl</c>.</summary>
    public string? Path { get; set; }

    /// <summary>
    /// <c>Filter</c>: which events go here (README, "Filters"): clauses <c>kinds=</c>, <c>fields=</c>, <c>types=</c>
    /// and <c>statuses=</c>, separated by <c>;</c>, each a comma-separated list. Empty: every event (Chatwoot: messages
    /// and statuses).
    /// </summary>
    public string? Filter { get; set; }

    /// <summary><c>Concurrency</c> (see <see cref="ForwardOptions.Concurrency"/>); default the tenant's <c>Forward:Concurrency</c>.</summary>
    public int? Concurrency { get; set; }

    /// <summary><c>QueueCapacity</c>; default the tenant's <c>Forward:QueueCapacity</c>.</summary>
    public int? QueueCapacity { get; set; }

    /// <summary><c>Timeout</c>: per delivery attempt; default the tenant's <c>Forward:Timeout</c>.</summary>
    public TimeSpan? Timeout { get; set; }

    /// <summary><c>InitialBackoff</c>; default the tenant's <c>Forward:InitialBackoff</c>.</summary>
    public TimeSpan? InitialBackoff { get; set; }

    /// <summary><c>MaxBackoff</c>; default the tenant's <c>Forward:MaxBackoff</c>.</summary>
    public TimeSpan? MaxBackoff { get; set; }

    /// <summary><c>MaxBacklogAge</c>; default the tenant's <c>Forward:MaxBacklogAge</c>.</summary>
    public TimeSpan? MaxBacklogAge { get; set; }

    /// <summary><c>MaxAttempts</c>; default the tenant's <c>Forward:MaxAttempts</c>.</summary>
    public int? MaxAttempts { get; set; }

    /// <summary><c>MaxAge</c>; default the tenant's <c>Forward:MaxAge</c>.</summary>
    public TimeSpan? MaxAge { get; set; }

    /// <summary><c>BreakerFailures</c>; default the tenant's <c>Forward:BreakerFailures</c>.</summary>
    public int? BreakerFailures { get; set; }

    /// <summary><c>BreakDuration</c>; default the tenant's <c>Forward:BreakDuration</c>.</summary>
    public TimeSpan? BreakDuration { get; set; }

    /// <summary><c>StaleStatuses</c> (<c>Forward</c> or <c>Drop</c>); default the tenant's <c>Forward:StaleStatuses</c>.</summary>
    public string? StaleStatuses { get; set; }

    /// <summary>The delivery policy: these keys where set, <paramref name="defaults"/> (the tenant's <c>Forward</c>) elsewhere.</summary>
    public ForwardOptions Policy(ForwardOptions defaults)
    {
        ArgumentNullException.ThrowIfNull(defaults);
        return new ForwardOptions
        {
            Url = Url,
            Secret = Secret,
            Secrets = Secrets,
            SecretKeyId = SecretKeyId,
            Concurrency = Concurrency ?? defaults.Concurrency,
            QueueCapacity = QueueCapacity ?? defaults.QueueCapacity,
            Timeout = Timeout ?? defaults.Timeout,
            InitialBackoff = InitialBackoff ?? defaults.InitialBackoff,
            MaxBackoff = MaxBackoff ?? defaults.MaxBackoff,
            MaxBacklogAge = MaxBacklogAge ?? defaults.MaxBacklogAge,
            MaxAttempts = MaxAttempts ?? defaults.MaxAttempts,
            MaxAge = MaxAge ?? defaults.MaxAge,
            BreakerFailures = BreakerFailures ?? defaults.BreakerFailures,
            BreakDuration = BreakDuration ?? defaults.BreakDuration,
            StaleStatuses = StaleStatuses ?? defaults.StaleStatuses,
        };
    }
}
