using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace FastIngest.Destinations;

/// <summary>
/// One destination's AMQP 0-9-1 connection and channel (the official RabbitMQ.Client 7), opened at the first delivery
/// attempt, with publisher confirms tracked by the client: a publish completes only once the broker confirmed it (for
/// a persistent message to a durable or quorum queue, once it is on disk, or on a quorum of nodes), and throws when
/// it was nacked or returned as unroutable. A connection or channel that died is dropped and opened again at the next
/// attempt. <paramref name="declare"/> runs once per new channel (exchange and queue declarations).
/// </summary>
internal sealed class AmqpConnection(Uri uri, TimeSpan timeout, Func<IChannel, CancellationToken, Task>? declare) : IAsyncDisposable, IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private IConnection? _connection;
    private IChannel? _channel;

    /// <summary>The URI without its credentials.</summary>
    public string Describe { get; } = new UriBuilder(uri) { UserName = "", Password = "" }.Uri.ToString();

    /// <summary>The open channel, opening the connection and the channel (and declaring) when there is none.</summary>
    public async ValueTask<IChannel> ChannelAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _channel) is { IsOpen: true } open)
            return open;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_channel is { IsOpen: true })
                return _channel;
            await DropAsync().ConfigureAwait(false);
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(timeout);
            var factory = new ConnectionFactory
            {
                Uri = uri,
                // Our own reconnect (at the next attempt) replaces the client's: a recovered channel would not run
                // the declarations again, and the attempt in progress fails and is retried either way.
                AutomaticRecoveryEnabled = false,
                RequestedConnectionTimeout = timeout,
                ClientProvidedName = "fastingest",
            };
            _connection = await factory.CreateConnectionAsync(cts.Token).ConfigureAwait(false);
            var channel = await _connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), cts.Token).ConfigureAwait(false);
            if (declare is not null)
                await declare(channel, cts.Token).ConfigureAwait(false);
            Volatile.Write(ref _channel, channel);
            return channel;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Forgets a channel that failed, so that the next attempt opens a new one. Waits at most the attempt
    /// <c>Timeout</c> for another attempt that is connecting (which replaces the channel anyway).
    /// </summary>
    public async Task ResetAsync()
    {
        if (!await _gate.WaitAsync(timeout).ConfigureAwait(false))
            return;
        try
        {
            await DropAsync().ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Closes the channel and the connection without waiting on the broker: the connection is aborted (no close
    /// handshake: after a broker died or was cut off, nobody would answer it), and each step is given at most the
    /// attempt <c>Timeout</c>, so a dead peer never holds the gate, and with it every later attempt.
    /// </summary>
    private async Task DropAsync()
    {
        var channel = _channel;
        var connection = _connection;
        _channel = null;
        _connection = null;
        if (connection is not null)
            await Bounded(connection.AbortAsync(Constants.ReplySuccess, "fastingest: dropping a failed connection", timeout)).ConfigureAwait(false);
        if (channel is not null)
            await Bounded(channel.DisposeAsync().AsTask()).ConfigureAwait(false);
        if (connection is not null)
            await Bounded(connection.DisposeAsync().AsTask()).ConfigureAwait(false);
    }

    private async Task Bounded(Task step)
    {
        try
        {
            await step.WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RabbitMQClientException or OperationInterruptedException or IOException or ObjectDisposedException or TimeoutException or OperationCanceledException)
        {
            // Abandoned: the client's own I/O loop ends with the socket.
        }
    }

    /// <summary>
    /// One delivery attempt that is one publish: <paramref name="body"/> to <paramref name="exchange"/> under
    /// <paramref name="routingKey"/>, mandatory (an unroutable message is returned, not dropped), delivered once the
    /// broker confirmed it. A nack or a return is a refusal of the broker, no connection a connection failure: both are
    /// retried, and a failure other than a refusal drops the channel, so that the next attempt opens a new one. The
    /// whole attempt (connecting, declaring, publishing and waiting for the confirm) has the destination's
    /// <c>Timeout</c>: a confirm that never comes (a broker that died or hung with the publish in flight) is a
    /// timed-out attempt, retried on a new channel, never a delivery worker waiting forever.
    /// </summary>
    public async ValueTask<Dispatch.ForwardResult> PublishAsync(string exchange, string routingKey, BasicProperties properties, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        attempt.CancelAfter(timeout);
        try
        {
            var channel = await ChannelAsync(attempt.Token).ConfigureAwait(false);
            await channel.BasicPublishAsync(exchange, routingKey, mandatory: true, properties, body, attempt.Token).ConfigureAwait(false);
            return Dispatch.ForwardResult.Ok;
        }
        catch (Exception ex) when (IsAmqpFailure(ex) || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            if (ex is not PublishException)
                await ResetAsync().ConfigureAwait(false);
            return Failure(ex);
        }
    }

    private static Dispatch.ForwardResult Failure(Exception ex) => ex switch
    {
        PublishException p => new(false, p.IsReturn ? "amqp: returned unroutable (no queue bound for the routing key)" : "amqp: nacked by the broker"),
        BrokerUnreachableException or ConnectFailureException or IOException or System.Net.Sockets.SocketException => new(false, $"amqp: {ex.Message}", ConnectionFailed: true),
        AlreadyClosedException or OperationInterruptedException => new(false, $"amqp: {ex.Message}", ConnectionFailed: true),
        OperationCanceledException or TimeoutException => new(false, "amqp: timed out (no connection, or no confirm, within Timeout)"),
        _ => new(false, $"amqp: {ex.GetType().Name}: {ex.Message}"),
    };

    /// <summary>Whether <paramref name="ex"/> is a failure of the broker or the connection (not a bug of ours).</summary>
    private static bool IsAmqpFailure(Exception ex)
        => ex is RabbitMQClientException or OperationInterruptedException or IOException or System.Net.Sockets.SocketException or TimeoutException;

    public async ValueTask DisposeAsync()
    {
        await DropAsync().ConfigureAwait(false);
        _gate.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
