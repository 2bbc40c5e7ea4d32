using System.Net;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Storage;

/// <summary>
/// Dedupe across a crash loop. Each "crash" is the data directory copied at one exact moment (what a SIGKILL or a
/// power cut leaves on disk), taken at the seam that matters: the event log's commits held back, so a request's
/// record is appended in memory but not on disk, while a dedupe checkpoint saves its mark. The next boot starts from
/// that image. Meta never got a 200 for that event, so its retry must be stored and forwarded, however many boots
/// come in between and whatever they write at the same log address.
/// </summary>
public sealed class DedupeCrashLoopTests : BotTest
{

    private static readonly Dictionary<string, string?> s_manualCheckpoints = new() { ["FastIngest:CheckpointInterval"] = "01:00:00" };

    private static void CopyImage(string from, string to)
    {
        foreach (var dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(dir.Replace(from, to, StringComparison.Ordinal));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            if (Path.GetFileName(file) == "lock")
                continue; // the live process's DataDirLock (empty; the kernel drops a dead process's lock)
            try
            {
                File.Copy(file, file.Replace(from, to, StringComparison.Ordinal));
            }
            catch (FileNotFoundException)
            {
                // an outdated commit or checkpoint file, deleted while we copied: a crash would have lost it too
            }
        }
    }

    /// <summary>
    /// Boot 1 appends <paramref name="lost"/>'s record, a checkpoint saves its mark, and the process "dies" before the
    /// commit. Returns the crash image's directory and the address the lost record had.
    /// </summary>
    private async Task<(string Image, long LostAddress)> CrashWithACheckpointedMarkAsync(byte[] lost)
    {
        var live = Dir.Sub("boot1");
        var image = Dir.Sub("image1");
        await using var server = await IngestServer.StartAsync(live, [new TestTenant("t1")], s_manualCheckpoints);
        using (var first = await server.PostAsync("t1", Payloads.Text("wamid.BEFORE"), "app-secret"))
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var log = server.Engine.Log;
        var address = log.TailAddress;
        log.HoldCommits();
        try
        {
            var request = server.PostAsync("t1", lost, "app-secret");
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (log.TailAddress == address)
            {
                Assert.True(DateTime.UtcNow < deadline, "the record was never appended");
                await Task.Delay(5);
            }
            Assert.False(request.IsCompleted); // no 200: Meta will retry it
            await server.Engine.CheckpointAndTruncateAsync();
            CopyImage(live, image);
        }
        finally
        {
            log.ReleaseCommits();
        }
        return (image, address);
    }

    [Fact]
    public async Task An_event_whose_mark_was_checkpointed_before_its_commit_is_stored_on_Metas_retry_after_three_boots()
    {
        var lost = Payloads.Text("wamid.LOST", from: "16505550100", text: "never acknowledged");
        var (image1, lostAddress) = await CrashWithACheckpointedMarkAsync(lost);

        // Boot 2 writes past the lost record's address (its records get their 200s), then crashes too.
        var image2 = Dir.Sub("image2");
        await using (var boot2 = await IngestServer.StartAsync(image1, [new TestTenant("t1")], s_manualCheckpoints))
        {
            for (var i = 0; boot2.Engine.Log.CommittedUntilAddress <= lostAddress + lost.Length; i++)
            {
                Assert.True(i < 100, "boot 2 never wrote past the lost record's address");
                using var r = await boot2.PostAsync("t1", Payloads.Text($"wamid.BOOT2N{i:D2}", from: $"1650555{i:D4}"), "app-secret");
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            }
            await boot2.Engine.CheckpointAndTruncateAsync();
            CopyImage(image1, image2);
        }

        // Boot 3: Meta retries the event it never got a 200 for. It must be stored and forwarded, once.
        await using var boot3 = await IngestServer.StartAsync(image2, [new TestTenant("t1", ForwardUrl: Bot.Url)], s_manualCheckpoints);
        using (var retry = await boot3.PostAsync("t1", lost, "app-secret"))
            Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
        using (var sentinel = await boot3.PostAsync("t1", Payloads.Text("wamid.SENTINEL", from: "16505550100"), "app-secret"))
            Assert.Equal(HttpStatusCode.OK, sentinel.StatusCode);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!Bot.Delivered.Any(r => r.EventId == "msg:wamid.SENTINEL"))
        {
            Assert.True(DateTime.UtcNow < deadline, $"sentinel not delivered; got {string.Join(",", Bot.Delivered.Select(r => r.EventId))}");
            await Task.Delay(20);
        }
        // Same customer: the sentinel travels behind the retried event, so it is there by now, or never was.
        Assert.Single(Bot.Delivered, r => r.EventId == "msg:wamid.LOST");
        Assert.Equal(0, boot3.Engine.Tenants.All[0].Counters.Duplicates);
    }

    [Fact]
    public async Task A_real_duplicate_across_the_same_crash_loop_is_still_a_duplicate()
    {
        // The other direction: an event that did get its 200 in boot 2, at the address where boot 1's lost record had
        // been, is deduped in boot 3, although boot 2 crashed before any checkpoint of its own: boot 3 replays it.
        var (image1, _) = await CrashWithACheckpointedMarkAsync(Payloads.Text("wamid.LOST2"));
        var image2 = Dir.Sub("image2");
        var acked = Payloads.Text("wamid.ACKED", from: "16505550200");
        await using (var boot2 = await IngestServer.StartAsync(image1, [new TestTenant("t1")], s_manualCheckpoints))
        {
            using (var r = await boot2.PostAsync("t1", acked, "app-secret"))
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            CopyImage(image1, image2);
        }
        await using var boot3 = await IngestServer.StartAsync(image2, [new TestTenant("t1")], s_manualCheckpoints);
        using (var again = await boot3.PostAsync("t1", acked, "app-secret"))
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal(1, boot3.Engine.Tenants.All[0].Counters.Duplicates);
    }
}
