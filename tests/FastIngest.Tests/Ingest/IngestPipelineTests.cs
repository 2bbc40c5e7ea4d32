using System.Text;
using FastIngest.Configuration;
using FastIngest.Ingest;
using FastIngest.Storage;
using FastIngest.Tenancy;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Ingest;

/// <summary>The synchronous ingest core over real FASTER stores in a temp directory.</summary>
public sealed class IngestPipelineTests : IDisposable
{
    private readonly Stores _stores = new();
    private readonly Tenant _tenant = new(new TenantOptions { Id = "acme", AppSecret = "s", VerifyToken = "v" });

    public void Dispose()
    {
        _stores.Dispose();
        _tenant.Dispose();
    }

    private IngestPipeline Pipeline(int boot = 1, long? recoveredTail = null) => _stores.Pipeline(boot, recoveredTail);

    private IngestOutcome Accept(IngestPipeline pipeline, byte[] body) => pipeline.Accept(_tenant, body, body.Length);

    private void Mark(string eventId, long seenUnixMs, long address, int boot)
    {
        var s = _stores.Dedupe.Rent();
        DedupeStore.Put(s, EventIdentity.Key(_tenant.IdUtf8, Encoding.ASCII.GetBytes(eventId)), new DedupeEntry { SeenUnixMs = seenUnixMs, LogAddress = address, Boot = boot });
        _stores.Dedupe.Return(s);
    }

    [Fact]
    public void New_events_are_appended_as_one_batch_and_repeats_are_not()
    {
        var pipeline = Pipeline();
        var first = Accept(pipeline, Payloads.Messages(("wamid.1", "a", "x"), ("wamid.2", "b", "y"), ("wamid.1", "a", "x")));
        Assert.Equal((IngestStatus.Accepted, 3, 2), (first.Status, first.Events, first.NewEvents));
        Assert.Same(_stores.Log, first.WaitLog);

        var again = Accept(pipeline, Payloads.Messages(("wamid.2", "b", "y"), ("wamid.3", "c", "z")));
        Assert.Equal(1, again.NewEvents);

        _stores.Log.CommitAndWait();
        using var iter = _stores.Log.Scan(_stores.Log.BeginAddress, _stores.Log.CommittedUntilAddress);
        Assert.True(iter.GetNext(out byte[] record, out _, out var address));
        Assert.Equal(first.WaitForAddress, address);
        var stored = StoredPayload.Read(record);
        Assert.Equal(2, stored.EventCount);
        Assert.Equal([0, 1], [stored.EventIndexAt(0), stored.EventIndexAt(1)]);
        Assert.Equal("acme", Encoding.UTF8.GetString(stored.Tenant));
    }

    [Fact]
    public void A_mark_left_by_an_earlier_boot_for_a_record_that_never_reached_disk_does_not_count()
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var tail = _stores.Log.TailAddress;
        Mark("msg:wamid.GHOST", now, tail + 4096, boot: 1);     // checkpointed before its record was committed
        Mark("msg:wamid.KEPT", now, tail - 1, boot: 1);          // its record is below the recovered tail
        Mark("msg:wamid.EXPIRED", now - (long)TimeSpan.FromDays(8).TotalMilliseconds, tail - 1, boot: 1);
        var pipeline = Pipeline(boot: 2, recoveredTail: tail);

        Assert.Equal(1, Accept(pipeline, Payloads.Text("wamid.GHOST")).NewEvents);
        Assert.Equal(0, Accept(pipeline, Payloads.Text("wamid.KEPT")).NewEvents);
        Assert.Equal(1, Accept(pipeline, Payloads.Text("wamid.EXPIRED")).NewEvents);
        Assert.Equal(0, Accept(pipeline, Payloads.Text("wamid.GHOST")).NewEvents); // now marked by this boot
    }

    [Fact]
    public void Unparseable_payloads_go_to_the_quarantine_log()
    {
        var pipeline = Pipeline();
        var outcome = Accept(pipeline, "{\"entry\":[{"u8.ToArray());
        Assert.Equal(IngestStatus.Quarantined, outcome.Status);
        Assert.Same(_stores.Quarantine, outcome.WaitLog);
        Assert.Equal(1, pipeline.QuarantinedCount);
        _stores.Quarantine.CommitAndWait();
        using var iter = _stores.Quarantine.Scan(_stores.Quarantine.BeginAddress, _stores.Quarantine.CommittedUntilAddress);
        Assert.True(iter.GetNext(out byte[] record, out _, out _));
        var stored = StoredPayload.Read(record);
        Assert.Equal(LogRecordType.Quarantine, stored.Type);
        Assert.StartsWith("invalid JSON", Encoding.UTF8.GetString(stored.Reason), StringComparison.Ordinal);
        Assert.Equal("{\"entry\":[{", Encoding.UTF8.GetString(stored.Body));
    }
}
