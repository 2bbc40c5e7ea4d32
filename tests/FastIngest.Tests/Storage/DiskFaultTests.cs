using System.Net;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Storage;

/// <summary>
/// Disk faults made for real: a tmpfs of a few MiB filled to the last byte, a read-only mount, a frozen device.
/// Before, the first failed commit left the event log failed for good (503 to every webhook until a restart, while
/// <c>/healthz</c> said 200), SIGTERM then crashed with exit 134, each 503 logged a stack trace that grew by one
/// rethrow per request, and a frozen disk left <c>/readyz</c> ready. Now a refused write is retried until the disk
/// takes it: webhooks get 503 meanwhile (never 200 for something not recorded), <c>/readyz</c> says why, the stall
/// is logged once when it starts and once when it ends, and once space is back the server goes on by itself with
/// everything acknowledged before and after delivered. The storage writer is process-wide, so these run alone.
/// </summary>
[Collection(nameof(RunsAlone))]
public sealed class DiskFaultTests : BotTest
{
    private static readonly Dictionary<string, string?> Small = new()
    {
        ["FastIngest:Storage:DedupeIndexBytes"] = "65536",
        ["FastIngest:Storage:StateIndexBytes"] = "65536",
        ["FastIngest:Storage:WindowIndexBytes"] = "65536",
        ["FastIngest:Storage:DedupeMemoryBytes"] = "262144",
        ["FastIngest:Storage:StateMemoryBytes"] = "262144",
        ["FastIngest:Storage:WindowMemoryBytes"] = "262144",
        ["FastIngest:Storage:LogMemoryBytes"] = "2097152",
        ["FastIngest:Storage:StallThreshold"] = "00:00:00.5",
    };

    private TestTenant Tenant => new("acme", ForwardUrl: Bot.Url, Concurrency: 4);

    private static byte[] Event(string name, int i) => Payloads.Text($"wamid.{name}{i:D4}", from: $"1555{i % 20:D4}");

    /// <summary>
    /// Sends webhooks one after another (each in flight on its own) until one is answered 503; returns the ones in
    /// flight. A webhook whose commit met the fault waits (its record is retried), the ones after it are refused.
    /// </summary>
    private static async Task<List<(string Id, Task<HttpResponseMessage> Response)>> PostUntilRefusedAsync(HttpClient client, string name, string tenant = "acme")
    {
        var sent = new List<(string, Task<HttpResponseMessage>)>();
        for (var i = 0; i < 2000; i++)
        {
            var post = client.SendAsync(Payloads.Webhook(tenant, Event(name, i), "app-secret"));
            sent.Add(($"msg:wamid.{name}{i:D4}", post));
            var done = await Task.WhenAny(post, Task.Delay(50));
            if (done == post && (await post).StatusCode == HttpStatusCode.ServiceUnavailable)
                return sent;
        }
        throw new InvalidOperationException("no webhook was refused while the disk refused writes");
    }

    private static async Task<List<string>> AckedAsync(IEnumerable<(string Id, Task<HttpResponseMessage> Response)> sent)
    {
        var acked = new List<string>();
        foreach (var (id, response) in sent)
        {
            try
            {
                if ((await response).StatusCode == HttpStatusCode.OK)
                    acked.Add(id);
            }
            catch (HttpRequestException)
            {
                // cut at a shutdown: no 200, so Meta would retry it
            }
        }
        return acked;
    }

    [Fact]
    public async Task A_full_disk_gets_503_and_the_server_goes_on_by_itself_once_space_is_back_with_nothing_acked_lost()
    {
        using var disk = SmallDisk.Mount(48);
        await using var server = await IngestServer.StartAsync(disk.DataDir, [Tenant], Small);
        for (var i = 0; i < 20; i++)
            Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", Event("BEFORE", i), "app-secret")).StatusCode);
        await Bot.WaitForDistinctAsync(20);

        disk.Fill();
        var during = await PostUntilRefusedAsync(server.Client, "DURING");
        var ready = await server.Client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Contains("storage: writes failing", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync("/healthz")).StatusCode); // alive: it recovers by itself

        disk.Free();
        // Within seconds, without a restart: the next webhook is accepted.
        var after = new List<string>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        for (var i = 0; after.Count < 20; i++)
        {
            Assert.True(DateTime.UtcNow < deadline, "no webhook accepted 30 s after space came back");
            if ((await server.PostAsync("acme", Event("AFTER", i), "app-secret")).StatusCode == HttpStatusCode.OK)
                after.Add($"msg:wamid.AFTER{i:D4}");
            else
                await Task.Delay(100);
        }
        var acked = (await AckedAsync(during)).Concat(after).ToList();
        foreach (var id in acked)
            await Bot.WaitForEventAsync(id);
        while ((await server.Client.GetAsync("/readyz")).StatusCode != HttpStatusCode.OK)
        {
            Assert.True(DateTime.UtcNow < deadline.AddSeconds(30), "/readyz still failing after the disk recovered");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Sigterm_on_a_full_disk_exits_0_logs_the_stall_once_and_a_restart_delivers_everything_acked()
    {
        using var disk = SmallDisk.Mount(48);
        var settings = ServerProcessHost.OneTenant(disk.DataDir, Bot.Url, [.. Small.Select(kv => $"--{kv.Key}={kv.Value}"), "--FastIngest:ShutdownTimeout=00:00:05", "--FastIngest:CheckpointInterval=00:00:00.5"]);
        List<string> acked;
        using (var server = await ServerProcessHost.StartAsync(settings))
        {
            using var client = new HttpClient { BaseAddress = server.Url, Timeout = TimeSpan.FromSeconds(60) };
            for (var i = 0; i < 20; i++)
            {
                using var r = await client.SendAsync(Payloads.Webhook("t1", Event("BEFORE", i), "app-secret"));
                Assert.True(r.StatusCode == HttpStatusCode.OK, $"{r.StatusCode} {await r.Content.ReadAsStringAsync()}");
            }
            disk.Fill();
            var during = await PostUntilRefusedAsync(client, "DURING", "t1");
            for (var i = 0; i < 200; i++) // a burst of refusals: counted, not logged one by one
                Assert.Equal(HttpStatusCode.ServiceUnavailable, (await client.SendAsync(Payloads.Webhook("t1", Event("REFUSED", i), "app-secret"))).StatusCode);
            // The stall is logged when the engine's once-a-second watch sees it.
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!server.Output.Any(l => l.Contains("Storage stalled", StringComparison.Ordinal)) && DateTime.UtcNow < deadline)
                await Task.Delay(50);

            server.Terminate();
            var exited = server.Process.WaitForExit(TimeSpan.FromSeconds(60));
            Assert.True(exited, $"the server did not exit after SIGTERM on a full disk:\n{string.Join('\n', server.Output.TakeLast(60))}");
            Assert.True(server.Process.ExitCode == 0, $"exit {server.Process.ExitCode}:\n{string.Join('\n', server.Output.TakeLast(60))}");
            acked = ["msg:wamid.BEFORE0000", .. await AckedAsync(during)];
            var output = server.Output;
            Assert.Single(output, l => l.Contains("Storage stalled", StringComparison.Ordinal));
            Assert.True(output.Count(l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal)) < 60, $"{output.Count} lines of output, stack traces repeated:\n{string.Join('\n', output.Take(80))}");
        }

        disk.Free();
        using (var again = await ServerProcessHost.StartAsync(settings))
        {
            for (var i = 0; i < 20; i++)
                await Bot.WaitForEventAsync($"msg:wamid.BEFORE{i:D4}");
            foreach (var id in acked)
                await Bot.WaitForEventAsync(id);
        }
    }

    [Fact]
    public async Task A_frozen_disk_fails_readyz_and_refuses_new_webhooks_until_it_thaws()
    {
        using var dir = new TempDir();
        await using var server = await IngestServer.StartAsync(dir.Path, [Tenant], Small);
        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", Event("BEFORE", 0), "app-secret")).StatusCode);
        var device = server.Engine.Log.Device;
        device.Freeze();
        Task<HttpResponseMessage> waiting;
        try
        {
            waiting = server.PostAsync("acme", Event("FROZEN", 0), "app-secret"); // its commit waits for the disk
            var deadline = DateTime.UtcNow.AddSeconds(30);
            HttpResponseMessage ready;
            while ((ready = await server.Client.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK)
            {
                Assert.True(DateTime.UtcNow < deadline, "/readyz still ready 30 s into a frozen disk");
                await Task.Delay(50);
            }
            Assert.Contains("commit has waited", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await server.PostAsync("acme", Event("REFUSED", 0), "app-secret")).StatusCode);
            Assert.False(waiting.IsCompleted);
        }
        finally
        {
            device.Thaw();
        }
        Assert.Equal(HttpStatusCode.OK, (await waiting).StatusCode);
        await Bot.WaitForEventAsync("msg:wamid.FROZEN0000");
        Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync("/readyz")).StatusCode);
    }

    [Fact]
    public async Task A_read_only_data_directory_stops_start_up_with_one_line_naming_the_file()
    {
        using var disk = SmallDisk.Mount(8);
        Directory.CreateDirectory(disk.DataDir);
        disk.ReadOnly();
        var (exitCode, errors) = await ServerProcessHost.RunUntilExitAsync(ServerProcessHost.OneTenant(disk.DataDir, Bot.Url));
        disk.ReadWrite();

        Assert.NotEqual(0, exitCode);
        var line = Assert.Single(errors);
        Assert.Contains(disk.DataDir, line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", line, StringComparison.Ordinal);
    }
}
