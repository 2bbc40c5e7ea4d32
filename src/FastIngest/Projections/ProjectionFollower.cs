using System.Buffers;
using FastIngest.Delivery;
using FastIngest.Dispatch;
using FastIngest.Parsing;
using FastIngest.Storage;
using FastIngest.Tenancy;
using Microsoft.Extensions.Logging;

namespace FastIngest.Projections;

/// <summary>
/// The one reader of the event log that keeps the views built from it: each status goes into the delivery-state store
/// (<c>GET /v1/messages</c>, stale detection) and, for sending tenants, moves its send in the outbound book; each
/// inbound message opens (or extends) its customer's 24-hour window. One reader for all tenants, in log order, each
/// batch parsed once. Destinations read only below <see cref="AppliedUntil"/> (<see cref="WaitBeyondAsync"/>), so an
/// event reaches any destination after its views moved: a bot answering a message finds the window open, and a
/// destination asks the delivery state whether a status was stale instead of deciding it again.
/// </summary>
/// <remarks>
/// It starts at the log's begin at every start: every apply is idempotent (the same status webhook gets its first
/// verdict again, a window only moves forward), which rebuilds what the stores' last checkpoints missed. Supervised
/// like the dispatchers: a fault is logged and counted and the loop starts again from <see cref="AppliedUntil"/>.
/// </remarks>
internal sealed class ProjectionFollower : IAsyncDisposable
{
    private readonly EventLog _log;
    private readonly TenantRegistry _tenants;
    private readonly DeliveryStateStore _states;
    private readonly Outbound.OutboundService? _outbound;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly EventBuffer _events = new(64);
    private readonly CancellationTokenSource _stop = new();
    private TaskCompletionSource _advanced = NewSignal();
    private long _appliedUntil;
    private readonly Internal.FaultMemory _faults;
    private Task _running = Task.CompletedTask;
    private static readonly TimeSpan s_restartDelay = TimeSpan.FromSeconds(1);

    public ProjectionFollower(EventLog log, TenantRegistry tenants, DeliveryStateStore states, Outbound.OutboundService? outbound, long startAddress, TimeProvider time, ILogger logger)
    {
        _log = log;
        _tenants = tenants;
        _states = states;
        _outbound = outbound;
        _time = time;
        _logger = logger;
        _appliedUntil = startAddress;
        Feed = new Dispatch.DestinationFeed(startAddress);
        _faults = new Internal.FaultMemory(time);
    }

    /// <summary>
    /// The destinations' shared feed: each record, once applied, is offered to it, so that the destinations that are
    /// caught up read nothing of the log themselves. It starts at this follower's start address.
    /// </summary>
    public Dispatch.DestinationFeed Feed { get; }

    /// <summary>Every record below this address has been applied to the views.</summary>
    public long AppliedUntil => Interlocked.Read(ref _appliedUntil);

    /// <summary>Unexpected exceptions caught in the reader since start.</summary>
    public long Faults => _faults.Count;

    /// <summary>The last fault of the reader while it is recent (see <see cref="Internal.FaultMemory.Recent"/>), for <c>/readyz</c>; null otherwise.</summary>
    public string? RecentFault() => _faults.Recent("projection faults");

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once the record at <paramref name="address"/> has been applied (<see cref="AppliedUntil"/> is past it).</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired first.</exception>
    public async ValueTask WaitBeyondAsync(long address, CancellationToken cancellationToken)
    {
        while (true)
        {
            var signal = Volatile.Read(ref _advanced);
            if (AppliedUntil > address)
                return;
            await signal.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public void Start()
        => _running = Task.Run(() => Internal.Supervised.RunAsync(ReadLoopAsync, ex =>
        {
            _faults.Record("reader", ex);
            DispatchLog.WorkerFault(_logger, ex, "*", "projections");
        }, s_restartDelay, _time, _stop.Token));

    private async Task ReadLoopAsync(CancellationToken ct)
    {
        using var iter = _log.Scan(AppliedUntil);
        while (!ct.IsCancellationRequested)
        {
            var read = 0;
            while (iter.GetNext(MemoryPool<byte>.Shared, out var owner, out var length, out var address, out var next))
            {
                using (owner)
                {
                    Apply(owner.Memory.Span[..length], address);
                    Interlocked.Exchange(ref _appliedUntil, next);
                    // Then to every destination that is caught up, in the same read (one read of the log for all).
                    Feed.Offer(owner.Memory.Span[..length], address, next);
                }
                if (++read % 256 == 0)
                    Signal();
            }
            Signal();
            await iter.WaitAsync(ct).ConfigureAwait(false);
        }
    }

    private void Signal() => Interlocked.Exchange(ref _advanced, NewSignal()).TrySetResult();

    private void Apply(ReadOnlySpan<byte> record, long address)
    {
        if (LogRecordFormat.TypeOf(record) != LogRecordType.Batch)
            return;
        var stored = StoredPayload.Read(record);
        if (stored.OnlyFor != 0 || _tenants.Find(stored.Tenant) is not { } tenant)
            return; // a replayed dead letter was applied when it first came; an unconfigured tenant has no views
        var parsed = WebhookParser.Parse(stored.Body, _events);
        if (!parsed.Success)
        {
            DispatchLog.BatchUnreadable(_logger, tenant.Id, address, parsed.ToString());
            return;
        }
        var outbound = _outbound is not null && _outbound.Sends(tenant) ? _outbound : null;
        for (var t = 0; t < stored.EventCount; t++)
        {
            var index = stored.EventIndexAt(t);
            if (index >= _events.Count)
                continue;
            ref readonly var e = ref _events[index];
            if (e.Kind == WebhookEventKind.Status)
                ApplyStatus(tenant, outbound, stored.Body, in e, stored.ReceivedUnixMs);
            else if (outbound is not null && e.Kind == WebhookEventKind.Message)
                NoteInbound(tenant, outbound, stored.Body, in e, stored.ReceivedUnixMs);
        }
    }

    private void ApplyStatus(Tenant tenant, Outbound.OutboundService? outbound, ReadOnlySpan<byte> body, in WebhookEvent e, long receivedUnixMs)
    {
        Span<byte> wamid = stackalloc byte[256];
        if (!DeliveryState.TryReadStatus(body, in e, wamid, out var length, out var status, out var metaTime))
            return;
        var stale = _states.Apply(tenant.IdUtf8, wamid[..length], status, metaTime, receivedUnixMs);
        // One forward-only rule for both views: a failed that the delivery state found behind it (by Meta's
        // timestamps) does not move the send either, so /v1/outbound and /v1/messages agree. Other statuses go to the
        // book even when stale: there the same order holds (only forward), and a replay after a restart can still
        // put back a step whose record was lost.
        if (outbound is not null && !(stale && status == MessageStatus.Failed))
        {
            var (code, title) = status == MessageStatus.Failed ? FirstError(e.Errors.Raw(body)) : (0, null);
            outbound.OnStatus(tenant, wamid[..length], status, metaTime, code, title);
        }
    }

    /// <summary><c>errors[0].code</c> and its title (and message) of a failed status, or (0, null).</summary>
    private static (int Code, string? Title) FirstError(ReadOnlySpan<byte> errors)
    {
        if (errors.IsEmpty)
            return (0, null);
        try
        {
            var reader = new System.Text.Json.Utf8JsonReader(errors);
            using var doc = System.Text.Json.JsonDocument.ParseValue(ref reader);
            if (doc.RootElement.ValueKind != System.Text.Json.JsonValueKind.Array || doc.RootElement.GetArrayLength() == 0)
                return (0, null);
            var first = doc.RootElement[0];
            var code = first.TryGetProperty("code", out var c) && c.TryGetInt32(out var n) ? n : 0;
            var title = first.TryGetProperty("title", out var t) ? t.GetString() : null;
            if (first.TryGetProperty("message", out var m) && m.GetString() is { } message && message != title)
                title = title is null ? message : $"{title}: {message}";
            return (code, title);
        }
        catch (System.Text.Json.JsonException)
        {
            return (0, null);
        }
    }

    /// <summary>Opens (or extends) the customer's 24-hour window, before any destination sees the message.</summary>
    private static void NoteInbound(Tenant tenant, Outbound.OutboundService outbound, ReadOnlySpan<byte> body, in WebhookEvent e, long receivedUnixMs)
    {
        Span<byte> phone = stackalloc byte[64];
        Span<byte> from = stackalloc byte[64];
        if (!e.PhoneNumberId.TryGetUtf8(body, phone, out var p) || !e.From.TryGetUtf8(body, from, out var f))
            return;
        var sent = DeliveryState.ParseTimestamp(e.Timestamp.RawValue(body));
        outbound.Windows.Seen(tenant.IdUtf8, phone[..p], from[..f], sent > 0 ? sent : receivedUnixMs / 1000);
    }

    /// <summary>Stops the reader; what it has not applied is applied again after the next start.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _running.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        Signal();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _events.Dispose();
        _stop.Dispose();
    }
}
