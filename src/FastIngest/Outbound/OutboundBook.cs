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

    /// <summary>The log the sends live in (<c>DataDir/outbound/</c>).</summary>
    internal EventLog Log => _log;

    /// <summary>
    /// Opens (and reads back) the book in <paramref name="directory"/>, forgetting sends queued before
    /// <paramref name="forgetBeforeUnixMs"/>. The lifecycle events of steps after the last emitted mark are put on
    /// <see cref="Lifecycle"/> again, in log order.
    /// </summary>
    /// <exception cref="IOException">The directory cannot be used.</exception>
    public OutboundBook(string directory, int maxRecordBytes, long memoryBytes, long forgetBeforeUnixMs, ILogger logger)
    {
        _log = new EventLog(directory, "outbound", maxRecordBytes, memoryBytes, logger);
        var emitted = -1L;
        var again = new List<LifecycleItem>();
        using (var iter = _log.Scan(_log.BeginAddress, _log.CommittedUntilAddress))
        {
            while (iter.GetNext(MemoryPool<byte>.Shared, out var owner, out var length, out var address, out _))
            {
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
                                Index(message);
                            }
                            break;
                        case OutboundRecords.Step:
                            var (sendAddress, step, wamid) = OutboundRecords.ReadStep(record);
                            if (_byAddress.TryGetValue(sendAddress, out var owner2) && Apply(owner2, step, wamid))
                            {
                                owner2.Decided = owner2.Status;
                                // The wamid comes with the "accepted" step, after the send was indexed.
                                if (wamid is not null)
                                    _byWamid[(owner2.Tenant, wamid)] = owner2;
                                if (Emits(step.Status))
                                    again.Add(new LifecycleItem(owner2.Tenant, address, LifecycleEvent.Body(owner2, step)));
                            }
                            break;
                        case OutboundRecords.Emitted:
                            emitted = Math.Max(emitted, OutboundRecords.ReadEmitted(record));
                            break;
                    }
                }
            }
        }
        _emittedThrough = _emittedWritten = emitted;
        foreach (var item in again)
        {
            if (item.StepAddress > emitted)
                _lifecycle.Writer.TryWrite(item);
        }
    }

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

    /// <summary>The lifecycle events of every step at or below <paramref name="stepAddress"/> are committed in the event log.</summary>
    internal void MarkEmitted(long stepAddress)
    {
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
            if (!Apply(next.Message, next.Step, next.Wamid))
                continue;
            if (next.Wamid is not null)
                _byWamid[(next.Message.Tenant, next.Wamid)] = next.Message;
            if (Emits(next.Step.Status))
                _lifecycle.Writer.TryWrite(new LifecycleItem(next.Message.Tenant, next.Address, LifecycleEvent.Body(next.Message, next.Step)));
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
    /// Forgets sends queued before <paramref name="forgetBeforeUnixMs"/> and cuts the log below the oldest send still
    /// remembered (and never above a step whose lifecycle event is not yet emitted). Returns how many were forgotten.
    /// </summary>
    public int Forget(long forgetBeforeUnixMs)
    {
        var forgotten = 0;
        long keepFrom;
        lock (_gate)
        {
            while (_byAddress.Count > 0)
            {
                var oldest = _byAddress.First().Value;
                if (oldest.CreatedUnixMs >= forgetBeforeUnixMs)
                    break;
                _byAddress.Remove(oldest.Address);
                _byKey.Remove((oldest.Tenant, oldest.IdempotencyKey));
                if (oldest.Wamid is not null)
                    _byWamid.Remove((oldest.Tenant, oldest.Wamid));
                forgotten++;
            }
            keepFrom = _byAddress.Count > 0 ? _byAddress.First().Key : _log.CommittedUntilAddress;
        }
        _log.TruncateUntil(keepFrom);
        return forgotten;
    }

    /// <summary>
    /// Writes the emitted mark if it moved (see <see cref="MarkEmitted"/>) and commits what is pending. A mark that
    /// meets a full log is written at the next commit.
    /// </summary>
    public void Commit()
    {
        var through = Interlocked.Read(ref _emittedThrough);
        if (through > _emittedWritten)
        {
            lock (_gate)
            {
                if (_backlog.Count == 0 && _log.Failure is null && _log.TryAppend(new OutboundRecords.EmittedEntry(through), out _))
                    _emittedWritten = through;
            }
        }
        if (_log.Failure is null)
            _log.CommitAndWait();
    }

    /// <summary>Commits what is pending and closes the log.</summary>
    public void Dispose()
    {
        _lifecycle.Writer.TryComplete();
        _log.Dispose();
    }

    /// <summary>A step appended (address known) and not yet shown.</summary>
    private sealed class Unapplied(OutboundMessage message, OutboundStep step, string? wamid)
    {
        public OutboundMessage Message { get; } = message;
        public OutboundStep Step { get; } = step;
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
        public TaskCompletionSource<bool> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public long Address => step.Address;

        public override bool TryAppend()
        {
            if (!book._log.TryAppend(entry, out var address))
                return false;
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
            _book.Index(message);
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
