using System.Buffers;
using System.Text;
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
/// Delivers one tenant's committed events to one of its destinations. A reader follows the event log behind the
/// projections (<see cref="Projections.ProjectionFollower"/>), picks this tenant's batch records, keeps the events the
/// destination's filter takes and has not acked, rebuilds each one's Meta-shaped payload and adds it to a
/// <see cref="KeyOrderedQueue"/>: one line per customer (<see cref="OrderKeys"/>). <c>Forward:Concurrency</c> workers take the head of any free line and make
/// one attempt; a delivered or dead-lettered event is acked in the log, a failed one waits out its backoff on a timer
/// while its line (only its line) waits behind it and the worker moves on. So an event the bot refuses delays only
/// its own customer's later events. A full queue makes this destination's reader wait (backpressure); other
/// destinations, of this tenant or another, have their own reader, queue, workers, breaker and acks and never notice.
/// </summary>
/// <remarks>
/// The reader and the workers are supervised: an unexpected exception is logged, counted
/// (<see cref="WorkerFaults"/>, <c>fastingest_dispatch_worker_faults_total</c>) and shown on <c>/readyz</c> for
/// <see cref="FaultVisibleFor"/>; the event a worker was on is retried after its backoff, and a failed reader or
/// worker loop is started again after <see cref="s_restartDelay"/>. Nothing that delivers dies silently.
/// </remarks>
internal sealed class DestinationDispatcher : IAsyncDisposable
{
    private readonly Tenant _tenant;
    private readonly Destinations.DestinationSpec _destination;
    private readonly Projections.ProjectionFollower _projections;
    private volatile ForwardSigning? _signing;
    private readonly EventLog _log;
    private readonly IForwardTarget _target;
    private readonly DeadLetterQueue _deadLetters;
    private readonly CircuitBreaker _breaker;
    private readonly DeliveryStateStore _states;
    private readonly AckSet _acked;
    private readonly ILogger _logger;
    private readonly ILogger _outcomes;
    private readonly TimeProvider _time;
    private readonly KeyOrderedQueue _queue;
    private readonly Queue<BatchTracker> _outstanding = new();
    private readonly EventBuffer _events = new(64);
    private readonly PooledBufferWriter _writer = new(16 * 1024);
    private readonly ValueLayout _layout = new();
    private readonly List<ForwardItem> _ready = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _abort = new();
    private static readonly TimeSpan s_drainTimeout = TimeSpan.FromSeconds(5);
    private readonly ForwardOptions _options;
    private readonly bool _needsField;
    private readonly uint _tenantHash;
    private readonly DestinationFeed? _feed;
    private int _fed;
    private TaskCompletionSource _unfed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _scannedUntil;
    private long _delivered;
    private long _deadLettered;
    private long _prepared;
    private long _retried;
    private long _staleDropped;
    private readonly Internal.FaultMemory _faults;
    private Task _running = Task.CompletedTask;
    private static readonly TimeSpan s_restartDelay = TimeSpan.FromSeconds(1);

    /// <summary>How long <c>/readyz</c> shows a reader or worker fault after it happened: 5 minutes.</summary>
    public static readonly TimeSpan FaultVisibleFor = Internal.FaultMemory.VisibleFor;

    public DestinationDispatcher(Tenant tenant, Destinations.DestinationSpec destination, EventLog log, Projections.ProjectionFollower projections, IForwardTarget target, CircuitBreaker breaker, DeadLetterQueue deadLetters, DeliveryStateStore states, AckSet acked, long startAddress, TimeProvider time, ILogger logger, ILogger eventsLogger, DestinationFeed? feed = null)
    {
        _feed = feed;
        _destination = destination;
        _projections = projections;
        _signing = ForwardSigning.Of(destination.Policy, destination.Kind is Configuration.DestinationKind.Webhook or Configuration.DestinationKind.Chatwoot);
        _deadLetters = deadLetters;
        _breaker = breaker;
        _states = states;
        _tenant = tenant;
        _log = log;
        _target = target;
        _acked = acked;
        _time = time;
        _faults = new Internal.FaultMemory(time);
        _logger = logger;
        _outcomes = eventsLogger;
        _options = destination.Policy;
        _needsField = destination.NeedsField;
        _tenantHash = AckRecord.TenantHashOf(tenant.IdUtf8);
        _scannedUntil = startAddress;
        _queue = new KeyOrderedQueue((int)Math.Min(int.MaxValue, (long)_options.QueueCapacity * _options.Concurrency), time);
    }

    public Tenant Tenant => _tenant;

    /// <summary>The key this destination signs with now (null when it does not sign).</summary>
    public ForwardSigning? Signing => _signing;

    /// <summary>
    /// Signs from now on with <paramref name="signing"/> (a reload rotated the destination's secret): events prepared
    /// under the old key are signed again before their next attempt.
    /// </summary>
    public void Rotate(ForwardSigning? signing) => _signing = signing;

    /// <summary>The destination this dispatcher delivers to.</summary>
    public Destinations.DestinationSpec Destination => _destination;

    /// <summary>Events delivered since start.</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    /// <summary>Events sent to the dead-letter queue since start.</summary>
    public long DeadLettered => Interlocked.Read(ref _deadLettered);

    /// <summary>Failed delivery attempts that were scheduled for a retry, since start.</summary>
    public long Retried => Interlocked.Read(ref _retried);

    /// <summary>Stale statuses not forwarded (<c>Forward:StaleStatuses=Drop</c>) since start.</summary>
    public long StaleDropped => Interlocked.Read(ref _staleDropped);

    /// <summary>Unexpected exceptions caught in the reader or a worker since start (each one restarted what failed).</summary>
    public long WorkerFaults => _faults.Count;

    /// <summary>
    /// The last reader or worker fault while it is less than <see cref="FaultVisibleFor"/> old: "{n} dispatch faults, last
    /// {s} s ago: {what}"; null otherwise.
    /// </summary>
    public string? RecentFault() => _faults.Recent("dispatch faults");

    private void Fault(string where, Exception ex)
    {
        _faults.Record(where, ex);
        DispatchLog.WorkerFault(_logger, ex, _tenant.Id, where);
    }

    /// <summary>How far the reader has got: every record below has been read.</summary>
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
        return new(_tenant.Id, delivered, Retried, deadLettered, Math.Max(0, Interlocked.Read(ref _prepared) - delivered - deadLettered - StaleDropped), oldestAge, _breaker.State, _breaker.Opened, WorkerFaults, _destination.Name);
    }

    public void Start()
    {
        var workers = new Task[_options.Concurrency + 1];
        workers[0] = Task.Run(() => SuperviseAsync("reader", ReadLoopAsync, _stop.Token));
        for (var i = 0; i < _options.Concurrency; i++)
            workers[i + 1] = Task.Run(() => SuperviseAsync("worker", WorkLoopAsync, _stop.Token));
        _running = Task.WhenAll(workers);
    }

    /// <summary>Runs <paramref name="loop"/> until <paramref name="ct"/> stops it; an unexpected exception is a fault, and the loop starts again.</summary>
    private Task SuperviseAsync(string role, Func<CancellationToken, Task> loop, CancellationToken ct)
        => Internal.Supervised.RunAsync(loop, ex => Fault(role, ex), s_restartDelay, _time, ct);

    /// <summary>
    /// Reads this destination's events while the shared feed (<see cref="DestinationFeed"/>) does not bring them: from
    /// <see cref="ScannedUntil"/> with a scan of its own until it has caught up with the feed, then waits while fed,
    /// and reads on its own again from where the feed left it. Each record's events are added to the queue in the same
    /// synchronous step that advances <see cref="ScannedUntil"/>, so a restarted reader neither skips nor repeats one.
    /// </summary>
    private async Task ReadLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            if (Volatile.Read(ref _fed) == 1)
            {
                await Volatile.Read(ref _unfed).Task.WaitAsync(ct).ConfigureAwait(false);
                continue;
            }
            await ReadOwnAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>Follows the log with a scan of its own; returns once the feed took over.</summary>
    private async Task ReadOwnAsync(CancellationToken ct)
    {
        using var iter = _log.Scan(ScannedUntil);
        while (!ct.IsCancellationRequested)
        {
            // Other tenants' records (and acks) are looked at in the log's memory and stepped over, not copied.
            while (iter.GetNextIf(this, static (d, record) => d.Takes(record), MemoryPool<byte>.Shared, out var owner, out var length, out var address, out var next))
            {
                if (owner is null)
                {
                    Advance(null, next);
                }
                else
                {
                    using (owner)
                    {
                        // Never ahead of the views: a bot answering a message finds its window open, and a status's
                        // stale verdict is the one the delivery state gave it.
                        if (_projections.AppliedUntil <= address)
                            await _projections.WaitBeyondAsync(address, ct).ConfigureAwait(false);
                        Prepare(owner.Memory.Span[..length], address, next);
                    }
                    await _queue.WaitForRoomAsync(ct).ConfigureAwait(false);
                }
                if (CaughtUpWithFeed())
                    return;
            }
            if (CaughtUpWithFeed())
                return;
            await iter.WaitAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Whether the feed took over: tried (under the feed's lock) only once the own scan is at or past the feed's
    /// position, so that a scan far behind does not contend with the feed at every record.
    /// </summary>
    private bool CaughtUpWithFeed() => _feed is not null && ScannedUntil >= _feed.Position && _feed.TryAttach(this);

    /// <summary>Called by the feed, under its lock, when it takes over: the own scan stops.</summary>
    internal void MarkAttached()
    {
        Volatile.Write(ref _unfed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        Volatile.Write(ref _fed, 1);
    }

    /// <summary>Called by the feed, under its lock, when it lets go: the own scan resumes at <see cref="ScannedUntil"/>.</summary>
    internal void MarkDetached()
    {
        Volatile.Write(ref _fed, 0);
        Volatile.Read(ref _unfed).TrySetResult();
    }

    /// <summary>
    /// One record from the feed (already applied to the views), at <paramref name="address"/>: skipped when the own
    /// scan read it already, otherwise taken. False, to be detached, when it is this destination's and the queue is
    /// full (the own scan waits for room, the feed never does), or when building its items failed (counted as a
    /// fault; the own scan tries again from it).
    /// </summary>
    internal bool OnFeed(ReadOnlySpan<byte> record, long address, long next)
    {
        // Below ScannedUntil the own scan read it. At or past it, it is the next record: every record the feed offered
        // since attaching was taken here, and between ScannedUntil and this address lie only FASTER's commit records.
        if (address < ScannedUntil)
            return true;
        if (!Takes(record))
        {
            Advance(null, next);
            return true;
        }
        if (_queue.Count >= _queue.Capacity)
            return false;
        try
        {
            Prepare(record, address, next);
            return true;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Fault("feed", ex);
            return false;
        }
    }

    /// <summary>Whether <paramref name="record"/> is a batch of this tenant that this destination may deliver (not a dead letter replayed for another).</summary>
    private bool Takes(ReadOnlySpan<byte> record)
    {
        if (LogRecordFormat.TypeOf(record) != LogRecordType.Batch)
            return false;
        var stored = StoredPayload.Read(record);
        return stored.Tenant.SequenceEqual(_tenant.IdUtf8) && (stored.OnlyFor == 0 || stored.OnlyFor == _destination.Id);
    }

    /// <summary>
    /// Turns one log record into queued items (synchronous: the record's memory and the parser's spans stay on this
    /// frame). The items are built first and queued together with the advance, so an exception part-way queues none.
    /// </summary>
    private void Prepare(ReadOnlySpan<byte> record, long address, long next)
    {
        foreach (var left in _ready)
            left.ReleasePayload(); // from a Prepare that threw part-way: none of them was queued
        _ready.Clear();
        if (LogRecordFormat.TypeOf(record) != LogRecordType.Batch)
        {
            Advance(null, next);
            return;
        }
        var stored = StoredPayload.Read(record);
        if (!stored.Tenant.SequenceEqual(_tenant.IdUtf8) || (stored.OnlyFor != 0 && stored.OnlyFor != _destination.Id))
        {
            Advance(null, next);
            return;
        }
        var parsed = WebhookParser.Parse(stored.Body, _events);
        _layout.Reset();
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
            if (_acked.Contains(_destination.Id, _destination.IsFirst, address, index) || !_destination.Filter.Matches(stored.Body, in _events[index]))
                continue;
            var stale = _events[index].Kind == WebhookEventKind.Status && WasStale(stored.Body, in _events[index]);
            _writer.Reset();
            ForwardPayloadWriter.Write(stored.Body, _events, index, _writer, _layout);
            var payload = ArrayPool<byte>.Shared.Rent(_writer.WrittenCount);
            _writer.WrittenSpan.CopyTo(payload);
            var idLength = EventIdentity.Write(stored.Body, in _events[index], id);
            var signing = _signing;
            var signature = signing is not null ? WebhookSignature.Sign(signing.Key, _writer.WrittenSpan) : null;
            var item = new ForwardItem(index, Encoding.ASCII.GetString(id[..idLength]), payload, _writer.WrittenCount, signature, OrderKeys.Of(stored.Body, in _events[index]), stored.ReceivedUnixMs)
            {
                Signing = signing,
                Stale = stale,
                Class = Destinations.EventFilter.ClassOf(stored.Body, in _events[index]),
                Field = _needsField ? _events[index].Field.GetString(stored.Body) ?? "" : "",
            };
            _ready.Add(item);
            count++;
        }
        BatchTracker? tracker = null;
        if (count > 0)
        {
            tracker = new BatchTracker(address, count, stored.ReceivedUnixMs);
            Interlocked.Add(ref _prepared, count);
            foreach (var item in _ready)
            {
                item.Batch = tracker;
                _queue.Add(item);
            }
            _ready.Clear();
        }
        Advance(tracker, next);
    }

    /// <summary>The stale verdict the projections gave this status (see <see cref="DeliveryStateStore.WasStale"/>).</summary>
    private bool WasStale(ReadOnlySpan<byte> body, in WebhookEvent e)
    {
        Span<byte> wamid = stackalloc byte[256];
        return DeliveryState.TryReadStatus(body, in e, wamid, out var length, out var status, out var metaTime)
            && _states.WasStale(_tenant.IdUtf8, wamid[..length], status, metaTime);
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

    /// <summary>
    /// Takes the head of a free line, makes one attempt and hands the line back: done (delivered, dead-lettered or
    /// dropped as stale, and acked) or to retry after a delay. An unexpected exception during the attempt is a fault;
    /// the event is retried after its backoff like a failed delivery.
    /// </summary>
    private async Task WorkLoopAsync(CancellationToken ct)
    {
        while (true)
        {
            var line = await _queue.TakeAsync(ct).ConfigureAwait(false);
            var item = line.Head;
            TimeSpan? retry;
            try
            {
                retry = await AttemptAsync(item, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw; // stopping: the event stays unacked in the log and goes out after the next start
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                Fault("worker", ex);
                retry = Backoff.Delay(Math.Max(1, item.Attempts), _options.InitialBackoff, _options.MaxBackoff);
            }
            if (retry is { } delay)
            {
                _queue.RetryAfter(line, delay);
                Interlocked.Increment(ref _retried); // counted once the retry is on the clock
                continue;
            }
            item.ReleasePayload();
            _queue.Done(line);
        }
    }

    /// <summary>
    /// One delivery attempt of <paramref name="item"/>. Returns null when the event is finished (delivered,
    /// dead-lettered or dropped as stale; its ack is appended), or the delay before the next attempt.
    /// </summary>
    private async Task<TimeSpan?> AttemptAsync(ForwardItem item, CancellationToken ct)
    {
        var deadLettered = false;
        var dropped = item.Stale && _options.StaleStatusHandling == StaleStatusHandling.Drop;
        if (!dropped)
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
                if (_signing is { } signing && !ReferenceEquals(signing, item.Signing))
                {
                    // The key was rotated (a reload) since this event was prepared: it goes out under the new one.
                    item.Signature = WebhookSignature.Sign(signing.Key, item.Payload.Span);
                    item.Signing = signing;
                }
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
            else if (_breaker.OnFailure(probe, result.Throttled ? result.RetryAfter : null, item.FailureKey, result.ConnectionFailed) is { } pause)
            {
                DispatchLog.CircuitOpened(_logger, _breaker.Destination, _tenant.Id, (long)pause.TotalMilliseconds, result.Detail, probe);
            }
            if (!result.Delivered)
            {
                if (GiveUpReason(item, result) is not { } reason)
                    return RetryDelay(item, result);
                try
                {
                    var entry = await _deadLetters.AddAsync(_tenant.Id, _destination.Name, item.EventId, item.ReceivedUnixMs, item.Attempts, reason, item.Payload, ct).ConfigureAwait(false);
                    DispatchLog.DeadLettered(_logger, _tenant.Id, _destination.Name, item.EventId, item.Attempts, reason, entry.Id);
                    deadLettered = true;
                }
                catch (IOException ex)
                {
                    // Nothing is dropped: without a durable dead letter the event keeps being retried.
                    DispatchLog.DeadLetterFailed(_logger, ex, _tenant.Id, item.EventId);
                    return RetryDelay(item, result);
                }
            }
        }

        while (!_log.TryAppend(new AckRecord(item.Batch.Address, item.EventIndex, _destination.Id, _tenantHash), out _))
            await Task.Delay(1, _abort.Token).ConfigureAwait(false);
        item.Batch.CompleteOne();
        var outcome = deadLettered ? "dead_lettered" : dropped ? "stale_dropped" : "delivered";
        Interlocked.Increment(ref deadLettered ? ref _deadLettered : ref dropped ? ref _staleDropped : ref _delivered);
        if (_outcomes.IsEnabled(LogLevel.Information))
            DispatchLog.Outcome(_outcomes, item.EventId, _tenant.Id, _destination.Name, outcome, item.Attempts, _time.GetUtcNow().ToUnixTimeMilliseconds() - item.ReceivedUnixMs);
        return null;
    }

    /// <summary>The bot's Retry-After (already capped at an hour) wins over the backoff, MaxBackoff included: it is what the bot asked for.</summary>
    private TimeSpan RetryDelay(ForwardItem item, ForwardResult result)
    {
        var delay = result.RetryAfter is { } ra && ra > TimeSpan.Zero
            ? TimeSpan.FromTicks(Math.Min(ra.Ticks, CircuitBreaker.MaxRetryAfter.Ticks))
            : Backoff.Delay(item.Attempts, _options.InitialBackoff, _options.MaxBackoff);
        DispatchLog.DeliveryFailed(_logger, _tenant.Id, _destination.Name, item.EventId, item.Attempts, result.Detail, (long)delay.TotalMilliseconds);
        return delay;
    }

    /// <summary>Why to stop retrying: a permanent refusal, or past <c>MaxAttempts</c> or <c>MaxAge</c>; null to retry.</summary>
    private string? GiveUpReason(ForwardItem item, ForwardResult result)
    {
        if (result.Permanent)
            return $"refused by {_destination.Name}: {result.Detail}";
        if (_options.MaxAttempts > 0 && item.Attempts >= _options.MaxAttempts)
            return $"{item.Attempts} attempts (MaxAttempts); last: {result.Detail}";
        var age = _time.GetUtcNow().ToUnixTimeMilliseconds() - item.ReceivedUnixMs;
        if (age > (long)_options.MaxAge.TotalMilliseconds)
            return $"older than MaxAge ({age / 1000} s) after {item.Attempts} attempts; last: {result.Detail}";
        return null;
    }

    /// <summary>
    /// Stops reading and retrying, lets sends in progress finish and record their acks until
    /// <paramref name="drainDeadline"/> fires, then cuts whatever is still running. Undelivered events stay in the log
    /// for the next start.
    /// </summary>
    public async Task StopAsync(CancellationToken drainDeadline)
    {
        _feed?.Remove(this); // from here on the feed offers nothing: the queue is drained at dispose
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
        foreach (var item in _queue.Drain())
            item.ReleasePayload();
        _queue.Dispose();
        _target.Dispose();
        _events.Dispose();
        _writer.Dispose();
        _stop.Dispose();
        _abort.Dispose();
    }
}
