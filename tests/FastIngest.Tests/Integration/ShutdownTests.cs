using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Integration;

/// <summary>
/// SIGTERM to the real server process under load, with a bot that answers slowly and one delivery that hangs: the
/// process stops accepting, answers the requests it has, exits 0 within <c>FastIngest:ShutdownTimeout</c>, and on
/// the next start delivers everything that got a 200; only the delivery cut at the deadline arrives again.
/// </summary>
public sealed class ShutdownTests
{
    private static readonly TimeSpan s_shutdownTimeout = TimeSpan.FromSeconds(3);

    [Fact]
    public async Task Sigterm_drains_and_exits_within_ShutdownTimeout_and_nothing_acknowledged_is_lost()
    {
        using var dir = new TempDir();
        await using var bot = await BotServer.StartAsync();
        const string stuck = "msg:wamid.STUCK";
        bot.Delay = id => id == stuck ? TimeSpan.FromSeconds(60) : TimeSpan.FromMilliseconds(20);
        var settings = ServerProcessHost.OneTenant(dir.Path, bot.Url,
            $"--FastIngest:ShutdownTimeout={s_shutdownTimeout}",
            "--FastIngest:Tenants:0:Forward:Concurrency=4",
            "--FastIngest:Tenants:0:Forward:Timeout=00:02:00",
            "--Logging:LogLevel:FastIngest=Information");

        var acked = new ConcurrentDictionary<string, bool>();
        var refused = 0;
        var failedWithStatus = new ConcurrentBag<int>();
        TimeSpan exitedAfter;
        using (var first = await ServerProcessHost.StartAsync(settings))
        {
            using var client = new HttpClient { BaseAddress = first.Url, Timeout = TimeSpan.FromSeconds(10) };
            Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(Payloads.Webhook("t1", Payloads.Text("wamid.STUCK", from: "15550000000"), "app-secret"))).StatusCode);
            acked[stuck] = true;

            using var stop = new CancellationTokenSource();
            var next = 0;
            var senders = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    var n = Interlocked.Increment(ref next);
                    var wamid = $"wamid.TERM{n:D6}";
                    try
                    {
                        using var response = await client.SendAsync(Payloads.Webhook("t1", Payloads.Text(wamid, from: $"1555{n % 50:D4}"), "app-secret"));
                        if (response.StatusCode == HttpStatusCode.OK)
                            acked[$"msg:{wamid}"] = true;
                        else
                            failedWithStatus.Add((int)response.StatusCode);
                    }
                    catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                    {
                        // The listener is closed: Meta would retry this one.
                        Interlocked.Increment(ref refused);
                        await Task.Delay(20);
                    }
                }
            })).ToArray();

            var deadline = DateTime.UtcNow.AddSeconds(20);
            while ((acked.Count < 300 || bot.Delivered.Count < 50) && DateTime.UtcNow < deadline)
                await Task.Delay(10);
            var clock = Stopwatch.StartNew();
            first.Terminate();
            Assert.True(await Task.Run(() => first.Process.WaitForExit(s_shutdownTimeout + TimeSpan.FromSeconds(3))),
                $"still running {clock.Elapsed.TotalSeconds:0.0} s after SIGTERM (ShutdownTimeout {s_shutdownTimeout.TotalSeconds} s)");
            exitedAfter = clock.Elapsed;
            first.Process.WaitForExit();
            Assert.Equal(0, first.Process.ExitCode);
            await stop.CancelAsync();
            await Task.WhenAll(senders);
            Assert.Contains(first.Output, l => l.Contains("Stopped", StringComparison.Ordinal) && l.Contains("after the shutdown began", StringComparison.Ordinal));
        }
        Assert.True(acked.Count >= 300, $"only {acked.Count} acknowledged before SIGTERM");
        Assert.True(exitedAfter < s_shutdownTimeout + TimeSpan.FromSeconds(2), $"exited {exitedAfter.TotalSeconds:0.0} s after SIGTERM");
        // Requests in flight at SIGTERM were answered, not failed: the ones that did not get 200 never reached it.
        Assert.Empty(failedWithStatus);

        var beforeRestart = bot.Requests.Select(r => r.EventId).ToList();
        Assert.Contains(bot.Requests, r => r.EventId == stuck && r.AnsweredStatus == 499); // cut at the deadline
        bot.Delay = _ => TimeSpan.Zero;
        using (var second = await ServerProcessHost.StartAsync(settings))
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!acked.Keys.All(id => bot.Delivered.Any(r => r.EventId == id)) && DateTime.UtcNow < deadline)
                await Task.Delay(50);
            await Task.Delay(300);
        }

        var delivered = bot.Delivered.Select(r => r.EventId!).ToList();
        var missing = acked.Keys.Where(id => !delivered.Contains(id)).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} acknowledged events never arrived, e.g. {string.Join(", ", missing.Take(5))}");
        // Deliveries that finished during the drain were acked: the restart sends again only what was cut.
        var doubled = delivered.GroupBy(id => id).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.Empty(doubled);
        var afterRestart = bot.Requests.Skip(beforeRestart.Count).Select(r => r.EventId!).ToList();
        Assert.Contains(stuck, afterRestart);
        Assert.All(afterRestart, id => Assert.DoesNotContain(bot.Requests.Take(beforeRestart.Count), r => r.EventId == id && r.AnsweredStatus == 200));
    }
}
