using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;

namespace FastIngest.Load;

/// <summary>
/// A light open-model load generator over raw sockets, for latency at a set rate on one core: requests are due on a
/// fixed schedule (<c>--rate</c> per second), each goes out on the next idle keep-alive connection, and its latency
/// counts from when it was due, not from when it was sent (a request that waits for a free connection, or behind a
/// stalled server, is charged the wait: no coordinated omission). Bodies are the pre-signed lines of a
/// <c>gen-wrk</c> shard (<c>sha256=&lt;hex&gt;TAB&lt;body&gt;</c>), each request a new event. Costs a few µs per
/// request (one send, one receive), where the simulator's HttpClient costs tens.
/// </summary>
internal static class OpenLoop
{
    /// <summary>
    /// <c>open --target URL --bodies FILE --rate R [--duration S] [--warmup S] [--connections C] [--json PATH]</c>:
    /// prints requests sent and answered, non-200s, and latency p50/p90/p99/p99.9/max (ms); returns 1 when a
    /// request failed or was not answered 200.
    /// </summary>
    public static async Task<int> RunAsync(Dictionary<string, string> a)
    {
        var target = new Uri(a.GetValueOrDefault("--target") ?? throw new ArgumentException("--target is required"));
        var rate = double.Parse(a.GetValueOrDefault("--rate") ?? throw new ArgumentException("--rate is required"), CultureInfo.InvariantCulture);
        var duration = double.Parse(a.GetValueOrDefault("--duration") ?? "60", CultureInfo.InvariantCulture);
        var warmup = double.Parse(a.GetValueOrDefault("--warmup") ?? "10", CultureInfo.InvariantCulture);
        var connections = int.Parse(a.GetValueOrDefault("--connections") ?? "64", CultureInfo.InvariantCulture);
        var path = target.AbsolutePath;
        var requests = Load(a.GetValueOrDefault("--bodies") ?? throw new ArgumentException("--bodies is required"), target, path);
        var total = (long)((warmup + duration) * rate);
        if (total > requests.Count)
            throw new ArgumentException($"--bodies has {requests.Count} requests; {total} are needed (distinct events)");

        ThreadPool.SetMinThreads(Math.Max(8, Environment.ProcessorCount * 4), 8); // no slow thread injection for the connections
        var due = Channel.CreateUnbounded<(long Index, long DueTicks)>(new UnboundedChannelOptions { SingleWriter = true });
        var latencies = new long[total];
        var failures = 0L;
        var answered = 0L;
        var start = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 10;
        var workers = new Task[connections];
        for (var c = 0; c < connections; c++)
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(target.Host, target.Port).ConfigureAwait(false);
            workers[c] = Task.Run(async () =>
            {
                var buffer = new byte[16 * 1024];
                using (socket)
                {
                    await foreach (var (index, dueTicks) in due.Reader.ReadAllAsync().ConfigureAwait(false))
                    {
                        try
                        {
                            await socket.SendAsync(requests[(int)index], SocketFlags.None).ConfigureAwait(false);
                            var status = await ReadResponseAsync(socket, buffer).ConfigureAwait(false);
                            latencies[index] = Stopwatch.GetTimestamp() - dueTicks;
                            Interlocked.Increment(ref answered);
                            if (status != 200)
                                Interlocked.Increment(ref failures);
                        }
                        catch (Exception ex) when (ex is SocketException or IOException or InvalidDataException)
                        {
                            latencies[index] = -1;
                            Interlocked.Increment(ref failures);
                            return;
                        }
                    }
                }
            });
        }

        // The schedule, on a thread of its own (not the pool the connections run on): request i is due at
        // start + i / rate; it never waits for an answer. Between due times it sleeps, or yields the CPU to the
        // connections for the last fraction of a millisecond.
        var ticksPer = Stopwatch.Frequency / rate;
        var scheduler = new Thread(() =>
        {
            for (long i = 0; i < total; i++)
            {
                var at = start + (long)(i * ticksPer);
                var wait = at - Stopwatch.GetTimestamp();
                if (wait > 2 * Stopwatch.Frequency / 1000)
                    Thread.Sleep(TimeSpan.FromTicks(wait * TimeSpan.TicksPerSecond / Stopwatch.Frequency - TimeSpan.TicksPerMillisecond));
                while (Stopwatch.GetTimestamp() < at)
                    Thread.Yield();
                due.Writer.TryWrite((i, at));
            }
            due.Writer.Complete();
        })
        { IsBackground = true, Name = "open-loop-schedule", Priority = ThreadPriority.AboveNormal };
        scheduler.Start();
        await Task.WhenAll(workers).ConfigureAwait(false);

        var measuredFrom = (long)(warmup * rate);
        var ms = latencies.Skip((int)measuredFrom).Where(l => l >= 0).Select(l => l * 1000.0 / Stopwatch.Frequency).Order().ToArray();
        double P(double q) => ms.Length == 0 ? 0 : ms[Math.Min(ms.Length - 1, (int)Math.Ceiling(q * ms.Length) - 1)];
        var inv = CultureInfo.InvariantCulture;
        var line = string.Create(inv, $"open model {rate:0} requests/s for {duration:0} s after {warmup:0} s warm-up, {connections} connections: {ms.Length} measured, {failures} not 200; latency ms p50 {P(0.5):0.00} p90 {P(0.9):0.00} p99 {P(0.99):0.00} p99.9 {P(0.999):0.00} max {(ms.Length == 0 ? 0 : ms[^1]):0.00}");
        Console.WriteLine(line);
        if (a.GetValueOrDefault("--timeline") is { } timeline)
        {
            // Per second of the schedule: requests due, p99 and max (ms): a stall shows as the second it began in.
            var sb = new StringBuilder("second,requests,p99_ms,max_ms\n");
            var perSecond = (long)rate;
            for (long second = 0; second * perSecond < total; second++)
            {
                var slice = latencies.Skip((int)(second * perSecond)).Take((int)perSecond).Where(l => l >= 0).Select(l => l * 1000.0 / Stopwatch.Frequency).Order().ToArray();
                if (slice.Length == 0)
                    continue;
                sb.Append(string.Create(inv, $"{second},{slice.Length},{slice[Math.Min(slice.Length - 1, (int)Math.Ceiling(0.99 * slice.Length) - 1)]:0.00},{slice[^1]:0.00}\n"));
            }
            await File.WriteAllTextAsync(timeline, sb.ToString()).ConfigureAwait(false);
        }
        if (a.GetValueOrDefault("--json") is { } json)
        {
            await File.WriteAllTextAsync(json, string.Create(inv,
                $"{{\"rate\":{rate:0},\"duration_s\":{duration:0},\"measured\":{ms.Length},\"failures\":{failures},\"p50_ms\":{P(0.5):0.000},\"p90_ms\":{P(0.9):0.000},\"p99_ms\":{P(0.99):0.000},\"p999_ms\":{P(0.999):0.000},\"max_ms\":{(ms.Length == 0 ? 0 : ms[^1]):0.000}}}\n")).ConfigureAwait(false);
        }
        return failures == 0 && answered == total ? 0 : 1;
    }

    /// <summary>Each line of the shard as a complete HTTP/1.1 POST to <paramref name="path"/>.</summary>
    private static List<byte[]> Load(string file, Uri target, string path)
    {
        var list = new List<byte[]>();
        foreach (var line in File.ReadLines(file))
        {
            var tab = line.IndexOf('\t', StringComparison.Ordinal);
            if (tab < 0)
                continue;
            var body = Encoding.UTF8.GetBytes(line[(tab + 1)..]);
            var head = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
                $"POST {path} HTTP/1.1\r\nHost: {target.Host}:{target.Port}\r\nContent-Type: application/json\r\nX-Hub-Signature-256: {line[..tab]}\r\nContent-Length: {body.Length}\r\n\r\n"));
            list.Add([.. head, .. body]);
        }
        return list;
    }

    /// <summary>Reads one response (status line, headers, a Content-Length body) and returns its status.</summary>
    private static async Task<int> ReadResponseAsync(Socket socket, byte[] buffer)
    {
        var filled = 0;
        while (true)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None).ConfigureAwait(false);
            if (n == 0)
                throw new IOException("connection closed");
            filled += n;
            var end = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8);
            if (end < 0)
                continue;
            var head = Encoding.ASCII.GetString(buffer, 0, end);
            var status = int.Parse(head.AsSpan(9, 3), CultureInfo.InvariantCulture);
            var length = 0;
            foreach (var h in head.Split("\r\n"))
            {
                if (h.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                    length = int.Parse(h.AsSpan(15).Trim(), CultureInfo.InvariantCulture);
            }
            var need = end + 4 + length;
            while (filled < need)
            {
                n = await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None).ConfigureAwait(false);
                if (n == 0)
                    throw new IOException("connection closed");
                filled += n;
            }
            return status;
        }
    }
}
