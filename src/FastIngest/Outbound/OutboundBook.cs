using System.Buffers;
using Stopwatch = System.Diagnostics.Stopwatch;
using System.Threading.Channels;
using FastIngest.Storage;
using Microsoft.Extensions.Logging;

namespace FastIngest.Outbound;

/// <summary>A committed lifecycle step's event for the tenant's bot: the tenant, the step record's address, the event's body (<see cref="LifecycleEvent"/>).</summary>
internal readonly record struct LifecycleItem(string Tenant, long StepAddress, byte[] Body);

/// <summary>
/// Every send FastIngest remembers: a FasterLog of its own under <c>DataDir/outbound/</c> (a send record when it is
/// queued, a step record for each change of status, an emitted mark now and then) and, rebuilt from it at start, an
/// index in memory by id, by idempotency key and by wamid. A send is durable before it is answered 202; its steps are
/// group-committed behind it, and a step changes what the book shows (status, history, wamid index, a
/// <c>Prefer: wait</c> answer) only once its record is committed, when its lifecycle event is handed on
/// (<see cref="Lifecycle"/>): a crash can lose a step only together with everything it caused. Sends older than
/// <c>Outbound:Retention</c> are forgotten at checkpoints and the log's head is cut below the oldest one still
/// remembered.
/// </summary>
/// <remarks>
/// Appends happen under one lock, in the order the changes were decided, and never wait there: an append that meets a
/// full log (backpressure) is queued behind the lock and retried from there, every later append behind it, so the log
/// holds the steps of a send in the order they were made and a lookup never waits for the disk.
/// </remarks>
public sealed class OutboundBook : IDisposable
{
    /// <summary>How long a new send waits out a full log before it is refused (the bot gets 503 and retries).</summary>
    private static readonly TimeSpan s_sendWaitLimit = TimeSpan.FromSeconds(5);
    private static readonly Task<bool> s_false = Task.FromResult(false);

    private readonly EventLog _log;
    private readonly SendIndex _index;
    private readonly LogAgeMap _ageMap;
    private readonly object _gate = new();
    private readonly SortedDictionary<long, OutboundMessage> _byAddress = [];
    private readonly Dictionary<(string Tenant, string Key), OutboundMessage> _byKey = [];
    private readonly Dictionary<(string Tenant, string Wamid), OutboundMessage> _byWamid = [];
    private readonly Queue<PendingAppend> _backlog = new();
    private readonly Queue<Unapplied> _unapplied = new();
    private readonly Channel<LifecycleItem> _lifecycle = Channel.CreateUnbounded<LifecycleItem>(new UnboundedChannelOptions { SingleReader = true });
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Task, byte> _recording = new();
    private bool _draining;
    private long _backpressured;
    private long _emittedThrough;
    private long _emittedWritten;
    private long _lifecyclePending;

    /// <summary>How long an answered send stays in memory after its last change (later lookups read it back from the log).</summary>
    internal static readonly TimeSpan HotFor = TimeSpan.FromMinutes(10);

    /// <summary>The log the sends live in (<c>DataDir/outbound/</c>).</summary>
    internal EventLog Log => _log;

    /// <summary>
    /// Opens the book in <paramref name="directory"/> with its <paramref name="index"/>, and reads back the part of the
    /// log the index's last checkpoint did not cover (all of it when the index has no checkpoint yet): from the
    /// lowest of what the index covered, the first send then unanswered and the first step whose lifecycle event was
    /// not yet emitted. Sends found there are held in memory (every unanswered one is among them); older ones are
    /// found through the index. The lifecycle events of steps after the last emitted mark are put on
    /// <see cref="Lifecycle"/> again, in log order. Sends queued before <paramref name="forgetBeforeUnixMs"/> are not
    /// held.
    /// </summary>
    /// <exception cref="IOException">The directory cannot be used.</exception>
    internal OutboundBook(string directory, SendIndex index, int maxRecordBytes, long memoryBytes, long forgetBeforeUnixMs, TimeSpan retention, ILogger logger)
    {
        _index = index;
        _log = new EventLog(directory, "outbound", maxRecordBytes, memoryBytes, logger);
        _ageMap = new LogAgeMap(Path.Combine(directory, "age-map"), retention);
        var covered = index.ReadCovered();
        var emitted = covered?.Emitted ?? -1L;
        ScanFrom = covered is var (c, u, m) ? Math.Max(_log.BeginAddress, Math.Min(Math.Min(c, u), m + 1)) : _log.BeginAddress;
        // Steps whose lifecycle event is not yet marked emitted: addresses only (a long read may pass millions before
        // the next mark), their events are built once the read is done.
        var again = new Queue<(long SendAddress, long Address)>();
        var nowUnixMs = forgetBeforeUnixMs + (long)retention.TotalMilliseconds;
        var read = 0L;
        using (var iter = _log.Scan(ScanFrom, _log.CommittedUntilAddress))
        {
            while (iter.GetNext(MemoryPool<byte>.Shared, out var owner, out var length, out var address, out _))
            {
                // A long read (the whole log, when the index was rebuilt) must not hold every send it passes: quiet
                // answered ones go to the index as it goes.
                if (++read % 65_536 == 0)
                    LetQuietSendsGo(nowUnixMs);
                using (owner)
                {
                    var record = owner.Memory.Span[..length];
                    switch (LogRecordFormat.TypeOf(record))
                    {
                        case OutboundRecords.Send:
                            var message = OutboundRecords.ReadSend(record, address);
                            if (message.CreatedUnixMs >= forgetBeforeUnixMs)
                            {
                                message.History.Add(new OutboundStep(OutboundStatus.Queued, message.CreatedUnixMs, 0, 0, null));
                                message.LastChangeUnixMs = message.CreatedUnixMs;
                                Index(message);
                            }
                            break;
                        case OutboundRecords.Step or OutboundRecords.LinkedStep:
                            var (sendAddress, step, wamid, _) = OutboundRecords.ReadStep(record);
                            if (_byAddress.TryGetValue(sendAddress, out var hot))
                            {
                                hot.LastStepAddress = address;
                                if (Apply(hot, step, wamid))
                                {
                                    hot.Decided = hot.Status;
                                    hot.LastChangeUnixMs = step.AtUnixMs;
                                    // The wamid comes with the "accepted" step, after the send was indexed.
                                    if (wamid is not null)
                                        _byWamid[(hot.Tenant, wamid)] = hot;
                                    if (Emits(step.Status) && address > emitted)
                                        again.Enqueue((sendAddress, address));
                                }
                            }
                            else if (index.TryGet(sendAddress, out var entry))
                            {
                                // A send answered before the index's checkpoint: bring its entry up to date.
                                if (address > entry.LastStepAddress)
                                    entry.LastStepAddress = address;
                                if (CanMove((OutboundStatus)entry.Status, step.Status))
                                {
                                    entry.Status = (byte)step.Status;
                                    if (Emits(step.Status) && address > emitted)
                                        again.Enqueue((sendAddress, address));
                                }
                                index.Put(entry);
                            }
                            break;
                        case OutboundRecords.Emitted:
                            emitted = Math.Max(emitted, OutboundRecords.ReadEmitted(record));
                            while (again.TryPeek(out var first) && first.Address <= emitted)
                                again.Dequeue(); // emitted before the stop: not again
                            break;
                    }
                }
            }
        }
        foreach (var m2 in _byAddress.Values)
            index.Put(m2, m2.LastStepAddress, withKey: true, withWamid: true);
        _emittedThrough = _emittedWritten = emitted;
        // Lifecycle events of steps not yet marked emitted. Every emitting step comes with or after Meta's answer, when
        // the send's wamid and attempts no longer change: the send as it is now is the send as it was right after the
        // step, so the event is the same bytes (and event id) as the first time.
        var readBack = new Dictionary<long, OutboundMessage?>();
        foreach (var (sendAddress, address) in again)
        {
            if (address <= emitted)
                continue;
            if (!_byAddress.TryGetValue(sendAddress, out var asThen) && !readBack.TryGetValue(sendAddress, out asThen))
                readBack[sendAddress] = asThen = LoadSync(sendAddress);
            if (asThen is null || _log.ReadAsync(address).AsTask().GetAwaiter().GetResult() is not { } stepRecord)
                continue;
            var step = OutboundRecords.ReadStep(stepRecord).Step;
            Interlocked.Increment(ref _lifecyclePending);
            _lifecycle.Writer.TryWrite(new LifecycleItem(asThen.Tenant, address, LifecycleEvent.Body(asThen, step)));
        }
    }

    /// <summary>While reading the log at open: answered sends quiet for <see cref="HotFor"/> at <paramref name="nowUnixMs"/> are written to the index and no longer held.</summary>
    private void LetQuietSendsGo(long nowUnixMs)
    {
        foreach (var m in _byAddress.Values.Where(m => IsQuiet(m, nowUnixMs)).ToList())
        {
            _index.Put(m, m.LastStepAddress, withKey: true, withWamid: true);
            Unhold(m);
        }
    }

    /// <summary>An answered send with no step on its way and none for <see cref="HotFor"/> at <paramref name="nowUnixMs"/>: it may leave memory.</summary>
    private static bool IsQuiet(OutboundMessage m, long nowUnixMs)
        => m.HasAnswer && m.Decided == m.Status && m.LastChangeUnixMs <= nowUnixMs - (long)HotFor.TotalMilliseconds;

    /// <summary>Drops <paramref name="m"/> from the in-memory indexes (the send index keeps it). Under the lock, or at open.</summary>
    private void Unhold(OutboundMessage m)
    {
        _byAddress.Remove(m.Address);
        if (_byKey.TryGetValue((m.Tenant, m.IdempotencyKey), out var k) && ReferenceEquals(k, m))
            _byKey.Remove((m.Tenant, m.IdempotencyKey));
        if (m.Wamid is not null && _byWamid.TryGetValue((m.Tenant, m.Wamid), out var w) && ReferenceEquals(w, m))
            _byWamid.Remove((m.Tenant, m.Wamid));
    }

    /// <summary>Where this open began reading the log (see the constructor).</summary>
    internal long ScanFrom { get; }

    /// <summary>The send at <paramref name="sendAddress"/> read back from the log (start-up only: it blocks).</summary>
    private OutboundMessage? LoadSync(long sendAddress)
        => LoadAsync(sendAddress).AsTask().GetAwaiter().GetResult();

    /// <summary>Sends remembered.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
                return _byAddress.Count;
        }
    }

    /// <summary>Appends that met a full log (backpressure) since start.</summary>
    public long Backpressured => Interlocked.Read(ref _backpressured);

    /// <summary>
    /// The events of committed lifecycle steps, in log order (after a start, first those not yet marked emitted).
    /// The reader writes each to the event log and, once committed there, calls <see cref="MarkEmitted"/>.
    /// </summary>
    internal ChannelReader<LifecycleItem> Lifecycle => _lifecycle.Reader;

    private void Index(OutboundMessage message)
    {
        _byAddress[message.Address] = message;
        _byKey[(message.Tenant, message.IdempotencyKey)] = message;
        if (message.Wamid is not null)
            _byWamid[(message.Tenant, message.Wamid)] = message;
    }

    /// <summary>Sends not yet answered for good (queued or submitted), oldest first: what the scheduler must (re)send after a start.</summary>
    public IReadOnlyList<OutboundMessage> Unanswered()
    {
        lock (_gate)
            return [.. _byAddress.Values.Where(m => !m.HasAnswer)];
    }

    /// <summary>The send with id <paramref name="id"/> (see <see cref="OutboundMessage.FormatId"/>), or null.</summary>
    public OutboundMessage? Find(string id)
    {
        var address = OutboundMessage.ParseId(id);
        lock (_gate)
            return address >= 0 ? _byAddress.GetValueOrDefault(address) : null;
    }

    /// <summary>The send of <paramref name="tenant"/> queued under idempotency key <paramref name="key"/>, or null.</summary>
    public OutboundMessage? FindKey(string tenant, string key)
    {
        lock (_gate)
            return _byKey.GetValueOrDefault((tenant, key));
    }

    /// <summary>The send of <paramref name="tenant"/> that Meta accepted as <paramref name="wamid"/> (committed), or null.</summary>
    public OutboundMessage? FindByWamid(string tenant, string wamid)
    {
        lock (_gate)
            return _byWamid.GetValueOrDefault((tenant, wamid));
    }

    /// <summary>
    /// The send at <paramref name="address"/>, held in memory or read back from the log through the send index (its
    /// send record and its linked steps); null when it is not
    /// remembered (never queued, or past <c>Outbound:Retention</c>). A send read back is not held: see <see cref="Adopt"/>.
    /// </summary>
    internal async ValueTask<OutboundMessage?> LoadAsync(long address)
    {
        lock (_gate)
        {
            if (_byAddress.TryGetValue(address, out var hot))
                return hot;
        }
        if (!_index.TryGet(address, out var entry) || await _log.ReadAsync(address).ConfigureAwait(false) is not { } sendRecord
            || LogRecordFormat.TypeOf(sendRecord) != OutboundRecords.Send)
            return null;
        var message = OutboundRecords.ReadSend(sendRecord, address);
        message.History.Add(new OutboundStep(OutboundStatus.Queued, message.CreatedUnixMs, 0, 0, null));
        var steps = new List<(OutboundStep Step, string? Wamid, long Address)>();
        for (var at = entry.LastStepAddress; at >= 0 && at > address && steps.Count < 1000;)
        {
            if (await _log.ReadAsync(at).ConfigureAwait(false) is not { } record
                || LogRecordFormat.TypeOf(record) is not (OutboundRecords.Step or OutboundRecords.LinkedStep))
                break;
            var (of, step, wamid, previous) = OutboundRecords.ReadStep(record);
            if (of != address)
                break;
            steps.Add((step, wamid, at));
            at = previous;
        }
        for (var i = steps.Count - 1; i >= 0; i--)
        {
            if (Apply(message, steps[i].Step, steps[i].Wamid))
                message.LastChangeUnixMs = steps[i].Step.AtUnixMs;
        }
        message.Decided = message.Status;
        message.LastStepAddress = steps.Count > 0 ? steps[0].Address : -1;
        return message;
    }

    /// <summary>The send with id <paramref name="id"/>, in memory or read back (see <see cref="LoadAsync"/>), or null.</summary>
    public async ValueTask<OutboundMessage?> FindAsync(string id)
    {
        var address = OutboundMessage.ParseId(id);
        return address >= 0 ? await LoadAsync(address).ConfigureAwait(false) : null;
    }

    /// <summary>The send of <paramref name="tenant"/> queued under idempotency key <paramref name="key"/>, in memory or read back, or null.</summary>
    public async ValueTask<OutboundMessage?> FindKeyAsync(string tenant, string key)
    {
        if (FindKey(tenant, key) is { } hot)
            return hot;
        var address = _index.FindKey(tenant, key);
        return address > 0 && await LoadAsync(address).ConfigureAwait(false) is { } m && m.Tenant == tenant && m.IdempotencyKey == key ? m : null;
    }

    /// <summary>The send of <paramref name="tenant"/> Meta accepted as <paramref name="wamid"/>, in memory or read back, or null.</summary>
    public async ValueTask<OutboundMessage?> FindByWamidAsync(string tenant, string wamid)
    {
        if (FindByWamid(tenant, wamid) is { } hot)
            return hot;
        var address = _index.FindWamid(tenant, wamid);
        return address > 0 && await LoadAsync(address).ConfigureAwait(false) is { } m && m.Tenant == tenant && m.Wamid == wamid ? m : null;
    }

    /// <summary>Holds a send read back by <see cref="LoadAsync"/> in memory again (a step is about to change it), or returns the one already held.</summary>
    internal OutboundMessage Adopt(OutboundMessage message)
    {
        lock (_gate)
        {
            if (_byAddress.TryGetValue(message.Address, out var held))
                return held;
            Index(message);
            return message;
        }
    }

    /// <summary>
    /// Queues a send, or finds the one already queued under the same idempotency key. A new send is appended to the
    /// log (after waiting out a full log for up to 5 s, without holding the book); the returned task completes when it
    /// is durable (the first send's task, for a repeat). <paramref name="authorization"/>, a passed-through bot token,
    /// is kept in memory only: the record says <see cref="OutboundRecords.TokenHeldInMemory"/>.
    /// </summary>
    /// <exception cref="IOException">The outbound log cannot be written (thrown or in the task).</exception>
    /// <exception cref="InvalidOperationException">The log stayed full (backpressure) for 5 s (in the task).</exception>
    internal ValueTask<(OutboundMessage Message, bool Created, Task Durable)> AddAsync(string tenant, string phoneNumberId, string key, string to, string type, string? authorization, string version, byte[] body, long nowUnixMs)
    {
        var send = new PendingSend(this, tenant, phoneNumberId, key, to, type, authorization, version, body, nowUnixMs);
        lock (_gate)
        {
            if (_byKey.TryGetValue((tenant, key), out var existing))
                return new((existing, false, existing.Durable));
            if (_backlog.Count == 0 && send.TryAppend())
                return new(send.Result);
            ThrowIfFailed();
            Wait(send);
        }
        return new(send.Completion.Task);
    }

    /// <summary>
    /// Records that <paramref name="message"/> moves to <paramref name="step"/>'s status, if that is a move forward
    /// (see <see cref="CanMove"/>) from what its last recorded step decided. The decision and the append's place in
    /// the log are taken now, in call order; the move shows (and its lifecycle event goes out) once the record is
    /// committed, which is when the task completes with true. False: not a move forward, or the log failed.
    /// </summary>
    internal Task<bool> RecordAsync(OutboundMessage message, OutboundStep step, string? wamid = null)
    {
        var entry = new OutboundRecords.StepEntry(message.Address, step.Status, step.AtUnixMs, step.MetaUnixSeconds, step.Code, OutboundRecords.Field(wamid), OutboundRecords.Field(step.Detail));
        var pending = new PendingStep(this, entry, new Unapplied(message, step, wamid));
        Task<bool> task;
        lock (_gate)
        {
            if (!CanMove(message.Decided, step.Status) || _log.Failure is not null)
                return s_false;
            message.Decided = step.Status;
            if (_backlog.Count == 0 && pending.TryAppend())
                task = CommitThenApplyAsync(pending.Address);
            else
            {
                Wait(pending);
                task = AppendThenApplyAsync(pending);
            }
        }
        _recording.TryAdd(task, 0);
        _ = task.ContinueWith(static (t, s) => ((System.Collections.Concurrent.ConcurrentDictionary<Task, byte>)s!).TryRemove(t, out _), _recording, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return task;
    }

    /// <summary>No more lifecycle events: the reader of <see cref="Lifecycle"/> ends after the last one (stop).</summary>
    internal void CompleteLifecycle() => _lifecycle.Writer.TryComplete();

    /// <summary>Completes when every step recorded so far is committed and shown (or failed): before a checkpoint cuts the event log the statuses came from, and at stop.</summary>
    internal Task WhenRecordedAsync() => Task.WhenAll(_recording.Keys);

    /// <summary>The lifecycle events of every step at or below <paramref name="stepAddress"/> are committed in the event log (<paramref name="count"/> items of <see cref="Lifecycle"/> done).</summary>
    internal void MarkEmitted(long stepAddress, int count)
    {
        Interlocked.Add(ref _lifecyclePending, -count);
        long seen;
        while ((seen = Interlocked.Read(ref _emittedThrough)) < stepAddress && Interlocked.CompareExchange(ref _emittedThrough, stepAddress, seen) != seen)
        {
        }
    }

    private async Task<bool> AppendThenApplyAsync(PendingStep pending)
    {
        if (!await pending.Completion.Task.ConfigureAwait(false))
            return false;
        return await CommitThenApplyAsync(pending.Address).ConfigureAwait(false);
    }

    private async Task<bool> CommitThenApplyAsync(long address)
    {
        try
        {
            await _log.WaitForCommitAsync(address).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return false; // the log failed: the step is not durable, so it never shows
        }
        await Task.Yield(); // off the log's commit thread
        lock (_gate)
            ApplyCommitted();
        return true;
    }

    /// <summary>Shows every step whose record is committed, in log order, and hands on their lifecycle events. Under the lock.</summary>
    private void ApplyCommitted()
    {
        var committed = _log.CommittedUntilAddress;
        while (_unapplied.TryPeek(out var next) && next.Address < committed)
        {
            _unapplied.Dequeue();
            if (next.Step is null)
            {
                _index.Put(next.Message, -1, withKey: true, withWamid: false); // a send record, committed
                continue;
            }
            if (!Apply(next.Message, next.Step, next.Wamid))
                continue;
            next.Message.LastChangeUnixMs = next.Step.AtUnixMs;
            if (next.Wamid is not null)
                _byWamid[(next.Message.Tenant, next.Wamid)] = next.Message;
            _index.Put(next.Message, next.Address, withKey: next.Wamid is not null, withWamid: next.Wamid is not null);
            if (Emits(next.Step.Status))
            {
                Interlocked.Increment(ref _lifecyclePending);
                _lifecycle.Writer.TryWrite(new LifecycleItem(next.Message.Tenant, next.Address, LifecycleEvent.Body(next.Message, next.Step)));
            }
        }
    }

    /// <summary>Steps whose change is told to the bot: every one from Meta's answer on.</summary>
    private static bool Emits(OutboundStatus status) => status is not (OutboundStatus.Queued or OutboundStatus.Submitted);

    private void ThrowIfFailed()
    {
        if (_log.Failure is { } failure)
            throw new IOException("the outbound log cannot be written", failure);
    }

    /// <summary>Queues an append that met a full log (or a queue already waiting) and makes sure one task drains the queue. Under the lock.</summary>
    private void Wait(PendingAppend append)
    {
        if (_backlog.Count == 0)
            Interlocked.Increment(ref _backpressured);
        _backlog.Enqueue(append);
        if (!_draining)
        {
            _draining = true;
            _ = Task.Run(DrainAsync);
        }
    }

    /// <summary>Retries the queued appends in order every millisecond, outside the lock between tries.</summary>
    private async Task DrainAsync()
    {
        while (true)
        {
            lock (_gate)
            {
                while (_backlog.TryPeek(out var head))
                {
                    if (_log.Failure is { } failure)
                    {
                        while (_backlog.TryDequeue(out var failed))
                            failed.Fail(new IOException("the outbound log cannot be written", failure));
                        break;
                    }
                    if (head.GivenUp())
                    {
                        _backlog.Dequeue();
                        continue;
                    }
                    if (!head.TryAppend())
                        break;
                    _backlog.Dequeue();
                }
                if (_backlog.Count == 0)
                {
                    _draining = false;
                    return;
                }
            }
            await Task.Delay(1).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Whether a send may move from <paramref name="from"/> to <paramref name="to"/>: failed and rejected are final;
    /// Meta's answer (accepted, rejected) only follows queued or submitted; sent, delivered and read only move forward
    /// from accepted; failed may follow anything not final (whether a failed status is behind a delivered or read one
    /// is decided by Meta's timestamps, in the delivery state, before a status reaches the book).
    /// </summary>
    public static bool CanMove(OutboundStatus from, OutboundStatus to) => from switch
    {
        OutboundStatus.Failed or OutboundStatus.Rejected => false,
        _ => to switch
        {
            OutboundStatus.Submitted => from is OutboundStatus.Queued or OutboundStatus.Submitted,
            OutboundStatus.Accepted or OutboundStatus.Rejected => from is OutboundStatus.Queued or OutboundStatus.Submitted,
            OutboundStatus.Sent or OutboundStatus.Delivered or OutboundStatus.Read => from >= OutboundStatus.Accepted && to > from,
            OutboundStatus.Failed => true,
            _ => false,
        },
    };

    private static bool Apply(OutboundMessage message, OutboundStep step, string? wamid)
    {
        if (!CanMove(message.Status, step.Status))
            return false;
        message.Status = step.Status;
        lock (message.History)
            message.History.Add(step);
        if (step.Status == OutboundStatus.Submitted)
            message.Attempts++;
        if (wamid is not null)
            message.Wamid = wamid;
        if (step.MetaUnixSeconds > 0)
            message.MetaUnixSeconds = step.MetaUnixSeconds;
        if (step.Status is OutboundStatus.Failed or OutboundStatus.Rejected)
        {
            message.ErrorCode = step.Code;
            message.ErrorMessage = step.Detail;
        }
        if (message.HasAnswer)
        {
            message.Body = [];
            message.Answered.TrySetResult();
        }
        return true;
    }

    /// <summary>
    /// The book's part of a checkpoint (call after <see cref="WhenRecordedAsync"/>): answered sends idle for
    /// <see cref="HotFor"/>, and every send queued before <paramref name="forgetBeforeUnixMs"/>, leave memory (the send
    /// index keeps them); the emitted mark is written and the log committed; the index is checkpointed and what it
    /// covers recorded; the log's head is cut past <c>Outbound:Retention</c> (never past what the next start reads).
    /// Returns how many sends left memory.
    /// </summary>
    /// <exception cref="InvalidOperationException">FASTER refused the index checkpoint.</exception>
    internal async Task<int> CheckpointAsync(long nowUnixMs, long forgetBeforeUnixMs, CancellationToken cancellationToken = default)
    {
        var evicted = 0;
        long covered, lowestUnanswered, lowestHeld;
        lock (_gate)
        {
            foreach (var m in _byAddress.Values.ToList())
            {
                if (!IsQuiet(m, nowUnixMs) && !(m.CreatedUnixMs < forgetBeforeUnixMs && m.HasAnswer))
                    continue;
                Unhold(m);
                evicted++;
            }
            // Every record below this is applied, so in the index (a record is indexed when it is applied).
            covered = _unapplied.TryPeek(out var head) ? head.Address : _log.TailAddress;
            lowestUnanswered = covered;
            lowestHeld = covered;
            foreach (var m in _byAddress.Values)
            {
                lowestHeld = Math.Min(lowestHeld, m.Address);
                if (!m.HasAnswer)
                    lowestUnanswered = Math.Min(lowestUnanswered, m.Address);
            }
            if (Interlocked.Read(ref _lifecyclePending) == 0)
                MarkEmitted(covered - 1, 0); // no event on its way: every step so far is emitted
        }
        await CommitAsync().ConfigureAwait(false);
        await _index.CheckpointAsync(cancellationToken).ConfigureAwait(false);
        var emitted = Interlocked.Read(ref _emittedWritten);
        _index.WriteCovered(covered, lowestUnanswered, emitted);
        _ageMap.Record(nowUnixMs, covered);
        var keepFrom = Math.Min(Math.Min(Math.Min(covered, lowestUnanswered), emitted + 1), lowestHeld);
        var expired = _ageMap.ExpiredBelow(nowUnixMs);
        if (expired > 0)
            _log.TruncateUntil(Math.Min(expired, keepFrom));
        return evicted;
    }

    /// <summary>
    /// Writes the emitted mark if it moved (see <see cref="MarkEmitted"/>) and commits what is pending. A mark that
    /// meets a full log is written at the next commit.
    /// </summary>
    public void Commit()
    {
        AppendEmittedMark();
        if (_log.Failure is null)
            _log.CommitAndWait();
    }

    /// <summary>Appends the emitted mark when it moved since the last one written (and nothing waits in the backlog).</summary>
    private void AppendEmittedMark()
    {
        var through = Interlocked.Read(ref _emittedThrough);
        if (through > Interlocked.Read(ref _emittedWritten))
        {
            lock (_gate)
            {
                if (_backlog.Count == 0 && _log.Failure is null && _log.TryAppend(new OutboundRecords.EmittedEntry(through), out _))
                    Interlocked.Exchange(ref _emittedWritten, through);
            }
        }
    }

    /// <summary>
    /// As <see cref="Commit"/>, waiting for the commit without holding a thread (the checkpoint's path: a synchronous
    /// wait there, spinning on a thread-pool thread while the shared writer worked through a checkpoint, starved a
    /// one-core server's pool for seconds).
    /// </summary>
    public async Task CommitAsync()
    {
        AppendEmittedMark();
        if (_log.Failure is not null)
            return;
        var tail = _log.TailAddress;
        if (tail > _log.BeginAddress)
        {
            await _log.WaitForCommitAsync(tail - 1).ConfigureAwait(false);
            await Task.Yield(); // off the log's commit thread
        }
    }

    /// <summary>Commits what is pending and closes the log.</summary>
    public void Dispose()
    {
        _lifecycle.Writer.TryComplete();
        _log.Dispose();
    }

    /// <summary>A record appended (address known) and not yet shown: a step, or (no step) a send record, indexed once committed.</summary>
    private sealed class Unapplied(OutboundMessage message, OutboundStep? step, string? wamid)
    {
        public OutboundMessage Message { get; } = message;
        public OutboundStep? Step { get; } = step;
        public string? Wamid { get; } = wamid;
        public long Address { get; set; } = -1;
    }

    /// <summary>An append waiting its turn in <see cref="_backlog"/>. Its members run under the book's lock.</summary>
    private abstract class PendingAppend
    {
        /// <summary>Tries the append; true when it is done (appended, or settled otherwise), false on backpressure.</summary>
        public abstract bool TryAppend();

        /// <summary>True when it stopped waiting (and has been answered).</summary>
        public abstract bool GivenUp();

        public abstract void Fail(Exception failure);
    }

    private sealed class PendingStep(OutboundBook book, OutboundRecords.StepEntry entry, Unapplied step) : PendingAppend
    {
        private OutboundRecords.StepEntry _entry = entry;

        public TaskCompletionSource<bool> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public long Address => step.Address;

        public override bool TryAppend()
        {
            _entry.Previous = step.Message.LastStepAddress;
            if (!book._log.TryAppend(_entry, out var address))
                return false;
            step.Message.LastStepAddress = address;
            step.Address = address;
            book._unapplied.Enqueue(step);
            Completion.TrySetResult(true);
            return true;
        }

        public override bool GivenUp() => false; // a step waits as long as the log lives: Meta's answer is not asked twice

        public override void Fail(Exception failure) => Completion.TrySetResult(false);
    }

    private sealed class PendingSend : PendingAppend
    {
        private readonly OutboundBook _book;
        private readonly string _tenant, _phone, _key, _to, _type, _version;
        private readonly string? _authorization;
        private readonly byte[] _body;
        private readonly long _created;
        private readonly OutboundRecords.SendEntry _entry;
        private readonly long _since = Stopwatch.GetTimestamp();

        public PendingSend(OutboundBook book, string tenant, string phone, string key, string to, string type, string? authorization, string version, byte[] body, long created)
        {
            (_book, _tenant, _phone, _key, _to, _type, _authorization, _version, _body, _created) = (book, tenant, phone, key, to, type, authorization, version, body, created);
            var onDisk = authorization is null ? null : OutboundRecords.TokenHeldInMemory;
            _entry = new OutboundRecords.SendEntry(created, [OutboundRecords.Field(tenant), OutboundRecords.Field(phone), OutboundRecords.Field(key), OutboundRecords.Field(to), OutboundRecords.Field(type), OutboundRecords.Field(onDisk), OutboundRecords.Field(version)], body);
        }

        public TaskCompletionSource<(OutboundMessage Message, bool Created, Task Durable)> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public (OutboundMessage Message, bool Created, Task Durable) Result { get; private set; }

        public override bool TryAppend()
        {
            // A repeat of the key may have been appended while this one waited.
            if (_book._byKey.TryGetValue((_tenant, _key), out var existing))
            {
                Completion.TrySetResult((existing, false, existing.Durable));
                return true;
            }
            if (!_book._log.TryAppend(_entry, out var address))
                return false;
            var message = new OutboundMessage(address, _tenant, _phone, _key, _to, _type, _authorization, _version, _body, _created);
            message.History.Add(new OutboundStep(OutboundStatus.Queued, _created, 0, 0, null));
            message.Durable = _book.CommitTask(address);
            message.LastChangeUnixMs = _created;
            _book.Index(message);
            _book._unapplied.Enqueue(new Unapplied(message, null, null) { Address = address });
            Result = (message, true, message.Durable);
            Completion.TrySetResult(Result);
            return true;
        }

        public override bool GivenUp()
        {
            if (Stopwatch.GetElapsedTime(_since) < s_sendWaitLimit)
                return false;
            Completion.TrySetException(new InvalidOperationException("the outbound log stayed full for 5 s"));
            return true;
        }

        public override void Fail(Exception failure) => Completion.TrySetException(failure);
    }

    private async Task CommitTask(long address)
    {
        await _log.WaitForCommitAsync(address).ConfigureAwait(false);
        await Task.Yield(); // off the log's commit thread
    }
}
