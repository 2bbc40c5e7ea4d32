using System.Net.Sockets;
using System.Text;

namespace FastIngest.Tests.Support;

/// <summary>
/// HTTP/1.1 over a bare socket, for requests <see cref="HttpClient"/> will not send: duplicated headers, bodies that
/// lie about their length, bodies that drip in a byte at a time.
/// </summary>
internal static class RawHttp
{
    /// <summary>
    /// Sends <paramref name="head"/> (request line and headers, without the blank line), then the body through
    /// <paramref name="writeBody"/>, and returns the response's status code, or 0 if the server closed the connection
    /// without one.
    /// </summary>
    public static async Task<int> SendAsync(Uri server, string head, Func<NetworkStream, Task>? writeBody = null, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        using var client = new TcpClient();
        await client.ConnectAsync(server.Host, server.Port, cts.Token);
        var stream = client.GetStream();
        var headBytes = Encoding.ASCII.GetBytes(head.Replace("\n", "\r\n", StringComparison.Ordinal) + "\r\n\r\n");
        try
        {
            await stream.WriteAsync(headBytes, cts.Token);
            if (writeBody is not null)
                await writeBody(stream);
        }
        catch (IOException)
        {
            // The server may answer and close before the whole body is sent (413, 408): read what it said.
        }
        var response = new StringBuilder();
        var buffer = new byte[4096];
        try
        {
            while (!response.ToString().Contains("\r\n", StringComparison.Ordinal))
            {
                var n = await stream.ReadAsync(buffer, cts.Token);
                if (n == 0)
                    break;
                response.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }
        }
        catch (IOException)
        {
        }
        var line = response.ToString();
        var parts = line.Split(' ', 3);
        return parts.Length >= 2 && line.StartsWith("HTTP/1.1 ", StringComparison.Ordinal) && int.TryParse(parts[1], out var status) ? status : 0;
    }
}
