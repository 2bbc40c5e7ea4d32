using System.Buffers;
using System.Text;
using FastIngest.Storage;
using Microsoft.Extensions.Logging;

namespace FastIngest.Dispatch;

/// <summary>
/// The dead-letter queue: events FastIngest gave up delivering (a permanent refusal by the bot, or past
/// <c>Forward:MaxAttempts</c> / <c>Forward:MaxAge</c>), each kept with the exact payload it would have forwarded. A
/// FasterLog of its own under <c>DataDir/deadletter/</c>, group-committed like the event log, so an entry is durable
/// before the event is acked in the event log, and it survives restarts. Entries leave it only by an operator's
/// replay or discard, which is recorded as a resolution record. An index of the open entries (fields, not payloads)
/// is rebuilt from the log at start and kept in memory.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711", Justification = "Dead-letter queue is the field's standard term.")]
public sealed class DeadLetterQueue : IDisposable
{
    private readonly EventLog _log;

    /// <summary>The log the entries live in (<c>DataDir/deadletter/</c>).</summary>
    internal EventLog Log => _log;
    private readonly TimeProvider _time;
    private readonly SortedDictionary<long, DeadLetter> _open = [];

    /// <summary>Opens (and reads back) the queue in <paramref name="directory"/>.</summary>
    /// <exception cref="IOException">The directory cannot be used.</exception>
    public DeadLetterQueue(string directory, int maxRecordBytes, long memoryBytes, TimeProvider time, ILogger logger)
    {
        _time = time;
        _log = new EventLog(directory, "deadletter", maxRecordBytes, memoryBytes, logger);
        using var iter = _log.Scan(_log.BeginAddress, _log.CommittedUntilAddress);
        while (iter.GetNext(MemoryPool<byte>.Shared, out var owner, out var length, out var address, out _))
        {
            using (owner)
            {
                var record = owner.Memory.Span[..length];
                switch (LogRecordFormat.TypeOf(record))
                {
                    case DeadLetterRecord.DeadLetter:
                        _open[address] = DeadLetterRecord.ReadEntry(record, address);
                        break;
                    case DeadLetterRecord.Resolved:
                        _open.Remove(DeadLetterRecord.ReadResolution(record).Address);
                        break;
                }
            }
        }
    }

    /// <summary>Open entries.</summary>
    public int Count
    {
        get
        {
            lock (_open)
                return _open.Count;
        }
    }

    /// <summary>
    /// Adds an event that <paramref name="destination"/> (its name) gave up on and waits until the entry is durable.
    /// <paramref name="payload"/> is the JSON body it would have delivered. Returns the entry.
    /// </summary>
    /// <exception cref="IOException">The dead-letter log cannot be written (the caller keeps retrying the event instead).</exception>
    public async ValueTask<DeadLetter> AddAsync(string tenant, string destination, string eventId, long receivedUnixMs, int attempts, string reason, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken = default)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var entry = new DeadLetterRecord.Entry(receivedUnixMs, now, attempts, Encoding.UTF8.GetBytes(tenant), Encoding.UTF8.GetBytes(eventId),
            Encoding.UTF8.GetBytes(reason.Length > 1000 ? reason[..1000] : reason), payload, Encoding.UTF8.GetBytes(destination));
        var address = await _log.AppendDurableAsync(entry, cancellationToken).ConfigureAwait(false);
        var added = new DeadLetter(address, tenant, eventId, receivedUnixMs, now, attempts, reason, payload.Length) { Destination = destination };
        lock (_open)
            _open[address] = added;
        return added;
    }

    /// <summary>The open entries, oldest first; of one tenant when <paramref name="tenant"/> is set, and of one of its destinations when <paramref name="destination"/> is.</summary>
    public IReadOnlyList<DeadLetter> List(string? tenant = null, string? destination = null)
    {
        lock (_open)
            return [.. _open.Values.Where(d => (tenant is null || d.Tenant == tenant) && (destination is null || d.Destination == destination))];
    }

    /// <summary>The open entry <paramref name="id"/>, or null.</summary>
    public DeadLetter? Find(long id)
    {
        lock (_open)
            return _open.GetValueOrDefault(id);
    }

    /// <summary>The payload of entry <paramref name="id"/> (read from the log), or null when there is no such open entry.</summary>
    public byte[]? ReadPayload(long id)
    {
        if (Find(id) is not { } entry)
            return null;
        using var iter = _log.Scan(entry.Id, long.MaxValue);
        if (!iter.GetNext(MemoryPool<byte>.Shared, out var owner, out var length, out var address, out _) || address != entry.Id)
        {
            owner?.Dispose();
            return null;
        }
        using (owner)
            return DeadLetterRecord.Payload(owner.Memory.Span[..length]).ToArray();
    }

    /// <summary>Records that entry <paramref name="id"/> was replayed or discarded, durably. False when it was not open.</summary>
    public async ValueTask<bool> ResolveAsync(long id, DeadLetterResolution how, CancellationToken cancellationToken = default)
    {
        lock (_open)
        {
            if (!_open.ContainsKey(id))
                return false;
        }
        await _log.AppendDurableAsync(new DeadLetterRecord.Resolution(id, how), cancellationToken).ConfigureAwait(false);
        lock (_open)
            return _open.Remove(id);
    }

    /// <summary>Commits what is pending and closes the log.</summary>
    public void Dispose() => _log.Dispose();
}
