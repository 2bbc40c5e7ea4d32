using System.Net;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Storage;

/// <summary>
/// Damage to the data directory after a clean stop, done for real to the files (a truncated, missing or flipped event
/// log segment; an unrecoverable dedupe store). Before, the server started and said ready, lost acknowledged events
/// silently, and then answered 200 to new webhooks it never delivered (or crashed at start with a stack trace). Now
/// recovery verifies every record's checksum, cuts out only what does not verify, reports it (log line, metric,
/// <c>/readyz</c> until an operator clears it) and delivers every event acknowledged after it; the events lost are
/// accepted again when Meta resends them.
/// </summary>
public sealed class LogDamageTests : BotTest
{
    private const string AdminToken = "admin-token-0123456789";
    private const int Old = 400;
    private const int Customers = 50;
    private readonly TempDir _dir = new();

    private static readonly Dictionary<string, string?> Settings = new() { ["FastIngest:AdminToken"] = AdminToken };

    private static byte[] OldPayload(int i) => Payloads.Text($"wamid.OLD{i:D5}", from: Customer(i));

    private static string Customer(int i) => $"1555{i % Customers:D4}";

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _dir.Dispose();
    }

    /// <summary>Acknowledges <see cref="Old"/> events while the bot is unreachable, then stops cleanly: they all wait in the log.</summary>
    private async Task FillAsync()
    {
        await using var server = await IngestServer.StartAsync(_dir.Path, [new TestTenant("acme", ForwardUrl: "http://127.0.0.1:9/down")], Settings);
        for (var i = 0; i < Old; i++)
            Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", OldPayload(i), "app-secret")).StatusCode);
    }

    private Task<IngestServer> StartAsync() => IngestServer.StartAsync(_dir.Path, [new TestTenant("acme", ForwardUrl: Bot.Url, Concurrency: 4)], Settings);

    private static string Segment(string dir) => Path.Combine(dir, "events", "log.0");

    [Theory]
    [InlineData("truncated by 4 KB", Old - 12)]
    [InlineData("missing", 0)]
    [InlineData("one byte flipped", Old - 1)]
    public async Task Damage_to_the_event_log_is_reported_and_every_event_acked_after_it_is_delivered(string damage, int atLeastKept)
    {
        await FillAsync();
        // One more clean start and stop before the damage: the marks of the lost events are then two boots old.
        await (await IngestServer.StartAsync(_dir.Path, [new TestTenant("acme", ForwardUrl: "http://127.0.0.1:9/down")], Settings)).DisposeAsync();
        var segment = Segment(_dir.Path);
        switch (damage)
        {
            case "truncated by 4 KB":
                using (var f = new FileStream(segment, FileMode.Open))
                    f.SetLength(f.Length - 4096);
                break;
            case "missing":
                File.Delete(segment);
                break;
            default:
                // One bit of event 200's record (inside its wamid): that record, and only it, fails its checksum.
                var bytes = File.ReadAllBytes(segment);
                var at = bytes.AsSpan().IndexOf("wamid.OLD00200"u8);
                Assert.True(at > 0);
                using (var f = new FileStream(segment, FileMode.Open))
                {
                    f.Position = at + 10;
                    f.WriteByte((byte)(bytes[at + 10] ^ 0x10));
                }
                break;
        }

        await using (var server = await StartAsync())
        {
            // Reported: /readyz fails naming the event log, the admin API lists it, the metric counts it.
            var ready = await server.Client.GetAsync("/readyz");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            Assert.Contains("events log", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            var (status, report) = await server.AdminAsync(HttpMethod.Get, "/admin/damage", AdminToken);
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Contains(report.GetProperty("items").EnumerateArray(), e => e.GetProperty("store").GetString() == "events");
            Assert.Contains("fastingest_storage_damage_total{store=\"events\"}", await server.Client.GetStringAsync("/metrics"), StringComparison.Ordinal);

            // Every new event is delivered. Each customer's new event comes after its old ones (per-customer order),
            // so once all are in, every old event that survived has been delivered too.
            for (var c = 0; c < Customers; c++)
                Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", Payloads.Text($"wamid.NEW{c:D3}", from: Customer(c)), "app-secret")).StatusCode);
            for (var c = 0; c < Customers; c++)
                await Bot.WaitForEventAsync($"msg:wamid.NEW{c:D3}");
            var kept = Bot.Delivered.Select(r => r.EventId!).Where(id => id.Contains("OLD", StringComparison.Ordinal)).Distinct().Count();
            Assert.True(kept >= atLeastKept, $"only {kept} of {Old} old events survived {damage}; at most the damaged records may be lost");

            // Meta resends what got lost (it resends everything it has no 200 for; here, to be sure, all of them):
            // the lost ones are accepted as new and delivered, the others are duplicates.
            for (var i = 0; i < Old; i++)
                Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", OldPayload(i), "app-secret")).StatusCode);
            await Bot.WaitForDistinctAsync(Old + Customers, TimeSpan.FromSeconds(60));

            // The operator clears the report: ready again.
            var (cleared, body) = await server.AdminAsync(HttpMethod.Post, "/admin/damage/clear", AdminToken);
            Assert.Equal(HttpStatusCode.OK, cleared);
            Assert.True(body.GetProperty("cleared").GetInt32() >= 1);
            Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync("/readyz")).StatusCode);
        }

        // The next start finds nothing new to report (the cut-out range is remembered) and delivers as before.
        await using (var server = await StartAsync())
        {
            var again = await server.Client.GetAsync("/readyz");
            Assert.True(again.StatusCode == HttpStatusCode.OK, await again.Content.ReadAsStringAsync());
            Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", Payloads.Text("wamid.AFTER", from: Customer(0)), "app-secret")).StatusCode);
            await Bot.WaitForEventAsync("msg:wamid.AFTER");
        }
    }

    [Fact]
    public async Task A_dedupe_store_that_cannot_be_recovered_is_started_empty_reported_and_rebuilt_from_the_log()
    {
        await FillAsync();
        // Every checkpoint metadata file of the dedupe store overwritten with garbage: FASTER cannot recover it.
        var infos = Directory.GetFiles(Path.Combine(_dir.Path, "dedupe", "checkpoints"), "*", SearchOption.AllDirectories);
        Assert.NotEmpty(infos);
        foreach (var file in infos)
            File.WriteAllBytes(file, Enumerable.Repeat((byte)0xA5, (int)Math.Max(64, new FileInfo(file).Length)).ToArray());

        await using var server = await StartAsync();
        var ready = await server.Client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Contains("dedupe store", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Single(Directory.GetDirectories(_dir.Path, "dedupe.damaged-*"));

        // Rebuilt from the log: the old events are still known, so Meta's resends of them are duplicates...
        await Bot.WaitForDistinctAsync(Old, TimeSpan.FromSeconds(60));
        for (var i = 0; i < Old; i += 10)
            Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", OldPayload(i), "app-secret")).StatusCode);
        // ...and new events are delivered (the sentinel per customer comes after the resends in its line).
        for (var c = 0; c < Customers; c++)
            Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", Payloads.Text($"wamid.NEW{c:D3}", from: Customer(c)), "app-secret")).StatusCode);
        for (var c = 0; c < Customers; c++)
            await Bot.WaitForEventAsync($"msg:wamid.NEW{c:D3}");
        var doubled = Bot.Delivered.GroupBy(r => r.EventId).Count(g => g.Count() > 1);
        Assert.Equal(0, doubled);
    }

    [Theory]
    [InlineData("hash index")]
    [InlineData("log")]
    public async Task One_flipped_byte_in_the_dedupe_store_is_found_reported_and_the_store_rebuilt(string where)
    {
        // Delivered and checkpointed: the dedupe store alone remembers these events (the log is truncated past them).
        // 3,000 marks fill more than two of the store's 64 KB pages, so whole pages are covered by the manifest.
        var small = new Dictionary<string, string?>(Settings) { ["FastIngest:Storage:DedupeMemoryBytes"] = "262144" };
        await using (var server = await IngestServer.StartAsync(_dir.Path, [new TestTenant("acme", ForwardUrl: Bot.Url, Concurrency: 4)], small))
        {
            for (var i = 0; i < 150; i++)
                Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", Payloads.Messages([.. Enumerable.Range(0, 20).Select(j => ($"wamid.M{i:D3}x{j:D2}", Customer(j), "hi"))]), "app-secret")).StatusCode);
            await Bot.WaitForDistinctAsync(3000, TimeSpan.FromSeconds(60));
            // A checkpoint of its own: the one at stop may be cut by the shutdown's reserve on a loaded machine.
            await server.Engine.CheckpointAndTruncateAsync();
        }
        var dedupe = Path.Combine(_dir.Path, "dedupe");
        string file;
        long at;
        if (where == "log")
        {
            // Inside the range the last checkpoint made read-only: [from, until) of the manifest's first log line.
            var range = File.ReadAllLines(Path.Combine(dedupe, "manifest")).First(l => l.StartsWith("log ", StringComparison.Ordinal)).Split(' ');
            file = Path.Combine(dedupe, "hlog.log.0");
            at = (long.Parse(range[1], System.Globalization.CultureInfo.InvariantCulture) + long.Parse(range[2], System.Globalization.CultureInfo.InvariantCulture)) / 2;
        }
        else
        {
            // The hash index of the checkpoint that recovery will read (the newest: FASTER names checkpoints by a
            // token, and keeps the one before until the next completes).
            file = Directory.GetFiles(Path.Combine(dedupe, "checkpoints"), "ht.dat*", SearchOption.AllDirectories).OrderByDescending(File.GetLastWriteTimeUtc).First();
            at = new FileInfo(file).Length / 2;
        }
        using (var f = new FileStream(file, FileMode.Open))
        {
            f.Position = at;
            var b = f.ReadByte();
            f.Position = at;
            f.WriteByte((byte)(b ^ 0x01));
        }
        var manifest = File.ReadAllText(Path.Combine(dedupe, "manifest"));

        await using (var server = await IngestServer.StartAsync(_dir.Path, [new TestTenant("acme", ForwardUrl: Bot.Url, Concurrency: 4)], small))
        {
            // Before: ready, and Meta's resends of delivered events silently went to the bot again.
            var ready = await server.Client.GetAsync("/readyz");
            Assert.True(ready.StatusCode == HttpStatusCode.ServiceUnavailable, $"ready after flipping {file} at {at}; manifest:\n{manifest}");
            var text = await ready.Content.ReadAsStringAsync();
            Assert.Contains("dedupe store", text, StringComparison.Ordinal);
            Assert.Contains("delivered twice", text, StringComparison.Ordinal);
            Assert.Single(Directory.GetDirectories(_dir.Path, "dedupe.damaged-*"));
            Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("acme", Payloads.Text("wamid.AFTER", from: Customer(0)), "app-secret")).StatusCode);
            await Bot.WaitForEventAsync("msg:wamid.AFTER");

            // The operator's command line: list, then clear; ready again.
            var url = server.Client.BaseAddress!.ToString();
            var (code, output) = await Cli("list", "--url", url, "--token", AdminToken);
            Assert.Equal(0, code);
            Assert.Contains("\"store\":\"dedupe\"", output, StringComparison.Ordinal);
            (code, output) = await Cli("clear", "--url", url, "--token", AdminToken);
            Assert.Equal(0, code);
            Assert.Contains("\"cleared\":1", output, StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync("/readyz")).StatusCode);
        }
    }

    private static async Task<(int Code, string Output)> Cli(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await FastIngest.Server.AdminCli.RunAsync(FastIngest.Server.AdminCli.DamageCommand, args, output, error);
        return (code, output + error.ToString());
    }

    [Fact]
    public async Task A_data_directory_the_server_cannot_use_stops_start_up_with_one_line_naming_the_file()
    {
        Directory.CreateDirectory(Path.Combine(_dir.Path, "boot-tails")); // where a file must be
        var (exitCode, errors) = await ServerProcessHost.RunUntilExitAsync(ServerProcessHost.OneTenant(_dir.Path, Bot.Url));

        Assert.NotEqual(0, exitCode);
        var line = Assert.Single(errors);
        Assert.Contains("boot-tails", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", line, StringComparison.Ordinal);
    }
}
