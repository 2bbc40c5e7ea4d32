using System.Net;
using System.Net.Sockets;
using System.Text;
using FastIngest.Ingest;
using FastIngest.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace FastIngest.Tests.Ingest;

/// <summary>
/// Hostile or broken clients cannot exhaust the server: bodies that declare megabytes and drip bytes cost what they
/// sent, in-flight body bytes and connections are bounded (503 with Retry-After past them), a payload with very many
/// events is linear (or quarantined past MaxEventsPerPayload), and a request waiting out log backpressure is not
/// parsed again and again. Real server on loopback, raw sockets for the clients HttpClient will not be.
/// </summary>
[Collection(nameof(RunsAlone))]
public sealed class ResourceLimitTests : BotTest
{

    /// <summary>A connection that sent a POST's head and the first part of its body, and holds the rest.</summary>
    private sealed class Dripper : IDisposable
    {
        private readonly TcpClient _client = new();
        private readonly byte[] _body;
        private int _sent;

        private Dripper(byte[] body) => _body = body;

        public NetworkStream Stream => _client.GetStream();

        public static async Task<Dripper> StartAsync(Uri server, string tenant, byte[] body, int declared, int firstBytes, string secret = "app-secret")
        {
            var d = new Dripper(body);
            await d._client.ConnectAsync(server.Host, server.Port);
            var head = $"POST /webhooks/{tenant} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n{WebhookSignature.HeaderName}: {WebhookSignature.Sign(secret, body)}\r\n\r\n";
            await d.Stream.WriteAsync(Encoding.ASCII.GetBytes(head));
            await d.SendAsync(firstBytes);
            return d;
        }

        public async Task SendAsync(int bytes)
        {
            var n = Math.Min(bytes, _body.Length - _sent);
            await Stream.WriteAsync(_body.AsMemory(_sent, n));
            _sent += n;
        }

        /// <summary>True when the server has closed this connection (checked once, now: the caller sent a sentinel first).</summary>
        public bool ClosedByServer()
        {
            try
            {
                return _client.Client.Poll(0, SelectMode.SelectRead) && _client.Client.Available == 0;
            }
            catch (SocketException)
            {
                return true;
            }
        }

        /// <summary>Sends the rest of the body (ignoring a closed connection) and reads the status line and headers.</summary>
        public async Task<string> FinishAsync()
        {
            try
            {
                await SendAsync(int.MaxValue);
            }
            catch (IOException)
            {
                // answered and closed before the whole body: read the answer
            }
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var response = new StringBuilder();
            var buffer = new byte[4096];
            try
            {
                while (!response.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    var n = await Stream.ReadAsync(buffer, cts.Token);
                    if (n == 0)
                        break;
                    response.Append(Encoding.ASCII.GetString(buffer, 0, n));
                }
            }
            catch (IOException)
            {
            }
            return response.ToString();
        }

        public void Dispose() => _client.Dispose();
    }

    private static byte[] Padded(string wamid, int bytes)
    {
        var text = new string('x', Math.Max(1, bytes - 420));
        return Payloads.Text(wamid, text: text);
    }

    [Fact]
    public async Task Clients_declaring_4_MiB_and_dripping_cost_only_what_they_sent_under_a_256_MiB_heap()
    {
        // Measured on the old code: the buffer was rented from the declared Content-Length (an 8 MiB array each), so
        // under a container-sized GC heap these requests died of OutOfMemoryException.
        const int drippers = 100;
        using var server = await ServerProcessHost.StartAsync(
            ServerProcessHost.OneTenant(Dir.Path, Bot.Url,
                "--FastIngest:MaxBodyBytes=4194304",
                "--FastIngest:Storage:LogMemoryBytes=16777216",
                "--FastIngest:Storage:DedupeMemoryBytes=4194304",
                "--FastIngest:Storage:DedupeIndexBytes=65536",
                "--FastIngest:Storage:StateMemoryBytes=1048576",
                "--FastIngest:Storage:StateIndexBytes=65536"),
            new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = "0x10000000" });
        var open = new List<Dripper>();
        try
        {
            for (var i = 0; i < drippers; i++)
                open.Add(await Dripper.StartAsync(server.Url, "t1", Padded($"wamid.DRIP{i:D3}", 4096), declared: 4 * 1024 * 1024, firstBytes: 1024));

            // Legitimate traffic alongside: every one is answered 200 and delivered (the sentinel for the checks below).
            using var client = new HttpClient { BaseAddress = server.Url };
            for (var i = 0; i < 20; i++)
            {
                using var response = await client.SendAsync(Payloads.Webhook("t1", Payloads.Text($"wamid.LEGIT{i:D2}"), "app-secret"));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
            await Bot.WaitForDeliveredAsync(20);

            Assert.DoesNotContain(open, d => d.ClosedByServer());
            Assert.DoesNotContain(server.Output, line => line.Contains("OutOfMemory", StringComparison.Ordinal));
            Assert.False(server.Process.HasExited);
        }
        finally
        {
            foreach (var d in open)
                d.Dispose();
        }
    }

    [Fact]
    public async Task Body_bytes_in_flight_are_bounded_and_past_the_bound_the_answer_is_503_with_Retry_After()
    {
        // MaxBodyBytes 256 KiB (the test server's): each dripper's buffer grows to 256 KiB + 1 for its 200 KB body,
        // so a 1 MiB budget holds three of them at once.
        await using var server = await IngestServer.StartAsync(Dir.Path, [new TestTenant("t1", ForwardUrl: Bot.Url)],
            new Dictionary<string, string?> { ["FastIngest:MaxInFlightBodyBytes"] = (1 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture) });
        var url = server.Client.BaseAddress!;
        var bodies = Enumerable.Range(0, 12).Select(i => Padded($"wamid.BUDGET{i:D2}", 200_000)).ToList();
        var open = new List<Dripper>();
        try
        {
            foreach (var body in bodies)
                open.Add(await Dripper.StartAsync(url, "t1", body, body.Length, firstBytes: 150_000));
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (server.Engine.BodyBudget.Used < 3 * ((256 * 1024) + 1))
            {
                Assert.True(DateTime.UtcNow < deadline, $"budget used: {server.Engine.BodyBudget.Used}");
                await Task.Delay(10);
            }
            Assert.InRange(server.Engine.BodyBudget.Used, 0, 1 << 20);

            var answers = await Task.WhenAll(open.Select(d => d.FinishAsync()));
            var busy = answers.Count(a => a.StartsWith("HTTP/1.1 503", StringComparison.Ordinal) && a.Contains("Retry-After: 1", StringComparison.Ordinal));
            var ok = answers.Count(a => a.StartsWith("HTTP/1.1 200", StringComparison.Ordinal));
            Assert.True(busy >= 1, string.Join(" | ", answers.Select(a => a.Split("\r\n")[0])));
            Assert.True(ok >= 3, string.Join(" | ", answers.Select(a => a.Split("\r\n")[0])));
            Assert.Equal(12, busy + ok);
        }
        finally
        {
            foreach (var d in open)
                d.Dispose();
        }

        // Nothing is held once they are answered: a request gets through again.
        using var after = await server.PostAsync("t1", Payloads.Text("wamid.AFTER"), "app-secret");
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        Assert.Equal(0, server.Engine.BodyBudget.Used);
    }

    [Fact]
    public async Task Connections_past_MaxConnections_get_503_with_Retry_After()
    {
        await using var server = await IngestServer.StartAsync(Dir.Path, [new TestTenant("t1", ForwardUrl: Bot.Url)],
            new Dictionary<string, string?> { ["FastIngest:MaxConnections"] = "4" });
        var url = server.Client.BaseAddress!;
        var limit = GetLimit(server);
        var held = new List<Dripper>();
        try
        {
            for (var i = 0; i < 4; i++)
                held.Add(await Dripper.StartAsync(url, "t1", Payloads.Text($"wamid.HOLD{i}"), 1000, firstBytes: 10));
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (limit.Open < 4)
            {
                Assert.True(DateTime.UtcNow < deadline, $"{limit.Open} connections open");
                await Task.Delay(10);
            }
            Assert.Equal(503, await RawHttp.SendAsync(url, "GET /healthz HTTP/1.1\nHost: x"));
            Assert.Equal(1, limit.Refused);
        }
        finally
        {
            foreach (var d in held)
                d.Dispose();
        }
        var left = DateTime.UtcNow.AddSeconds(30);
        while (limit.Open > 0)
        {
            Assert.True(DateTime.UtcNow < left, $"{limit.Open} connections still open");
            await Task.Delay(10);
        }
        Assert.Equal(200, await RawHttp.SendAsync(url, "GET /healthz HTTP/1.1\nHost: x"));
    }

    private static ConnectionLimit GetLimit(IngestServer server) => server.Services.GetRequiredService<ConnectionLimit>();

    private static byte[] Statuses(int count, string tag)
    {
        var items = string.Join(",", Enumerable.Range(0, count).Select(i =>
            $$$"""{"id":"wamid.{{{tag}}}{{{i:D6}}}","status":"delivered","timestamp":"1749416400","recipient_id":"1650{{{i % 997:D7}}}"}"""));
        return Encoding.UTF8.GetBytes($$$"""{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"{{{Payloads.PhoneNumberId}}}"},"statuses":[{{{items}}}]},"field":"messages"}]}]}""");
    }

    [Fact]
    public async Task A_payload_of_10000_statuses_is_forwarded_whole_and_one_past_the_default_cap_is_quarantined()
    {
        // (The old forward writer re-read the whole value per event; ForwardPayloadWriterTests counts the bytes read.)
        await using var server = await IngestServer.StartAsync(Dir.Path, [new TestTenant("t1", Concurrency: 8)],
            new Dictionary<string, string?>
            {
                ["FastIngest:MaxBodyBytes"] = (4 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture),
            });
        using (var over = await server.PostAsync("t1", Statuses(10_001, "OVER"), "app-secret"))
            Assert.Equal(HttpStatusCode.OK, over.StatusCode);
        Assert.Equal(1, server.Engine.Pipeline.QuarantinedCount);

        using (var big = await server.PostAsync("t1", Statuses(10_000, "BIG"), "app-secret"))
            Assert.Equal(HttpStatusCode.OK, big.StatusCode);
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (server.Engine.DispatchStats()[0].Forwarded < 10_000)
        {
            Assert.True(DateTime.UtcNow < deadline, $"forwarded {server.Engine.DispatchStats()[0].Forwarded} of 10000");
            await Task.Delay(50);
        }
        var lines = File.ReadLines(Path.Combine(Dir.Path, "out", "t1.jsonl")).Count();
        Assert.Equal(10_000, lines);
    }

    [Fact]
    public async Task A_request_waiting_out_backpressure_is_parsed_once()
    {
        // A frozen disk: the log's 16 MiB of memory fills with records that cannot be flushed (well inside the stall
        // threshold, past which new webhooks would get 503 instead of waiting).
        await using var server = await IngestServer.StartAsync(Dir.Path, [new TestTenant("t1", ForwardUrl: Bot.Url)], new Dictionary<string, string?> { ["FastIngest:Storage:StallThreshold"] = "00:05:00" });
        var device = server.Engine.Log.Device;
        var parsesBefore = server.Engine.Pipeline.Parses;
        device.Freeze();
        var posts = new List<Task<HttpResponseMessage>>();
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            for (var i = 0; server.Engine.Pipeline.Backpressured == 0; i++)
            {
                Assert.True(DateTime.UtcNow < deadline && i < 400, $"no backpressure after {i} requests");
                posts.Add(server.PostAsync("t1", Padded($"wamid.FULL{i:D3}", 250_000), "app-secret"));
                if (i % 8 == 7)
                    await Task.Delay(20);
            }
        }
        finally
        {
            device.Thaw();
        }
        var responses = await Task.WhenAll(posts);
        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        foreach (var r in responses)
            r.Dispose();
        // Each request was parsed and hashed once, however long it waited for room.
        Assert.Equal(posts.Count, server.Engine.Pipeline.Parses - parsesBefore);
        await Bot.WaitForDeliveredAsync(posts.Count);
    }
}
