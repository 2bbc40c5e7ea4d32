using System.Text;
using FastIngest.Configuration;
using FastIngest.Ingest;
using FastIngest.Storage;
using FastIngest.Tenancy;
using FastIngest.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastIngest.Tests.Ingest;

/// <summary>The synchronous ingest core over real FASTER stores in a temp directory.</summary>
public sealed class IngestPipelineTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly EventLog _log;
    private readonly EventLog _quarantine;
    private readonly DedupeStore _dedupe;
    private readonly Tenant _tenant = new(new TenantOptions { Id = "acme", AppSecret = "s", VerifyToken = "v" });

    public IngestPipelineTests()
    {
        _log = new EventLog(_dir.Sub("events"), "events", 1 << 20, 1 << 24, NullLogger.Instance);
        _quarantine = new EventLog(_dir.Sub("quarantine"), "quarantine", 1 << 20, 1 << 24, NullLogger.Instance);
        _dedupe = new DedupeStore(_dir.Sub("dedupe"), 1 << 16, 1 << 22, NullLogger.Instance);
    }

    public void Dispose()
    {
        _log.Dispose();
        _quarantine.Dispose();
        _dedupe.Dispose();
        _dir.Dispose();
    }

    private IngestPipeline Pipeline(int boot = 1, long? recoveredTail = null)
        => new(_log, _quarantine, _dedupe, TimeSpan.FromDays(7), boot, recoveredTail ?? _log.TailAddress, TimeProvider.System, NullLogger.Instance);

    private IngestOutcome Accept(IngestPipeline pipeline, byte[] body) => pipeline.Accept(_tenant, body, body.Length);

    private void Mark(string eventId, long seenUnixMs, long address, int boot)
    {
        var s = _dedupe.Rent();
        DedupeStore.Put(s, EventIdentity.Key(_tenant.IdUtf8, Encoding.ASCII.GetBytes(eventId)), new DedupeEntry { SeenUnixMs = seenUnixMs, LogAddress = address, Boot = boot });
        _dedupe.Return(s);
    }

    [Fact]
    public void New_events_are_appended_as_one_batch_and_repeats_are_not()
    {
        var pipeline = Pipeline();
        var first = Accept(pipeline, Payloads.Messages(("wamid.1", "a", "x"), ("wamid.2", "b", "y"), ("wamid.1", "a", "x")));
        Assert.Equal((IngestStatus.Accepted, 3, 2), (first.Status, first.Events, first.NewEvents));
        Assert.Same(_log, first.WaitLog);

        var again = Accept(pipeline, Payloads.Messages(("wamid.2", "b", "y"), ("wamid.3", "c", "z")));
        Assert.Equal(1, again.NewEvents);

        _log.CommitAndWait();
        using var iter = _log.Scan(_log.BeginAddress, _log.CommittedUntilAddress);
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
        var tail = _log.TailAddress;
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
        Assert.Same(_quarantine, outcome.WaitLog);
        Assert.Equal(1, pipeline.QuarantinedCount);
        _quarantine.CommitAndWait();
        using var iter = _quarantine.Scan(_quarantine.BeginAddress, _quarantine.CommittedUntilAddress);
        Assert.True(iter.GetNext(out byte[] record, out _, out _));
        var stored = StoredPayload.Read(record);
        Assert.Equal(LogRecordType.Quarantine, stored.Type);
        Assert.StartsWith("invalid JSON", Encoding.UTF8.GetString(stored.Reason), StringComparison.Ordinal);
        Assert.Equal("{\"entry\":[{", Encoding.UTF8.GetString(stored.Body));
    }
}
