using System.Text;
using FastIngest.Outbound;

namespace FastIngest.Tests.Outbound;

/// <summary>The send tier's tables and checks, one rule per case.</summary>
public sealed class OutboundRulesTests
{
    [Theory]
    [InlineData(200, 0, MetaErrorClass.None)]
    [InlineData(400, 130429, MetaErrorClass.Throughput)]
    [InlineData(400, 80007, MetaErrorClass.Throughput)]
    [InlineData(429, 0, MetaErrorClass.Throughput)]
    [InlineData(400, 131056, MetaErrorClass.PairRate)]
    [InlineData(500, 131000, MetaErrorClass.Transient)]
    [InlineData(503, 0, MetaErrorClass.Transient)]
    [InlineData(500, 1, MetaErrorClass.Transient)]
    [InlineData(503, 133004, MetaErrorClass.Transient)]
    [InlineData(401, 190, MetaErrorClass.AuthExpired)]
    [InlineData(400, 131047, MetaErrorClass.Permanent)]
    [InlineData(400, 132001, MetaErrorClass.Permanent)]
    [InlineData(400, 132015, MetaErrorClass.Permanent)]
    [InlineData(400, 131026, MetaErrorClass.Permanent)]
    [InlineData(400, 100, MetaErrorClass.Permanent)]
    [InlineData(400, 368, MetaErrorClass.Permanent)]
    [InlineData(404, 0, MetaErrorClass.Permanent)]
    public void Each_Meta_answer_has_its_class(int httpStatus, int code, MetaErrorClass expected)
        => Assert.Equal(expected, MetaErrors.Classify(httpStatus, code));

    [Theory]
    [InlineData(OutboundStatus.Queued, OutboundStatus.Submitted, true)]
    [InlineData(OutboundStatus.Submitted, OutboundStatus.Submitted, true)]
    [InlineData(OutboundStatus.Submitted, OutboundStatus.Accepted, true)]
    [InlineData(OutboundStatus.Submitted, OutboundStatus.Rejected, true)]
    [InlineData(OutboundStatus.Accepted, OutboundStatus.Read, true)]
    [InlineData(OutboundStatus.Read, OutboundStatus.Delivered, false)]
    [InlineData(OutboundStatus.Delivered, OutboundStatus.Delivered, false)]
    [InlineData(OutboundStatus.Queued, OutboundStatus.Sent, false)]
    [InlineData(OutboundStatus.Delivered, OutboundStatus.Failed, true)]
    [InlineData(OutboundStatus.Read, OutboundStatus.Failed, true)] // if Meta stamped it later: the delivery state judges that first
    [InlineData(OutboundStatus.Failed, OutboundStatus.Read, false)]
    [InlineData(OutboundStatus.Rejected, OutboundStatus.Accepted, false)]
    [InlineData(OutboundStatus.Accepted, OutboundStatus.Rejected, false)]
    public void The_lifecycle_only_moves_forward(OutboundStatus from, OutboundStatus to, bool allowed)
        => Assert.Equal(allowed, OutboundBook.CanMove(from, to));

    [Theory]
    [InlineData("""{"messaging_product":"whatsapp","to":"+55 (11) 98765-4321","text":{"body":"hi"}}""", "5511987654321", "text")]
    [InlineData("""{"messaging_product":"whatsapp","to":"16505551234","type":"image","image":{"link":"https://x/y.png"}}""", "16505551234", "image")]
    [InlineData("""{"messaging_product":"whatsapp","to":"16505551234","type":"contacts","contacts":[]}""", "16505551234", "contacts")]
    public void Well_formed_sends_are_read(string body, string to, string type)
    {
        var read = SendRequest.TryRead(Encoding.UTF8.GetBytes(body), out var field, out _);
        Assert.True(read.HasValue, field);
        Assert.Equal(to, read.Value.To);
        Assert.Equal(type, read.Value.Type);
    }

    [Theory]
    [InlineData("[]", "body")]
    [InlineData("""{"messaging_product":"sms","to":"16505551234","text":{"body":"hi"}}""", "messaging_product")]
    [InlineData("""{"messaging_product":"whatsapp","to":16505551234,"text":{"body":"hi"}}""", "to")]
    [InlineData("""{"messaging_product":"whatsapp","to":"123","text":{"body":"hi"}}""", "to")]
    [InlineData("""{"messaging_product":"whatsapp","to":"16505551234","text":{"body":""}}""", "text.body")]
    [InlineData("""{"messaging_product":"whatsapp","to":"16505551234","type":"image","image":{}}""", "image")]
    [InlineData("""{"messaging_product":"whatsapp","to":"16505551234","type":"reaction","reaction":{"emoji":"x"}}""", "reaction.message_id")]
    [InlineData("""{"messaging_product":"whatsapp","to":"16505551234","type":"template","template":{"language":{"code":"en"}}}""", "template.name")]
    public void Malformed_sends_name_the_field(string body, string expectedField)
    {
        Assert.Null(SendRequest.TryRead(Encoding.UTF8.GetBytes(body), out var field, out var problem));
        Assert.Equal(expectedField, field);
        Assert.NotEmpty(problem);
    }

    [Fact]
    public void A_text_over_Metas_limit_is_refused()
    {
        var body = $$$"""{"messaging_product":"whatsapp","to":"16505551234","text":{"body":"{{{new string('x', SendRequest.MaxTextLength + 1)}}}"}}""";
        Assert.Null(SendRequest.TryRead(Encoding.UTF8.GetBytes(body), out var field, out _));
        Assert.Equal("text.body", field);
    }

    [Theory]
    [InlineData("v23.0", true)]
    [InlineData("v9.12", true)]
    [InlineData("v100.1", true)]
    [InlineData("23.0", false)]
    [InlineData("v23", false)]
    [InlineData("v23.", false)]
    [InlineData("vx.0", false)]
    [InlineData("v1234.0", false)]
    public void Graph_versions_are_checked(string version, bool valid) => Assert.Equal(valid, GraphVersions.IsValid(version));

    [Theory]
    [InlineData("wait=5", 5)]
    [InlineData("respond-async, wait=2.5", 2.5)]
    [InlineData("wait=100", 30)]
    [InlineData("", 0)]
    [InlineData("wait=-1", 0)]
    public void Prefer_wait_is_read_and_capped(string prefer, double seconds)
        => Assert.Equal(TimeSpan.FromSeconds(seconds), OutboundEndpoints.WaitOf(prefer, TimeSpan.FromSeconds(30)));

    [Fact]
    public void A_throttled_bucket_halves_and_then_recovers_a_tenth_per_interval()
    {
        var time = new Support.ManualClock(DateTimeOffset.UtcNow);
        using var bucket = new ThroughputBucket("p", 80, TimeSpan.FromSeconds(5), time);
        Assert.True(bucket.TryTake());
        bucket.Cut();
        Assert.Equal(40, bucket.Rate);
        bucket.Cut();
        Assert.Equal(20, bucket.Rate);
        Assert.True(bucket.Recover()); // too early: still below
        Assert.Equal(20, bucket.Rate);
        time.Advance(TimeSpan.FromSeconds(5));
        bucket.Recover();
        Assert.Equal(28, bucket.Rate);
        for (var i = 0; i < 10; i++)
        {
            time.Advance(TimeSpan.FromSeconds(5));
            bucket.Recover();
        }
        Assert.Equal(80, bucket.Rate);
        Assert.False(bucket.Recover());
    }

    [Fact]
    public async Task Cuts_from_many_send_tasks_race_the_scheduler_s_takes_without_losing_a_cut_or_throwing()
    {
        // 130429 answers come back on send tasks while the scheduler loop takes tokens from the same bucket. Before,
        // a take could meet a limiter a cut had just disposed (ObjectDisposedException out of the scheduler loop,
        // which then stopped for every tenant), and two cuts read the same rate (one was lost).
        var time = new Support.ManualClock(DateTimeOffset.UtcNow);
        using var bucket = new ThroughputBucket("p", 1000, TimeSpan.FromSeconds(5), time);
        using var stop = new CancellationTokenSource();
        var taker = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                _ = bucket.Available;
                _ = bucket.TryTake();
                _ = bucket.Recover();
            }
        });
        const int cuts = 7;
        using var go = new ManualResetEventSlim(false);
        var cutters = Enumerable.Range(0, cuts).Select(_ => Task.Run(() =>
        {
            go.Wait();
            for (var i = 0; i < 2_000; i++)
            {
                bucket.Cut();
                time.Advance(TimeSpan.FromSeconds(5)); // lets the taker's Recover replace the limiter too
            }
        })).ToArray();
        go.Set();
        await Task.WhenAll(cutters);
        await stop.CancelAsync();
        await taker; // throws what the taker met
        Assert.InRange(bucket.Rate, 10, 1000);

        // Without a recovery in between, n concurrent cuts are n halvings.
        for (var round = 0; round < 2000; round++)
        {
            using var quiet = new ThroughputBucket("q", 1024, TimeSpan.FromSeconds(5), new Support.ManualClock(DateTimeOffset.UtcNow));
            using var start = new Barrier(4);
            var four = Enumerable.Range(0, 4).Select(_ => Task.Run(() => { start.SignalAndWait(); quiet.Cut(); })).ToArray();
            await Task.WhenAll(four);
            Assert.Equal(64, quiet.Rate);
        }
    }
}
