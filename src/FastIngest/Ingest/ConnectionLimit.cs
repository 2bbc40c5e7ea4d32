using System.Text;
using Microsoft.AspNetCore.Connections;

namespace FastIngest.Ingest;

/// <summary>
/// <c>FastIngest:MaxConnections</c> as Kestrel connection middleware: counts open client connections, and answers a
/// connection past the limit with a complete HTTP/1.1 <c>503 Service Unavailable</c> with <c>Retry-After: 1</c> (Meta
/// retries; a load balancer moves on) before closing it, instead of letting a flood of idle or slow connections take
/// every socket and thread the server has. (Over TLS the answer cannot be read: such a client just sees the
/// connection close, as with Kestrel's own limit.)
/// </summary>
public sealed class ConnectionLimit(int max)
{
    private static readonly byte[] s_busy = Encoding.ASCII.GetBytes(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 55\r\nConnection: close\r\n\r\ntoo many connections (FastIngest:MaxConnections); retry");

    private int _open;
    private long _refused;

    /// <summary>Most connections open at once; 0 for no limit.</summary>
    public int Max { get; } = max;

    /// <summary>Client connections open now.</summary>
    public int Open => Volatile.Read(ref _open);

    /// <summary>Connections answered 503 since start.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>The middleware: <c>listenOptions.Use(next => c => limit.OnConnectionAsync(c, next))</c>.</summary>
    public async Task OnConnectionAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(next);
        if (Interlocked.Increment(ref _open) > Max && Max > 0)
        {
            Interlocked.Decrement(ref _open);
            Interlocked.Increment(ref _refused);
            await RefuseAsync(connection).ConfigureAwait(false);
            return;
        }
        try
        {
            await next(connection).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _open);
        }
    }

    private static async Task RefuseAsync(ConnectionContext connection)
    {
        try
        {
            using var cut = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await connection.Transport.Output.WriteAsync(s_busy, cut.Token).ConfigureAwait(false);
            await connection.Transport.Output.CompleteAsync().ConfigureAwait(false);
            // Read what the client sent with the connection (its request head), up to a second, so that closing does
            // not reset the connection before the client has read the answer.
            var read = await connection.Transport.Input.ReadAsync(cut.Token).ConfigureAwait(false);
            connection.Transport.Input.AdvanceTo(read.Buffer.End);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ConnectionResetException)
        {
            // the client went away, or kept sending: either way it is closed now
        }
    }
}
