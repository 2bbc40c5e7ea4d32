using System.Buffers;
using System.Text;
using System.Threading.Channels;
using FastIngest.Configuration;
using FastIngest.Delivery;
using FastIngest.Ingest;
using FastIngest.Internal;
using FastIngest.Parsing;
using FastIngest.Storage;
using FastIngest.Tenancy;
using Microsoft.Extensions.Logging;

namespace FastIngest.Dispatch;

/// <summary>
/// Delivers one tenant's committed events to its bot. A reader follows the event log, picks this tenant's batch
/// records, rebuilds each new event's Meta-shaped payload and queues it on one of <c>Forward:Concurrency</c> lanes,
/// chosen by the customer's wa_id so one customer's events stay in order. Each lane is a bounded channel drained by
/// one worker that retries until the bot takes the event, then appends an ack record. A full lane makes this
/// tenant's reader wait (backpressure); other tenants have their own reader and lanes and never notice.
/// </summary>
internal sealed class TenantDispatcher : IAsyncDisposable
{
    private readonly Tenant _tenant;
    private readonly EventLog _log;
    private readonly IForwardTarget _target;
    private readonly DeadLetterQueue _deadLetters;
    private readonly CircuitBreaker _breaker;
    private readonly DeliveryStateStore _states;
    private readonly Outbound.OutboundService? _outbound;
    private static readonly TimeSpan s_maxRetryAfter = TimeSpan.FromHours(1);
    private readonly AckSet _acked;
    private readonly ILogger _logger;
    private readonly ILogger _outcomes;
    private readonly TimeProvider _time;
    private readonly Channel<ForwardItem>[] _lanes;
    private readonly Queue<BatchTracker> _outstanding = new();
    private readonly EventBuffer _events = new(64);
    private readonly PooledBufferWriter _writer = new(16 * 1024);
    private readonly List<ForwardItem> _ready = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _abort = new();
    private static readonly TimeSpan s_drainTimeout = TimeSpan.FromSeconds(5);
    private readonly ForwardOptions _options;
    private long _scannedUntil;
    private long _delivered;
    private long _deadLettered;
    private long _prepared;
    private long _retried;
    private long _staleDropped;
    private Task _running = Task.CompletedTask;

    public TenantDispatcher(Tenant tenant, EventLog log, IForwardTarget target, CircuitBreaker breaker, DeadLetterQueue deadLetters, DeliveryStateStore states, AckSet acked, long startAddress, TimeProvider time, ILogger logger, ILogger eventsLogger, Outbound.OutboundService? outbound = null)
    {
        _outbound = outbound is not null && outbound.Sends(tenant) ? outbound : null;
        _deadLetters = deadLetters;
        _breaker = breaker;
        _states = states;
        _tenant = tenant;
        _log = log;
        _target = target;
        _acked = acked;
        _time = time;
        _logger = logger;
        _outcomes = eventsLogger;
        _options = tenant.Options.Forward;
        _scannedUntil = startAddress;
        _lanes = new Channel<ForwardItem>[_options.Concurrency];
        for (var i = 0; i < _lanes.Length; i++)
        {
            _lanes[i] = Channel.CreateBounded<ForwardItem>(new BoundedChannelOptions(_options.QueueCapacity)
            {
                SingleReader = true,
                SingleWriter = true,
                FullMode = BoundedChannelFullMode.Wait,
            });
        }
    }

    public Tenant Tenant => _tenant;

    /// <summary>Events delivered since start.</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    /// <summary>Events sent to the dead-letter queue since start.</summary>
    public long DeadLettered => Interlocked.Read(ref _deadLettered);

    /// <summary>Failed delivery attempts that were scheduled for a retry, since start.</summary>
    public long Retried => Interlocked.Read(ref _retried);

    /// <summary>Stale statuses not forwarded (<c>Forward:StaleStatuses=Drop</c>) since start.</summary>
    public long StaleDropped => Interlocked.Read(ref _staleDropped);

    /// <summary>How far the reader has got: every record below has been read (and its statuses applied to the delivery-state store).</summary>
    public long ScannedUntil
    {
        get
        {
            lock (_outstanding)
                return _scannedUntil;
        }
    }

    /// <summary>
    /// The log address below which this tenant needs nothing: the oldest batch with an event not yet delivered,
    /// or how far the reader has got when everything read is delivered.
    /// </summary>
    public long LowWater
    {
        get
        {
            lock (_outstanding)
            {
                while (_outstanding.TryPeek(out var oldest) && oldest.IsComplete)
                    _outstanding.Dequeue();
                return _outstanding.TryPeek(out var head) ? head.Address : _scannedUntil;
            }
        }
    }

    /// <summary>This tenant's dispatch figures now (for metrics and readiness).</summary>
    public Telemetry.DispatchStats Stats()
    {
        double oldestAge = 0;
        lock (_outstanding)
        {
            while (_outstanding.TryPeek(out var head) && head.IsComplete)
                _outstanding.Dequeue();
            if (_outstanding.TryPeek(out var oldest))
                oldestAge = Math.Max(0, _time.GetUtcNow().ToUnixTimeMilliseconds() - oldest.ReceivedUnixMs) / 1000.0;
        }
        var delivered = Delivered;
        var deadLettered = DeadLettered;
        return new(_tenant.Id, delivered, Retried, deadLettered, Math.Max(0, Interlocked.Read(ref _prepared) - delivered - deadLettered - StaleDropped), oldestAge, _breaker.State, _breaker.Opened);
    }

    public void Start()
    {
        var workers = new Task[_lanes.Length + 1];
        workers[0] = Task.Run(() => ReadLoopAsync(_stop.Token));
        for (var i = 0; i < _lanes.Length; i++)
        {
            var lane = _lanes[i];
            workers[i + 1] = Task.Run(() => WorkLoopAsync(lane.Reader, _stop.Token));
        }
        _running = Task.WhenAll(workers);
    }

    private async Task ReadLoopAsync(CancellationToken ct)
    {
        try
        {
            using var iter = _log.Scan(Interlocked.Read(ref _scannedUntil));
            while (!ct.IsCancellationRequested)
            {
                while (iter.GetNext(MemoryPool<byte>.Shared, out var owner, out var length, out var address, out var next))
                {
                    using (owner)
                        Prepare(owner.Memory.Span[..length], address, next);
                    foreach (var item in _ready)
                        await _lanes[LaneOf(item)].Writer.WriteAsync(item, ct).ConfigureAwait(false);
                    _ready.Clear();
                    ct.ThrowIfCancellationRequested();
                }
                await iter.WaitAsync(ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            DispatchLog.ReaderFailed(_logger, ex, _tenant.Id);
            throw;
        }
        finally
        {
            foreach (var item in _ready)
                item.ReleasePayload();
            _ready.Clear();
            foreach (var lane in _lanes)
                lane.Writer.TryComplete();
        }
    }

    /// <summary>Turns one log record into ready items (synchronous: the record's memory and the parser's spans stay on this frame).</summary>
    private void Prepare(ReadOnlySpan<byte> record, long address, long next)
    {
        if (LogRecordFormat.TypeOf(record) != LogRecordType.Batch)
        {
            Advance(null, next);
            return;
        }
        var stored = StoredPayload.Read(record);
        if (!stored.Tenant.SequenceEqual(_tenant.IdUtf8))
        {
            Advance(null, next);
            return;
        }
        var parsed = WebhookParser.Parse(stored.Body, _events);
        if (!parsed.Success)
        {
            // Cannot happen for a record the same parser accepted; kept loud rather than silent.
            DispatchLog.BatchUnreadable(_logger, _tenant.Id, address, parsed.ToString());
            Advance(null, next);
            return;
        }

        var count = 0;
        Span<byte> id = stackalloc byte[EventIdentity.MaxLength];
        for (var t = 0; t < stored.EventCount; t++)
        {
            var index = stored.EventIndexAt(t);
            if (index >= _events.Count)
                continue;
            // Every status goes into the delivery state, delivered or not: after a restart the log is read again
            // from its begin and Apply is idempotent, which rebuilds what the last checkpoint missed.
            var stale = _events[index].Kind == WebhookEventKind.Status && ApplyStatus(stored.Body, in _events[index], stored.ReceivedUnixMs);
            if (_outbound is not null && _events[index].Kind == WebhookEventKind.Message)
                NoteInbound(stored.Body, in _events[index], stored.ReceivedUnixMs);
            if (_acked.Contains(address, index))
                continue;
            _writer.Reset();
            ForwardPayloadWriter.Write(stored.Body, _events, index, _writer);
            var payload = ArrayPool<byte>.Shared.Rent(_writer.WrittenCount);
            _writer.WrittenSpan.CopyTo(payload);
            var idLength = EventIdentity.Write(stored.Body, in _events[index], id);
            var signature = _tenant.ForwardSecret.Length > 0 ? WebhookSignature.Sign(_tenant.ForwardSecret, _writer.WrittenSpan) : null;
            var item = new ForwardItem(index, Encoding.ASCII.GetString(id[..idLength]), payload, _writer.WrittenCount, signature, Lane(stored.Body, in _events[index]), stored.ReceivedUnixMs) { Stale = stale };
            _ready.Add(item);
            count++;
        }
        BatchTracker? tracker = null;
        if (count > 0)
        {
            tracker = new BatchTracker(address, count, stored.ReceivedUnixMs);
            Interlocked.Add(ref _prepared, count);
            foreach (var item in _ready)
                item.Batch = tracker;
        }
        Advance(tracker, next);
    }

    private bool ApplyStatus(ReadOnlySpan<byte> body, in WebhookEvent e, long receivedUnixMs)
    {
        var status = DeliveryState.ParseStatus(e.Status.RawValue(body));
        if (status == MessageStatus.None)
            return false;
        Span<byte> wamid = stackalloc byte[256];
        if (!e.Id.TryGetUtf8(body, wamid, out var length) || length == 0)
            return false;
        var metaTime = DeliveryState.ParseTimestamp(e.Timestamp.RawValue(body));
        var stale = _states.Apply(_tenant.IdUtf8, wamid[..length], status, metaTime, receivedUnixMs);
        if (_outbound is not null)
        {
            var (code, title) = status == MessageStatus.Failed ? FirstError(e.Errors.Raw(body)) : (0, null);
            _outbound.OnStatus(_tenant, wamid[..length], status, metaTime, code, title);
        }
        return stale;
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

    /// <summary>Opens (or extends) the customer's 24-hour window, before the message is forwarded to the bot that will answer it.</summary>
    private void NoteInbound(ReadOnlySpan<byte> body, in WebhookEvent e, long receivedUnixMs)
    {
        Span<byte> phone = stackalloc byte[64];
        Span<byte> from = stackalloc byte[64];
        if (!e.PhoneNumberId.TryGetUtf8(body, phone, out var p) || !e.From.TryGetUtf8(body, from, out var f))
            return;
        var sent = DeliveryState.ParseTimestamp(e.Timestamp.RawValue(body));
        _outbound!.Windows.Seen(_tenant.IdUtf8, phone[..p], from[..f], sent > 0 ? sent : receivedUnixMs / 1000);
    }

    private void Advance(BatchTracker? tracker, long next)
    {
        lock (_outstanding)
        {
            if (tracker is not null)
                _outstanding.Enqueue(tracker);
            _scannedUntil = next;
        }
    }

    private int LaneOf(ForwardItem item) => item.Lane % _lanes.Length;

    /// <summary>Lane by the customer: <c>from</c> of a message, <c>recipient_id</c> of a status, else the phone number id.</summary>
    private static int Lane(ReadOnlySpan<byte> body, in WebhookEvent e)
    {
        var key = e.Kind switch
        {
            WebhookEventKind.Message => e.From.Raw(body),
            WebhookEventKind.Status => e.RecipientId.Raw(body),
            _ => e.PhoneNumberId.Raw(body),
        };
        var hash = 2166136261u;
        foreach (var b in key)
            hash = (hash ^ b) * 16777619u;
        return (int)(hash & 0x7FFFFFFF);
    }

    private async Task WorkLoopAsync(ChannelReader<ForwardItem> lane, CancellationToken ct)
    {
        try
        {
            await foreach (var item in lane.ReadAllAsync(ct).ConfigureAwait(false))
            {
                try
                {
                    await DeliverAsync(item, ct).ConfigureAwait(false);
                }
                finally
                {
                    item.ReleasePayload();
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        finally
        {
            // Undelivered items stay unacked in the log and go out again after the next start.
            while (lane.TryRead(out var left))
                left.ReleasePayload();
        }
    }

    private async Task DeliverAsync(ForwardItem item, CancellationToken ct)
    {
        var deadLettered = false;
        var dropped = item.Stale && _options.StaleStatusHandling == StaleStatusHandling.Drop;
        while (!dropped)
        {
            // Waiting out an open breaker is not an attempt: it spends neither MaxAttempts nor backoff.
            var probe = await _breaker.WaitToSendAsync(ct).ConfigureAwait(false);
            item.Attempts++;
            ForwardResult result;
            try
            {
                // A send in progress is not cut by a stop (the bot may already have the event: cutting it would only
                // cause a redelivery after the restart); only _abort, after the drain timeout, cuts it.
                ct.ThrowIfCancellationRequested();
                result = await _target.SendAsync(item, _abort.Token).ConfigureAwait(false);
            }
            catch when (probe)
            {
                _breaker.OnAbandoned();
                throw;
            }
            if (result.Delivered)
                _tenant.Outage.DeliveryWorked();
            else if (!result.Permanent)
                _tenant.Outage.DeliveryFailed(_time.GetUtcNow().ToUnixTimeMilliseconds());
            if (result.Delivered || result.Permanent)
            {
                if (_breaker.OnSuccess())
                    DispatchLog.CircuitClosed(_logger, _breaker.Destination, _tenant.Id);
            }
            else if (_breaker.OnFailure(probe, result.RetryAfter) is { } pause)
            {
                DispatchLog.CircuitOpened(_logger, _breaker.Destination, _tenant.Id, (long)pause.TotalMilliseconds, result.Detail, probe);
            }
            if (result.Delivered)
                break;
            if (GiveUpReason(item, result) is { } reason)
            {
                try
                {
                    var entry = await _deadLetters.AddAsync(_tenant.Id, item.EventId, item.ReceivedUnixMs, item.Attempts, reason, item.Payload, ct).ConfigureAwait(false);
                    DispatchLog.DeadLettered(_logger, _tenant.Id, item.EventId, item.Attempts, reason, entry.Id);
                    deadLettered = true;
                    break;
                }
                catch (IOException ex)
                {
                    // Nothing is dropped: without a durable dead letter the event keeps being retried.
                    DispatchLog.DeadLetterFailed(_logger, ex, _tenant.Id, item.EventId);
                }
            }
            // The bot's Retry-After is what it asked for, so it wins over the backoff (MaxBackoff included), up to an hour.
            var delay = result.RetryAfter is { } ra && ra > TimeSpan.Zero
                ? TimeSpan.FromTicks(Math.Min(ra.Ticks, s_maxRetryAfter.Ticks))
                : Backoff.Delay(item.Attempts, _options.InitialBackoff, _options.MaxBackoff);
            Interlocked.Increment(ref _retried);
            DispatchLog.DeliveryFailed(_logger, _tenant.Id, item.EventId, item.Attempts, result.Detail, (long)delay.TotalMilliseconds);
            await Task.Delay(delay, _time, ct).ConfigureAwait(false);
        }

        while (!_log.TryAppend(new AckRecord(item.Batch.Address, item.EventIndex), out _))
            await Task.Delay(1, _abort.Token).ConfigureAwait(false);
        item.Batch.CompleteOne();
        var outcome = deadLettered ? "dead_lettered" : dropped ? "stale_dropped" : "delivered";
        Interlocked.Increment(ref deadLettered ? ref _deadLettered : ref dropped ? ref _staleDropped : ref _delivered);
        if (_outcomes.IsEnabled(LogLevel.Information))
            DispatchLog.Outcome(_outcomes, item.EventId, _tenant.Id, outcome, item.Attempts, _time.GetUtcNow().ToUnixTimeMilliseconds() - item.ReceivedUnixMs);
    }

    /// <summary>Why to stop retrying: a permanent refusal, or past <c>MaxAttempts</c> or <c>MaxAge</c>; null to retry.</summary>
    private string? GiveUpReason(ForwardItem item, ForwardResult result)
    {
        if (result.Permanent)
            return $"refused by the bot: {result.Detail}";
        if (_options.MaxAttempts > 0 && item.Attempts >= _options.MaxAttempts)
            return $"{item.Attempts} attempts (Forward:MaxAttempts); last: {result.Detail}";
        var age = _time.GetUtcNow().ToUnixTimeMilliseconds() - item.ReceivedUnixMs;
        if (age > (long)_options.MaxAge.TotalMilliseconds)
            return $"older than Forward:MaxAge ({age / 1000} s) after {item.Attempts} attempts; last: {result.Detail}";
        return null;
    }

    /// <summary>
    /// Stops reading and retrying, lets sends in progress finish and record their acks until
    /// <paramref name="drainDeadline"/> fires, then cuts whatever is still running. Undelivered events stay in the log
    /// for the next start.
    /// </summary>
    public async Task StopAsync(CancellationToken drainDeadline)
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _running.WaitAsync(drainDeadline).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (drainDeadline.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            DispatchLog.ReaderFailed(_logger, ex, _tenant.Id);
        }
        await _abort.CancelAsync().ConfigureAwait(false);
        try
        {
            await _running.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException and not OperationCanceledException)
        {
            DispatchLog.ReaderFailed(_logger, ex, _tenant.Id);
        }
    }

    /// <summary>Stops (with a 5 s drain, if <see cref="StopAsync"/> was not called) and releases the buffers.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_abort.IsCancellationRequested)
        {
            using var drain = new CancellationTokenSource(s_drainTimeout, _time);
            await StopAsync(drain.Token).ConfigureAwait(false);
        }
        _target.Dispose();
        _events.Dispose();
        _writer.Dispose();
        _stop.Dispose();
        _abort.Dispose();
    }
}
