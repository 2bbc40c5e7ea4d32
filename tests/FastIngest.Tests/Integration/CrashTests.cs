using System.Collections.Concurrent;
using System.Net;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Integration;

/// <summary>
/// The guarantee under a crash: the real server process takes signed traffic from concurrent senders and is killed
/// with SIGKILL mid-stream; a new process on the same data directory takes Meta's retries of everything that got
/// no 200. At the bot: every event that was answered 200 arrived, and none arrived twice except events that were
/// being delivered at the moment of the kill (first copy before the kill), with the same X-FastIngest-Event-Id.
/// </summary>
public sealed class CrashTests
{
    [Fact]
    public async Task Sigkill_mid_stream_loses_no_acknowledged_event_and_doubles_only_in_flight_deliveries()
    {
        using var dir = new TempDir();
        await using var bot = await BotServer.StartAsync();
        var settings = ServerProcessHost.OneTenant(dir.Path, bot.Url,
            "--FastIngest:CheckpointInterval=00:00:00.3",
            "--FastIngest:Tenants:0:Forward:Concurrency=4",
            "--FastIngest:Tenants:0:Forward:InitialBackoff=00:00:00.05",
            "--FastIngest:Tenants:0:Forward:MaxBackoff=00:00:00.2");

        var acked = new ConcurrentDictionary<string, bool>();
        var unacked = new ConcurrentDictionary<string, byte[]>();
        DateTime killedAt;
        using (var first = await ServerProcessHost.StartAsync(settings))
        {
            using var client = new HttpClient { BaseAddress = first.Url, Timeout = TimeSpan.FromSeconds(5) };
            using var stop = new CancellationTokenSource();
            var next = 0;
            var senders = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    var n = Interlocked.Increment(ref next);
                    var wamid = $"wamid.CRASH{n:D6}";
                    var body = Payloads.Text(wamid, from: $"1555{n % 50:D4}");
                    try
                    {
                        using var response = await client.SendAsync(Payloads.Webhook("t1", body, "app-secret"));
                        if (response.StatusCode == HttpStatusCode.OK)
                        {
                            acked[$"msg:{wamid}"] = true;
                            continue;
                        }
                    }
                    catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                    {
                    }
                    unacked[$"msg:{wamid}"] = body; // Meta keeps what got no 200 and retries it
                    if (stop.IsCancellationRequested)
                        return;
                }
            })).ToArray();

            var deadline = DateTime.UtcNow.AddSeconds(20);
            while ((acked.Count < 400 || bot.Delivered.Count < 100) && DateTime.UtcNow < deadline)
                await Task.Delay(10);
            first.Kill(); // returns once the process is gone: every delivery of the first process came before this
            killedAt = DateTime.UtcNow;
            await stop.CancelAsync();
            await Task.WhenAll(senders);
        }
        Assert.True(acked.Count >= 400, $"only {acked.Count} acknowledged before the kill");

        using (var second = await ServerProcessHost.StartAsync(settings))
        {
            using var client = new HttpClient { BaseAddress = second.Url };
            foreach (var body in unacked.Values)
                Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(Payloads.Webhook("t1", body, "app-secret"))).StatusCode);

            var expected = acked.Keys.Concat(unacked.Keys).ToHashSet();
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!expected.IsSubsetOf(bot.Delivered.Select(r => r.EventId!)) && DateTime.UtcNow < deadline)
                await Task.Delay(50);

            var delivered = bot.Delivered.GroupBy(r => r.EventId!).ToDictionary(g => g.Key, g => g.ToList());
            var lost = acked.Keys.Where(id => !delivered.ContainsKey(id)).ToList();
            Assert.True(lost.Count == 0, $"{lost.Count} acknowledged events never reached the bot, e.g. {string.Join(", ", lost.Take(5))}");
            Assert.DoesNotContain(unacked.Keys, id => !delivered.ContainsKey(id));

            var doubled = delivered.Where(kv => kv.Value.Count > 1).ToList();
            foreach (var (id, copies) in doubled)
            {
                Assert.True(copies[0].ArrivedUtc <= killedAt, $"{id} arrived twice, the first time after the kill");
                Assert.All(copies, c => Assert.Equal(copies[0].Body, c.Body));
            }
            Assert.True(doubled.Count <= 200, $"{doubled.Count} events doubled: more than could be in flight");
        }
    }
}
