using System.Text;
using FastIngest.Outbound;
using FastIngest.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastIngest.Tests.Outbound;

/// <summary>
/// The book of sends on a real outbound log whose commits a test holds back (<c>EventLog.HoldCommits</c>: the disk
/// has not confirmed yet) or whose disk it freezes (<c>SyncFileDevice.Freeze</c>): a change shows only once its record is committed, and a full log is waited out without
/// holding the book's lock.
/// </summary>
public sealed class OutboundBookTests : IDisposable
{
    private readonly TempDir _dir = new();
    private static readonly byte[] s_body = Encoding.UTF8.GetBytes("""{"messaging_product":"whatsapp","to":"16505550001","type":"text","text":{"body":"hi"}}""");

    private SendIndex? _index;

    public void Dispose()
    {
        _index?.Dispose();
        _dir.Dispose();
    }

    private OutboundBook Open()
    {
        _index?.Dispose();
        _index = new SendIndex(Path.Combine(_dir.Path, "index"), 1 << 16, 1 << 20, TimeSpan.FromDays(7), TimeProvider.System, NullLogger.Instance);
        return new(Path.Combine(_dir.Path, "outbound"), _index, 70_000, 1 << 20, 0, TimeSpan.FromDays(7), NullLogger.Instance);
    }

    private static async Task<OutboundMessage> AddAsync(OutboundBook book, string key, byte[]? body = null)
    {
        var (message, created, durable) = await book.AddAsync("t1", "100", key, "16505550001", "text", null, "v23.0", body ?? s_body, 1_000);
        Assert.True(created);
        await durable;
        return message;
    }

    [Fact]
    public async Task A_step_shows_only_once_its_record_is_committed()
    {
        using (var book = Open())
        {
            var message = await AddAsync(book, "k1");
            Assert.True(await book.RecordAsync(message, new OutboundStep(OutboundStatus.Submitted, 1_001, 0, 0, null)));

            book.Log.HoldCommits();
            var accepted = book.RecordAsync(message, new OutboundStep(OutboundStatus.Accepted, 1_002, 0, 0, null), "wamid.BOOK1");
            // Not committed: no lookup, no waiter and no lifecycle event may act on it yet (a crash now leaves it submitted).
            Assert.False(accepted.IsCompleted);
            Assert.Equal(OutboundStatus.Submitted, message.Status);
            Assert.Null(book.FindByWamid("t1", "wamid.BOOK1"));
            Assert.False(message.Answered.Task.IsCompleted);

            book.Log.ReleaseCommits();
            Assert.True(await accepted);
            Assert.Equal(OutboundStatus.Accepted, message.Status);
            Assert.Same(message, book.FindByWamid("t1", "wamid.BOOK1"));
            Assert.True(message.Answered.Task.IsCompleted);
        }
        using (var reopened = Open())
            Assert.Equal(OutboundStatus.Accepted, reopened.FindKey("t1", "k1")!.Status);
    }

    [Fact]
    public async Task A_lookup_while_a_send_waits_out_a_full_log_answers_and_the_send_goes_through_once_the_disk_catches_up()
    {
        using var book = Open();
        var first = await AddAsync(book, "first");
        var big = Encoding.UTF8.GetBytes("""{"messaging_product":"whatsapp","to":"16505550001","type":"text","text":{"body":" """ + new string('x', 60_000) + "\"}}");
        book.Log.Device.Freeze(); // no page reaches the disk, so the log's memory fills
        try
        {
            // Sends pile up in the log's memory until one meets a full log (backpressure) and waits for room.
            var adding = Task.Run(async () =>
            {
                for (var i = 0; book.Backpressured == 0; i++)
                    await book.AddAsync("t1", "100", $"big-{i}", "16505550001", "text", null, "v23.0", big, 1_000);
            });
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (book.Backpressured == 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "the log never filled");
                await Task.Delay(10);
            }
            // The wait must not hold the book: this lookup answers before the disk catches up. (Before, the send slept
            // under the book's lock until it gave up after 5 s, and the lookup answered only then.)
            Assert.Same(first, book.Find(first.Id));
            Assert.False(adding.IsCompleted);
            book.Log.Device.Thaw();
            await adding; // the send that waited goes through: it was neither refused nor lost
        }
        finally
        {
            book.Log.Device.Thaw();
        }
    }
}
