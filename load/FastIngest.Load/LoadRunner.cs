using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;

namespace FastIngest.Load;

/// <summary>
/// Sends Meta-like traffic to FastIngest and checks what reached the bot. Open model (<c>--rate</c>: requests are
/// issued on schedule whatever the server does, and latency counts from the scheduled time, so a stall is not
/// hidden) or closed model (<c>--connections</c> senders as fast as the server answers). Bounded by
/// <c>--requests</c> and <c>--duration</c>; then waits up to <c>--drain</c> for every acknowledged event to arrive.
/// </summary>
internal sealed class LoadRunner
{
    private readonly LoadOptions _o;
    private readonly LatencyRecorder _latency = new();
    private readonly ConcurrentDictionary<string, long> _ackedAt = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<int, long> _failures = new();
    private long _issued;
    private long _sent;
    private long _acknowledged;
    private long _repeats;
    private long _bytes;

    public LoadRunner(LoadOptions options) => _o = options;

    public async Task<LoadReport> RunAsync()
    {
        if (_o.Target is not null && _o.Destination != "webhook")
            throw new ArgumentException("--destination other than webhook needs a server the tool starts (no --target)");
        await using var bot = await EventSink.StartAsync(_o.Destination, _o.BotPort).ConfigureAwait(false);
        using var server = _o.Target is null ? await StartServerAsync(bot).ConfigureAwait(false) : null;
        var target = _o.Target ?? server!.Url;

        var generators = Enumerable.Range(0, _o.Tenants)
            .Select(t => new TrafficGenerator(t, LoadOptions.Secret(t), _o.Repeats, _o.OutOfOrder, _o.Seed * 1000 + t)).ToArray();
        using var client = new HttpClient(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = _o.Rate is null ? _o.Connections : Math.Max(_o.Connections, 512),
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            UseProxy = false,
        })
        { Timeout = TimeSpan.FromSeconds(60) };

        var rss = new List<(double Seconds, long Bytes)>();
        using var rssStop = new CancellationTokenSource();
        var clock = Stopwatch.StartNew();
        var rssTask = server is null ? Task.CompletedTask : SampleRssAsync(server, clock, rss, rssStop.Token);

        var deadline = clock.Elapsed + _o.Duration;
        if (_o.Rate is { } rate)
            await OpenModelAsync(client, target, generators, rate, clock, deadline).ConfigureAwait(false);
        else
            await ClosedModelAsync(client, target, generators, clock, deadline).ConfigureAwait(false);
        var sendSeconds = clock.Elapsed.TotalSeconds;

        // Drain: every acknowledged event must reach the bot.
        var drainDeadline = clock.Elapsed + _o.Drain;
        while (clock.Elapsed < drainDeadline && _ackedAt.Keys.Any(id => !bot.Arrivals.ContainsKey(id)))
            await Task.Delay(250).ConfigureAwait(false);
        var lastArrival = bot.Arrivals.Values.Select(a => a.FirstTimestamp).DefaultIfEmpty(0).Max();
        await rssStop.CancelAsync().ConfigureAwait(false);
        await rssTask.ConfigureAwait(false);

        return Summarize(bot, sendSeconds, clock, lastArrival, rss, server is not null);
    }

    private async Task<ServerProcess> StartServerAsync(EventSink sink)
    {
        var settings = new List<string>();
        for (var t = 0; t < _o.Tenants; t++)
        {
            var p = $"--FastIngest:Tenants:{t}:";
            settings.Add($"{p}Id=t{t}");
            settings.Add($"{p}AppSecret={LoadOptions.Secret(t)}");
            settings.Add($"{p}VerifyToken=verify-{t}");
            settings.AddRange(sink.TenantSettings(t, _o.ForwardConcurrency));
        }
        settings.AddRange(_o.ServerSettings.Select(s => s.StartsWith("--", StringComparison.Ordinal) ? s : "--" + s));
        return await ServerProcess.StartAsync(_o.ServerDll, _o.Port, settings).ConfigureAwait(false);
    }

    private async Task ClosedModelAsync(HttpClient client, string target, TrafficGenerator[] generators, Stopwatch clock, TimeSpan deadline)
    {
        var senders = Enumerable.Range(0, _o.Connections).Select(async c =>
        {
            var t = c % generators.Length;
            while (clock.Elapsed < deadline && Interlocked.Increment(ref _issued) <= _o.Requests)
            {
                await SendAsync(client, target, Next(generators[t]), Stopwatch.GetTimestamp()).ConfigureAwait(false);
                t = (t + 1) % generators.Length;
            }
        });
        await Task.WhenAll(senders).ConfigureAwait(false);
    }

    private Delivery Next(TrafficGenerator generator) => _o.TextOnly ? generator.SizedText(1024, 2048) : generator.Next();

    private async Task OpenModelAsync(HttpClient client, string target, TrafficGenerator[] generators, double rate, Stopwatch clock, TimeSpan deadline)
    {
        // With --pregenerate every delivery is built and signed before the clock starts, so that the sender's own
        // work does not eat into the schedule on a small machine.
        Delivery[]? ready = null;
        if (_o.Pregenerate)
        {
            var count = (long)Math.Min(_o.Requests, rate * _o.Duration.TotalSeconds + 1);
            var generationStarted = clock.Elapsed;
            ready = new Delivery[count];
            for (long k = 0; k < count; k++)
                ready[k] = Next(generators[k % generators.Length]);
            deadline += clock.Elapsed - generationStarted;
        }
        var inFlight = new List<Task>();
        // The sender's own pauses would count as server latency (latency runs from the scheduled time).
        System.Runtime.GCSettings.LatencyMode = System.Runtime.GCLatencyMode.SustainedLowLatency;
        var start = Stopwatch.GetTimestamp();
        var perTick = Stopwatch.Frequency / rate;
        long i = 0;
        while (clock.Elapsed < deadline && i < _o.Requests && (ready is null || i < ready.Length))
        {
            var due = start + (long)(i * perTick);
            var now = Stopwatch.GetTimestamp();
            if (due > now)
            {
                // Sleep to the next tick (about 1 ms) rather than spin: a spinning sender on a 2-core machine takes a
                // whole core from the server and from its own HTTP completions. What falls due meanwhile goes out
                // together at the tick, still timed from its scheduled moment.
                await Task.Delay(1).ConfigureAwait(false);
                continue;
            }
            // Everything due by now goes out now, timed from when it was due.
            var delivery = ready is not null ? ready[i] : Next(generators[i % generators.Length]);
            inFlight.Add(SendAsync(client, target, delivery, due));
            i++;
            if (inFlight.Count > 4096)
                inFlight.RemoveAll(task => task.IsCompleted);
        }
        await Task.WhenAll(inFlight).ConfigureAwait(false);
    }

    private async Task SendAsync(HttpClient client, string target, Delivery d, long scheduled)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{target}/webhooks/t{d.Tenant}") { Content = new ByteArrayContent(d.Body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.TryAddWithoutValidation("X-Hub-Signature-256", d.Signature);
        Interlocked.Increment(ref _sent);
        Interlocked.Add(ref _bytes, d.Body.Length);
        if (d.IsRepeat)
            Interlocked.Increment(ref _repeats);
        int status;
        try
        {
            using var response = await client.SendAsync(request).ConfigureAwait(false);
            status = (int)response.StatusCode;
        }
        catch (HttpRequestException)
        {
            status = 0;
        }
        catch (TaskCanceledException)
        {
            status = -1;
        }
        var done = Stopwatch.GetTimestamp();
        _latency.Add((done - scheduled) * 1_000_000 / Stopwatch.Frequency);
        if (status == 200)
        {
            Interlocked.Increment(ref _acknowledged);
            foreach (var id in d.EventIds)
                _ackedAt.TryAdd(id, done);
        }
        else
        {
            _failures.AddOrUpdate(status, 1, static (_, n) => n + 1);
        }
    }

    private async Task SampleRssAsync(ServerProcess server, Stopwatch clock, List<(double, long)> samples, CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                lock (samples)
                    samples.Add((clock.Elapsed.TotalSeconds, server.RssBytes()));
                await Task.Delay(_o.RssInterval, ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private LoadReport Summarize(EventSink bot, double sendSeconds, Stopwatch clock, long lastArrival, List<(double, long)> rss, bool spawned)
    {
        var latency = _latency.Sorted();
        var arrivals = bot.Arrivals;
        long lost = 0, forwarded = 0;
        var lags = new List<long>(_ackedAt.Count);
        foreach (var (id, ackedAt) in _ackedAt)
        {
            if (arrivals.TryGetValue(id, out var a))
            {
                forwarded++;
                lags.Add(Math.Max(0, a.FirstTimestamp - ackedAt) * 1_000_000 / Stopwatch.Frequency);
            }
            else
            {
                lost++;
            }
        }
        var lag = lags.ToArray();
        Array.Sort(lag);
        var firstTimestamp = Stopwatch.GetTimestamp() - clock.Elapsed.Ticks * Stopwatch.Frequency / TimeSpan.TicksPerSecond;
        var forwardSeconds = lastArrival > 0 ? (lastArrival - firstTimestamp) / (double)Stopwatch.Frequency : 0;
        double Ms(long[] sorted, double q) => Percentiles.At(sorted, q) / 1000.0;
        return new LoadReport
        {
            Model = _o.Rate is { } r ? $"open, {r:0} requests/s" : $"closed, {_o.Connections} connections",
            Destination = bot.Kind,
            Tenants = _o.Tenants,
            DurationSeconds = Math.Round(sendSeconds, 2),
            Sent = _sent,
            Repeats = _repeats,
            Acknowledged = _acknowledged,
            Failed = _failures.ToDictionary(kv => kv.Key == 0 ? "connection" : kv.Key == -1 ? "timeout" : kv.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), kv => kv.Value),
            EventsAcknowledged = _ackedAt.Count,
            Forwarded = forwarded,
            Lost = lost,
            Doubled = arrivals.Values.Count(a => a.Count > 1),
            BotRequests = bot.Received,
            RequestsPerSecond = Math.Round(_sent / sendSeconds, 1),
            AckedRequestsPerSecond = Math.Round(_acknowledged / sendSeconds, 1),
            ForwardedEventsPerSecond = forwardSeconds > 0 ? Math.Round(forwarded / forwardSeconds, 1) : 0,
            MeanBodyBytes = _sent > 0 ? _bytes / _sent : 0,
            AckLatencyMs = new Dictionary<string, double>
            {
                ["p50"] = Ms(latency, 0.50), ["p90"] = Ms(latency, 0.90), ["p99"] = Ms(latency, 0.99),
                ["p99.9"] = Ms(latency, 0.999), ["max"] = latency.Length > 0 ? latency[^1] / 1000.0 : 0,
            },
            ForwardLagMs = new Dictionary<string, double>
            {
                ["p50"] = Ms(lag, 0.50), ["p99"] = Ms(lag, 0.99), ["max"] = lag.Length > 0 ? lag[^1] / 1000.0 : 0,
            },
            ServerRssMiB = spawned ? rss.Select(s => new RssSample(Math.Round(s.Item1, 1), Math.Round(s.Item2 / 1048576.0, 1))).ToList() : [],
        };
    }
}
