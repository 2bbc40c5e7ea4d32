using System.Globalization;
using System.Text;
using FastIngest.Configuration;

namespace FastIngest.Destinations;

/// <summary>
/// One destination of a tenant as it runs: its options checked, its delivery policy resolved against the tenant's
/// <c>Forward</c> defaults, its filter parsed, and its <see cref="Id"/>: the 32-bit FNV-1a of its name, which the
/// event log's ack records and replayed batches carry (so reordering the list in the configuration changes nothing;
/// renaming a destination makes it a new one, which gets every undelivered event again).
/// </summary>
internal sealed class DestinationSpec
{
    /// <summary>The name of the destination a tenant without <c>Destinations</c> has (from its <c>Forward</c> keys).</summary>
    public const string ForwardName = "forward";

    private DestinationSpec(string name, DestinationKind kind, DestinationOptions options, ForwardOptions policy, EventFilter filter, string configKey, bool first, string? path, bool fromForward = false)
    {
        FromForward = fromForward;
        Name = name;
        NameUtf8 = Encoding.UTF8.GetBytes(name);
        Id = IdOf(name);
        Kind = kind;
        Options = options;
        Policy = policy;
        Filter = filter;
        ConfigKey = configKey;
        IsFirst = first;
        FilePath = path;
    }

    /// <summary>The destination's name (unique per tenant).</summary>
    public string Name { get; }

    /// <summary><see cref="Name"/> as UTF-8.</summary>
    public byte[] NameUtf8 { get; }

    /// <summary>The id acks carry: FNV-1a 32 of the name, never 0 (0 is "no destination named": an ack written before destinations existed, which counts for the first).</summary>
    public uint Id { get; }

    /// <summary>The kind.</summary>
    public DestinationKind Kind { get; }

    /// <summary>The kind's keys as configured.</summary>
    public DestinationOptions Options { get; }

    /// <summary>Concurrency, timeouts, retries, breaker: the destination's keys over the tenant's <c>Forward</c> ones.</summary>
    public ForwardOptions Policy { get; }

    /// <summary>Which events go here.</summary>
    public EventFilter Filter { get; }

    /// <summary>The configuration section, e.g. <c>FastIngest:Tenants:0:Destinations:1</c> (or <c>...:Forward</c>), for error messages.</summary>
    public string ConfigKey { get; }

    /// <summary>Whether this is the destination a tenant without <c>Destinations</c> has, described by its <c>Forward</c> keys.</summary>
    public bool FromForward { get; }

    /// <summary>
    /// Whether its deliveries need the change's <c>field</c> as text (<see cref="Dispatch.ForwardItem.Field"/>): only a
    /// RabbitMQ routing key template with <c>{field}</c> does, so the others do not copy it out per event.
    /// </summary>
    public bool NeedsField => Kind == DestinationKind.RabbitMQ && Options.RoutingKey?.Contains("{field}", StringComparison.Ordinal) == true;

    /// <summary>Whether this is the tenant's first destination, which also owns acks that name none.</summary>
    public bool IsFirst { get; }

    /// <summary>The JSONL file of a File destination (absolute, under <c>DataDir</c> when not configured); null for other kinds.</summary>
    public string? FilePath { get; }

    /// <summary>The id of destination <paramref name="name"/> (see <see cref="Id"/>).</summary>
    public static uint IdOf(string name)
    {
        var hash = Internal.Fnv1a.Hash32(Encoding.UTF8.GetBytes(name));
        return hash == 0 ? 1 : hash;
    }

    /// <summary>
    /// The destinations of <paramref name="tenant"/> (section <paramref name="key"/>, <c>FastIngest:Tenants:{i}</c>), checked: a tenant without
    /// <c>Destinations</c> has one, <see cref="ForwardName"/>, from its <c>Forward</c> keys.
    /// </summary>
    /// <exception cref="ConfigurationException">The first bad destination key.</exception>
    public static IReadOnlyList<DestinationSpec> Resolve(TenantOptions tenant, string key, string dataDir)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        var outDir = Path.Combine(Path.GetFullPath(dataDir, Environment.CurrentDirectory), "out");
        if (tenant.Destinations.Count == 0)
        {
            var f = tenant.Forward;
            var legacy = new DestinationOptions { Name = ForwardName, Kind = string.IsNullOrEmpty(f.Url) ? nameof(DestinationKind.File) : nameof(DestinationKind.Webhook), Url = f.Url, Secret = f.Secret, Secrets = f.Secrets, SecretKeyId = f.SecretKeyId };
            var kind = string.IsNullOrEmpty(f.Url) ? DestinationKind.File : DestinationKind.Webhook;
            return [new DestinationSpec(ForwardName, kind, legacy, legacy.Policy(f), EventFilter.All, $"{key}:Forward", true,
                kind == DestinationKind.File ? Path.Combine(outDir, tenant.Id + ".jsonl") : null, fromForward: true)];
        }
        var specs = new List<DestinationSpec>(tenant.Destinations.Count);
        var ids = new Dictionary<uint, string>();
        for (var j = 0; j < tenant.Destinations.Count; j++)
        {
            var d = tenant.Destinations[j];
            var k = string.Create(CultureInfo.InvariantCulture, $"{key}:Destinations:{j}");
            if (string.IsNullOrEmpty(d.Name) || d.Name.Length > 64 || !d.Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
                throw new ConfigurationException($"{k}:Name", "must be 1-64 of letters, digits, '-', '_'");
            if (ids.TryGetValue(IdOf(d.Name), out var other))
                throw new ConfigurationException($"{k}:Name", other == d.Name ? $"'{d.Name}' is used by another destination of this tenant" : $"'{d.Name}' hashes like '{other}'; rename one");
            ids.Add(IdOf(d.Name), d.Name);
            if (!Enum.TryParse<DestinationKind>(d.Kind, ignoreCase: true, out var kind) || !Enum.IsDefined(kind) || int.TryParse(d.Kind, out _))
                throw new ConfigurationException($"{k}:Kind", "must be one of Webhook, Chatwoot, BullMQ, Celery, RabbitMQ, RedisStream, File");
            EventFilter filter;
            try
            {
                filter = EventFilter.Parse(d.Filter);
            }
            catch (FormatException ex)
            {
                throw new ConfigurationException($"{k}:Filter", ex.Message);
            }
            if (kind == DestinationKind.Chatwoot && filter.IsAll)
                filter = EventFilter.Parse("kinds=message,status"); // Chatwoot reads messages and statuses of numbers it knows, nothing else
            string? path = null;
            switch (kind)
            {
                case DestinationKind.Webhook:
                case DestinationKind.Chatwoot:
                    if (!Uri.TryCreate(d.Url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
                        throw new ConfigurationException($"{k}:Url", "must be an absolute http or https URL");
                    if (string.IsNullOrEmpty(d.Secret) && d.Secrets.Count == 0)
                        throw new ConfigurationException($"{k}:Secret", kind == DestinationKind.Chatwoot ? "is required: the Chatwoot installation's WHATSAPP_APP_SECRET" : "is required: the key of X-Hub-Signature-256");
                    break;
                case DestinationKind.BullMQ:
                    Require(d.ConnectionString, $"{k}:ConnectionString", "a Redis configuration string, e.g. 127.0.0.1:6379");
                    Require(d.Queue, $"{k}:Queue", "the BullMQ queue name");
                    if (d.Queue!.Contains(':', StringComparison.Ordinal))
                        throw new ConfigurationException($"{k}:Queue", "must not contain ':' (BullMQ separates key parts with it)");
                    if (d.Prefix is { Length: 0 })
                        throw new ConfigurationException($"{k}:Prefix", "must not be empty (BullMQ's default is bull)");
                    if (!string.IsNullOrWhiteSpace(d.JobOptions))
                    {
                        try
                        {
                            using var doc = System.Text.Json.JsonDocument.Parse(d.JobOptions);
                            if (doc.RootElement.ValueKind != System.Text.Json.JsonValueKind.Object)
                                throw new ConfigurationException($"{k}:JobOptions", "must be a JSON object of BullMQ job options");
                        }
                        catch (System.Text.Json.JsonException ex)
                        {
                            throw new ConfigurationException($"{k}:JobOptions", $"is not JSON: {ex.Message}");
                        }
                    }
                    break;
                case DestinationKind.Celery:
                    Require(d.Task, $"{k}:Task", "the Celery task name, e.g. tasks.handle_whatsapp_event");
                    if (!Uri.TryCreate(d.ConnectionString, UriKind.Absolute, out var broker) || broker.Scheme is not ("redis" or "amqp" or "pyamqp"))
                        throw new ConfigurationException($"{k}:ConnectionString", "must be a Celery broker_url: redis://host:port/db or amqp://user:pass@host:port/vhost");
                    break;
                case DestinationKind.RabbitMQ:
                    if (!Uri.TryCreate(d.ConnectionString, UriKind.Absolute, out var amqp) || amqp.Scheme is not ("amqp" or "amqps"))
                        throw new ConfigurationException($"{k}:ConnectionString", "must be an AMQP URI, e.g. amqp://guest:guest@127.0.0.1:5672/");
                    if (d.Exchange is null && string.IsNullOrEmpty(d.Queue))
                        throw new ConfigurationException($"{k}:Exchange", "is required (\"\" for the default exchange, with Queue)");
                    break;
                case DestinationKind.RedisStream:
                    Require(d.ConnectionString, $"{k}:ConnectionString", "a Redis configuration string, e.g. 127.0.0.1:6379");
                    Require(d.Stream, $"{k}:Stream", "the stream key");
                    if (d.MaxLength < 0)
                        throw new ConfigurationException($"{k}:MaxLength", "must be 0 (no cap) or more");
                    break;
                case DestinationKind.File:
                    path = string.IsNullOrEmpty(d.Path) ? Path.Combine(outDir, $"{tenant.Id}.{d.Name}.jsonl") : Path.GetFullPath(d.Path, Environment.CurrentDirectory);
                    break;
            }
            specs.Add(new DestinationSpec(d.Name, kind, d, d.Policy(tenant.Forward), filter, k, j == 0, path));
        }
        return specs;
    }

    private static void Require(string? value, string key, string what)
    {
        if (string.IsNullOrWhiteSpace(value))
            throw new ConfigurationException(key, $"is required: {what}");
    }
}
