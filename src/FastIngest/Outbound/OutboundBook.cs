using System.Buffers;
using FastIngest.Storage;
using Microsoft.Extensions.Logging;

namespace FastIngest.Outbound;

/// <summary>
/// Every send FastIngest remembers: a FasterLog of its own under <c>DataDir/outbound/</c> (a send record when it is
/// queued, a step record for each change of status) and, rebuilt from it at start, an index in memory by id, by
/// idempotency key and by wamid. A send is durable before it is answered 202; its steps are group-committed behind it.
/// Sends older than <c>Outbound:Retention</c> are forgotten at checkpoints and the log's head is cut below the oldest
/// one still remembered.
/// </summary>
/// <remarks>All index changes and step appends happen under one lock, so the log holds the steps of a send in the order they were made.</remarks>
public sealed class OutboundBook : IDisposable
{
    private readonly EventLog _log;

    /// <summary>The log the sends live in (<c>DataDir/outbound/</c>).</summary>
    internal EventLog Log => _log;
    private readonly object _gate = new();
    private readonly SortedDictionary<long, OutboundMessage> _byAddress = [];
    private readonly Dictionary<(string Tenant, string Key), OutboundMessage> _byKey = [];
    private readonly Dictionary<(string Tenant, string Wamid), OutboundMessage> _byWamid = [];

    /// <summary>Opens (and reads back) the book in <paramref name="directory"/>, forgetting sends queued before <paramref name="forgetBeforeUnixMs"/>.</summary>
    /// <exception cref="IOException">The directory cannot be used.</exception>
    public OutboundBook(string directory, int maxRecordBytes, long memoryBytes, long forgetBeforeUnixMs, ILogger logger)
    {
        _log = new EventLog(directory, "outbound", maxRecordBytes, memoryBytes, logger);
        using var iter = _log.Scan(_log.BeginAddress, _log.CommittedUntilAddress);
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
                        if (_byAddress.TryGetValue(sendAddress, out var owner2))
                        {
                            Apply(owner2, step, wamid);
                            // The wamid comes with the "accepted" step, after the send was indexed: without this, a
                            // restart left every accepted send unreachable by its status webhooks.
                            if (owner2.Wamid is { } accepted)
                                _byWamid[(owner2.Tenant, accepted)] = owner2;
                        }
                        break;
                }
            }
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

    /// <summary>The send of <paramref name="tenant"/> that Meta accepted as <paramref name="wamid"/>, or null.</summary>
    public OutboundMessage? FindByWamid(string tenant, string wamid)
    {
        lock (_gate)
            return _byWamid.GetValueOrDefault((tenant, wamid));
    }

    /// <summary>
    /// Queues a send, or finds the one already queued under the same idempotency key. A new send is appended to the
    /// log here; the returned task completes when it is durable (the first send's task, for a repeat).
    /// </summary>
    /// <exception cref="IOException">The outbound log cannot be written.</exception>
    /// <exception cref="InvalidOperationException">The log stayed full (backpressure) for 5 s.</exception>
    internal (OutboundMessage Message, bool Created, Task Durable) Add(string tenant, string phoneNumberId, string key, string to, string type, string? authorization, string version, byte[] body, long nowUnixMs)
    {
        var strings = new[] { OutboundRecords.Field(tenant), OutboundRecords.Field(phoneNumberId), OutboundRecords.Field(key), OutboundRecords.Field(to), OutboundRecords.Field(type), OutboundRecords.Field(authorization), OutboundRecords.Field(version) };
        lock (_gate)
        {
            if (_byKey.TryGetValue((tenant, key), out var existing))
                return (existing, false, existing.Durable);
            if (!AppendWaiting(new OutboundRecords.SendEntry(nowUnixMs, strings, body), out var address))
            {
                if (_log.Failure is { } failure)
                    throw new IOException("the outbound log cannot be written", failure);
                throw new InvalidOperationException("the outbound log stayed full for 5 s");
            }
            var message = new OutboundMessage(address, tenant, phoneNumberId, key, to, type, authorization, version, body, nowUnixMs);
            message.History.Add(new OutboundStep(OutboundStatus.Queued, nowUnixMs, 0, 0, null));
            message.Durable = CommitTask(address);
            Index(message);
            return (message, true, message.Durable);
        }
    }

    private async Task CommitTask(long address)
    {
        await _log.WaitForCommitAsync(address).ConfigureAwait(false);
        await Task.Yield(); // off the log's commit thread
    }

    /// <summary>
    /// Moves <paramref name="message"/> to <paramref name="step"/>'s status if that is a move forward (see
    /// <see cref="CanMove"/>), records it in the log (group-committed), and returns whether it moved.
    /// </summary>
    internal bool Record(OutboundMessage message, OutboundStep step, string? wamid = null)
    {
        lock (_gate)
        {
            if (!CanMove(message.Status, step.Status))
                return false;
            Apply(message, step, wamid);
            if (wamid is not null)
                _byWamid[(message.Tenant, wamid)] = message;
            var entry = new OutboundRecords.StepEntry(message.Address, step.Status, step.AtUnixMs, step.MetaUnixSeconds, step.Code, OutboundRecords.Field(wamid), OutboundRecords.Field(step.Detail));
            AppendWaiting(entry, out _);
            return true;
        }
    }

    /// <summary>Appends, waiting out a full log (backpressure) for up to 5 s; false if the log failed or stayed full. Call under the lock.</summary>
    private bool AppendWaiting<T>(T entry, out long address) where T : FASTER.core.ILogEnqueueEntry
    {
        for (var spins = 0; !_log.TryAppend(entry, out address); spins++)
        {
            if (_log.Failure is not null || spins >= 5000)
                return false;
            Thread.Sleep(1);
        }
        return true;
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

    private static void Apply(OutboundMessage message, OutboundStep step, string? wamid)
    {
        if (!CanMove(message.Status, step.Status))
            return;
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
    }

    /// <summary>
    /// Forgets sends queued before <paramref name="forgetBeforeUnixMs"/> and cuts the log below the oldest send still
    /// remembered. Returns how many were forgotten.
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

    /// <summary>Commits what is pending.</summary>
    public void Commit() => _log.CommitAndWait();

    /// <summary>Commits what is pending and closes the log.</summary>
    public void Dispose() => _log.Dispose();
}
