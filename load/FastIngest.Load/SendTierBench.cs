using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace FastIngest.Load;

/// <summary>
/// The send tier's benchmark against a fake Graph API in this process (which answers every send at once with a
/// wamid, as Meta's Cloud API does) and a FastIngest server started as a child process, pinned to CPU 0 (run this
/// tool pinned to CPU 1):
/// <list type="number">
/// <item>Scheduler throughput: <c>--drain N</c> sends are queued while the Graph URL refuses connections (they park in
/// backoff), the server is restarted against the fake, and the N sends queued at start go out: sends/s from the
/// first to the last arrival.</item>
/// <item>Fairness: tenant t1 queues <c>--campaign N</c> templates on one number at <c>--phone-rate</c> messages/s; tenant t2
/// then sends one reply every 100 ms for <c>--duration</c> s: each reply's latency from its POST to its arrival at
/// Graph (p50, p99, max), and t1's arrivals per second over the same time (the number's rate held).</item>
/// </list>
/// </summary>
internal static class SendTierBench
{
    private const string Phone1 = "100000000000001";
    private const string Phone2 = "200000000000002";
    private const string Token = "bench-meta-token";

    public static async Task<int> RunAsync(Dictionary<string, string> a)
    {
        var dll = a.GetValueOrDefault("--server-dll") ?? Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "src", "FastIngest.Server", "bin", "Release", "net10.0", "FastIngest.Server.dll");
        var port = int.Parse(a.GetValueOrDefault("--port") ?? "18080", CultureInfo.InvariantCulture);
        var graphPort = int.Parse(a.GetValueOrDefault("--graph-port") ?? "18095", CultureInfo.InvariantCulture);
        var drain = int.Parse(a.GetValueOrDefault("--drain") ?? "20000", CultureInfo.InvariantCulture);
        var campaign = int.Parse(a.GetValueOrDefault("--campaign") ?? "100000", CultureInfo.InvariantCulture);
        var duration = int.Parse(a.GetValueOrDefault("--duration") ?? "60", CultureInfo.InvariantCulture);
        var phoneRate = double.Parse(a.GetValueOrDefault("--phone-rate") ?? "80", CultureInfo.InvariantCulture);
        var cpus = a.GetValueOrDefault("--server-cpus") ?? "0";

        await using var graph = await FakeGraph.StartAsync(graphPort);
        Console.WriteLine($"send tier benchmark: server pinned to CPU {cpus} (taskset), fake Graph API in this process");

        // 1. Scheduler throughput: sends queued at start drain as fast as the scheduler takes them.
        var dataDir = Path.Combine(Path.GetTempPath(), "fastingest-sendbench-" + Guid.NewGuid().ToString("N"));
        try
        {
            string[] Drain(string graphUrl) =>
            [
                $"--FastIngest:Outbound:GraphUrl={graphUrl}",
                "--FastIngest:Outbound:MaxInFlight=64",
                "--FastIngest:Outbound:InitialBackoff=00:10:00",
                "--FastIngest:Outbound:MaxBackoff=00:10:00",
                "--FastIngest:Outbound:MaxAge=01:00:00",
                .. SendingTenant(0, Phone1, 100_000),
                "--FastIngest:Tenants:0:Outbound:PairBurst=10000",
            ];
            using (var parked = await ServerProcess.StartAsync(dll, port, Drain("http://127.0.0.1:9"), dataDir, cpus))
            {
                await QueueAsync(parked.Url, Phone1, "bench-bot-token-0001", drain, i => $"1650{i:D7}");
                parked.Stop();
            }
            graph.Reset();
            var started = Stopwatch.StartNew();
            using (var server = await ServerProcess.StartAsync(dll, port, Drain(graph.Url), dataDir, cpus))
            {
                var ready = started.Elapsed;
                await graph.WaitForAsync(Phone1, drain, TimeSpan.FromMinutes(10));
                var (first, last) = graph.Span(Phone1);
                Console.WriteLine($"scheduler drain: {drain} sends queued at start, first to last at Graph {(last - first).TotalSeconds:0.00} s = {drain / (last - first).TotalSeconds:0} sends/s (start-up {ready.TotalSeconds:0.0} s, server RSS {server.RssBytes() / (1 << 20)} MiB)");
            }
        }
        finally
        {
            try
            {
                Directory.Delete(dataDir, recursive: true);
            }
            catch (IOException)
            {
            }
        }

        // 2. A reply of one tenant while another has a campaign queued; the campaign number's rate over the minute.
        graph.Reset();
        string[] Fair =
        [
            $"--FastIngest:Outbound:GraphUrl={graph.Url}",
            .. SendingTenant(0, Phone1, phoneRate),
            .. SendingTenant(1, Phone2, 80),
        ];
        using (var server = await ServerProcess.StartAsync(dll, port, Fair, cpus: cpus))
        {
            var queueing = Stopwatch.StartNew();
            await QueueAsync(server.Url, Phone1, "bench-bot-token-0001", campaign, i => $"1651{i:D7}");
            Console.WriteLine($"campaign: {campaign} sends of t1 queued in {queueing.Elapsed.TotalSeconds:0.0} s ({campaign / queueing.Elapsed.TotalSeconds:0} sends/s through the HTTP route)");
            var windowStart = DateTime.UtcNow;
            var latencies = new List<double>();
            using var http = new HttpClient { BaseAddress = new Uri(server.Url) };
            for (var i = 0; i < duration * 10; i++)
            {
                var tick = Task.Delay(100);
                var to = $"1652{i:D7}";
                var sentAt = DateTime.UtcNow;
                using (var response = await http.SendAsync(Send(Phone2, "bench-bot-token-0002", to, "respond-async")))
                    response.EnsureSuccessStatusCode();
                var arrived = await graph.WaitForRecipientAsync(to, TimeSpan.FromSeconds(30));
                latencies.Add((arrived - sentAt).TotalMilliseconds);
                await tick;
            }
            var windowEnd = DateTime.UtcNow;
            latencies.Sort();
            double P(double q) => latencies[Math.Clamp((int)Math.Ceiling(q * latencies.Count) - 1, 0, latencies.Count - 1)];
            Console.WriteLine($"t2 reply latency, POST to Graph, with {campaign} of t1 queued: n={latencies.Count} p50 {P(0.5):0.0} ms, p99 {P(0.99):0.0} ms, max {latencies[^1]:0.0} ms");
            var perSecond = graph.PerSecond(Phone1, windowStart, windowEnd);
            Console.WriteLine($"t1's number at PhoneNumberRate {phoneRate}/s over {(windowEnd - windowStart).TotalSeconds:0} s: mean {perSecond.Average():0.0}/s, min {perSecond.Min()}/s, max {perSecond.Max()}/s per whole second; busiest sliding 1 s window {graph.BusiestWindow(Phone1, windowStart, windowEnd)}");
        }
        return 0;
    }

    /// <summary>Tenant <c>t{i+1}</c> sending from <paramref name="phone"/> at <paramref name="rate"/> messages/s, bot token <c>bench-bot-token-000{i+1}</c>.</summary>
    private static string[] SendingTenant(int i, string phone, double rate) =>
    [
        $"--FastIngest:Tenants:{i}:Id=t{i + 1}",
        $"--FastIngest:Tenants:{i}:AppSecret=bench-secret-{i + 1}",
        $"--FastIngest:Tenants:{i}:VerifyToken=v",
        $"--FastIngest:Tenants:{i}:Outbound:PhoneNumberIds:0={phone}",
        $"--FastIngest:Tenants:{i}:Outbound:AccessToken={Token}",
        $"--FastIngest:Tenants:{i}:Outbound:BotToken=bench-bot-token-000{i + 1}",
        $"--FastIngest:Tenants:{i}:Outbound:PhoneNumberRate={rate.ToString(CultureInfo.InvariantCulture)}",
    ];

    private static HttpRequestMessage Send(string phone, string botToken, string to, string? prefer = null)
    {
        var body = $$$$"""{"messaging_product":"whatsapp","to":"{{{{to}}}}","type":"template","template":{"name":"order_update","language":{"code":"en_US"}}}""";
        var request = new HttpRequestMessage(HttpMethod.Post, $"/graph/v23.0/{phone}/messages") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", botToken);
        if (prefer is not null)
            request.Headers.Add("Prefer", prefer);
        return request;
    }

    /// <summary>Queues <paramref name="count"/> templates, 32 requests at a time.</summary>
    private static async Task QueueAsync(string url, string phone, string botToken, int count, Func<int, string> to)
    {
        using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromMinutes(2) };
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, 32).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                using var response = await http.SendAsync(Send(phone, botToken, to(i), "respond-async"));
                response.EnsureSuccessStatusCode();
            }
        }));
    }

    /// <summary>Meta's Cloud API send route, answering each send at once with a new wamid; records arrivals.</summary>
    private sealed class FakeGraph : IAsyncDisposable
    {
        private readonly ConcurrentQueue<(string Phone, string To, DateTime At)> _arrivals = new();
        private readonly ConcurrentDictionary<string, DateTime> _byRecipient = new(StringComparer.Ordinal);
        private WebApplication _app = null!;
        private long _wamids;

        public string Url { get; private set; } = "";

        public static async Task<FakeGraph> StartAsync(int port)
        {
            var fake = new FakeGraph();
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
            builder.Logging.ClearProviders();
            var app = builder.Build();
            app.MapPost("/{version}/{phone}/messages", fake.HandleAsync);
            await app.StartAsync();
            fake._app = app;
            fake.Url = $"http://127.0.0.1:{port}";
            return fake;
        }

        private async Task HandleAsync(HttpContext context)
        {
            var phone = (string)context.Request.RouteValues["phone"]!;
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync();
            var at = body.IndexOf("\"to\":\"", StringComparison.Ordinal) + 6;
            var to = body[at..body.IndexOf('"', at)];
            var now = DateTime.UtcNow;
            _arrivals.Enqueue((phone, to, now));
            _byRecipient[to] = now;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync($$$"""{"messaging_product":"whatsapp","contacts":[{"input":"{{{to}}}","wa_id":"{{{to}}}"}],"messages":[{"id":"wamid.BENCH{{{Interlocked.Increment(ref _wamids)}}}"}]}""");
        }

        public void Reset()
        {
            _arrivals.Clear();
            _byRecipient.Clear();
        }

        public async Task WaitForAsync(string phone, int count, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (_arrivals.Count(a => a.Phone == phone) < count)
            {
                if (DateTime.UtcNow > deadline)
                    throw new TimeoutException($"{_arrivals.Count(a => a.Phone == phone)} of {count} sends reached Graph");
                await Task.Delay(200);
            }
        }

        public async Task<DateTime> WaitForRecipientAsync(string to, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (!_byRecipient.TryGetValue(to, out var at))
            {
                if (DateTime.UtcNow > deadline)
                    throw new TimeoutException($"the send to {to} never reached Graph");
                await Task.Delay(1);
            }
            return _byRecipient[to];
        }

        public (DateTime First, DateTime Last) Span(string phone)
        {
            var times = _arrivals.Where(a => a.Phone == phone).Select(a => a.At).ToList();
            return (times.Min(), times.Max());
        }

        public int[] PerSecond(string phone, DateTime from, DateTime until)
        {
            var seconds = Math.Max(1, (int)(until - from).TotalSeconds);
            var counts = new int[seconds];
            foreach (var a in _arrivals.Where(a => a.Phone == phone && a.At >= from))
            {
                var s = (int)(a.At - from).TotalSeconds;
                if (s < seconds)
                    counts[s]++;
            }
            return counts;
        }

        public int BusiestWindow(string phone, DateTime from, DateTime until)
        {
            var times = _arrivals.Where(a => a.Phone == phone && a.At >= from && a.At <= until).Select(a => a.At).Order().ToArray();
            var best = 0;
            for (int i = 0, j = 0; i < times.Length; i++)
            {
                while (times[i] - times[j] >= TimeSpan.FromSeconds(1))
                    j++;
                best = Math.Max(best, i - j + 1);
            }
            return best;
        }

        public async ValueTask DisposeAsync() => await _app.DisposeAsync();
    }
}
