using FastIngest.Configuration;
using FastIngest.Dispatch;
using FastIngest.Tenancy;
using Microsoft.Extensions.Logging;

namespace FastIngest.Destinations;

/// <summary>Builds the delivery client of one destination from its checked <see cref="DestinationSpec"/>.</summary>
internal static class DestinationTargets
{
    /// <summary>The target of <paramref name="destination"/>; <paramref name="http"/> is the engine's shared client for Webhook and Chatwoot.</summary>
    public static IForwardTarget Create(Tenant tenant, DestinationSpec destination, HttpClient http, TimeProvider time, ILoggerFactory loggers)
    {
        var o = destination.Options;
        var timeout = destination.Policy.Timeout;
        return destination.Kind switch
        {
            DestinationKind.Webhook => new WebhookTarget(http, new Uri(o.Url!), timeout, time),
            DestinationKind.Chatwoot => new ChatwootTarget(new WebhookTarget(http, new Uri(o.Url!), timeout, time), new Uri(o.Url!)),
            DestinationKind.File => new FileTarget(destination.FilePath!),
            DestinationKind.BullMQ => new BullMqTarget(new RedisConnection(o.ConnectionString!, timeout), string.IsNullOrEmpty(o.Prefix) ? "bull" : o.Prefix, o.Queue!, o.JobName, o.JobOptions, time),
            DestinationKind.Celery => new CeleryTarget(new Uri(o.ConnectionString!), o.Task!, o.Queue, timeout),
            DestinationKind.RabbitMQ => new RabbitMqTarget(new Uri(o.ConnectionString!), tenant.Id, o.Exchange ?? "", o.RoutingKey, o.Queue, o.QuorumQueue, timeout),
            DestinationKind.RedisStream => new RedisStreamTarget(new RedisConnection(o.ConnectionString!, timeout), o.Stream!, o.MaxLength, tenant.Id),
            _ => throw new ConfigurationException(destination.ConfigKey + ":Kind", $"{destination.Kind} has no delivery client"),
        };
    }
}
