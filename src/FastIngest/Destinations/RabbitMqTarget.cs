using System.Text;
using FastIngest.Dispatch;
using RabbitMQ.Client;

namespace FastIngest.Destinations;

/// <summary>
/// AMQP 0-9-1 publish of each event's Meta-shaped payload to <c>Exchange</c> with routing key <c>RoutingKey</c>
/// (<c>{tenant}</c>, <c>{kind}</c>, <c>{field}</c> replaced; default <c>whatsapp.{tenant}.{kind}</c>), persistent
/// (<c>delivery_mode</c> 2), <c>content_type</c> <c>application/json</c>, <c>message_id</c> the event id, header
/// <c>x-fastingest-tenant</c>, and mandatory. Delivered = the broker's publisher confirm (RabbitMQ's "Consumer
/// Acknowledgements and Publisher Confirms"): the ack record is written only after it; a nack, a return (no queue
/// bound) or a lost connection is a retry. So nothing confirmed is lost, and an event is published twice only when
/// the confirm or our ack was lost in a crash or a cut connection (consumers dedupe by <c>message_id</c>).
/// With <c>Queue</c> set, declares the exchange (topic, durable; unless it is the default exchange "") and the queue
/// (a quorum queue, or a classic durable one with <c>QuorumQueue=false</c>) bound with the routing key's pattern
/// (<c>{...}</c> parts as <c>*</c>).
/// </summary>
internal sealed class RabbitMqTarget : IForwardTarget
{
    private readonly AmqpConnection _amqp;
    private readonly string _exchange;
    private readonly string _routingKey;
    private readonly string _tenant;

    public RabbitMqTarget(Uri uri, string tenant, string exchange, string? routingKey, string? queue, bool quorum, TimeSpan timeout)
    {
        _tenant = tenant;
        _exchange = exchange;
        _routingKey = string.IsNullOrEmpty(routingKey) ? "whatsapp.{tenant}.{kind}" : routingKey;
        _amqp = new AmqpConnection(uri, timeout, string.IsNullOrEmpty(queue) ? null : async (channel, ct) =>
        {
            if (exchange.Length > 0)
                await channel.ExchangeDeclareAsync(exchange, ExchangeType.Topic, durable: true, autoDelete: false, arguments: null, cancellationToken: ct).ConfigureAwait(false);
            var arguments = quorum ? new Dictionary<string, object?> { ["x-queue-type"] = "quorum" } : null;
            await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, arguments: arguments, cancellationToken: ct).ConfigureAwait(false);
            if (exchange.Length > 0)
                await channel.QueueBindAsync(queue, exchange, BindingPattern(_routingKey.Replace("{tenant}", tenant, StringComparison.Ordinal)), arguments: null, cancellationToken: ct).ConfigureAwait(false);
        });
    }

    public string Describe => $"rabbitmq {_amqp.Describe} exchange '{_exchange}'";

    /// <summary>The routing key of an event: the template with <c>{tenant}</c>, <c>{kind}</c> and <c>{field}</c> replaced.</summary>
    internal static string RoutingKey(string template, string tenant, EventClass kind, string field)
        => template.Replace("{tenant}", tenant, StringComparison.Ordinal).Replace("{kind}", EventFilter.Name(kind), StringComparison.Ordinal).Replace("{field}", field, StringComparison.Ordinal);

    /// <summary>The binding pattern of a routing-key template: each <c>{...}</c> placeholder becomes <c>*</c>.</summary>
    internal static string BindingPattern(string template)
        => System.Text.RegularExpressions.Regex.Replace(template, @"\{[a-z]+\}", "*");

    public ValueTask<ForwardResult> SendAsync(ForwardItem item, CancellationToken cancellationToken)
    {
        var properties = new BasicProperties
        {
            Persistent = true,
            ContentType = "application/json",
            ContentEncoding = "utf-8",
            MessageId = item.EventId,
            Headers = new Dictionary<string, object?> { ["x-fastingest-tenant"] = Encoding.UTF8.GetBytes(_tenant) },
        };
        return _amqp.PublishAsync(_exchange, RoutingKey(_routingKey, _tenant, item.Class, item.Field), properties, item.Payload, cancellationToken);
    }

    public void Dispose() => _amqp.Dispose();
}
