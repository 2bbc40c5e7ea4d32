using System.Buffers;
using System.Text;
using FastIngest.Storage;

namespace FastIngest.Ingest;

/// <summary>What happened to a quarantined payload (stored as the event index of its resolving ack).</summary>
public enum QuarantineResolution
{
    /// <summary>It parsed (after an upgrade) and went into the event log.</summary>
    Replayed = 0,

    /// <summary>An operator discarded it.</summary>
    Discarded = 1,
}

/// <summary>An open quarantined payload: authentic (its signature checked) but not readable when it came.</summary>
/// <param name="Id">Its address in the quarantine log.</param>
/// <param name="Tenant">The tenant it was sent to.</param>
/// <param name="Reason">Why it did not parse.</param>
/// <param name="ReceivedUnixMs">When FastIngest received it (Unix ms).</param>
/// <param name="PayloadBytes">Size of the body as received, in bytes.</param>
public sealed record QuarantinedPayload(long Id, string Tenant, string Reason, long ReceivedUnixMs, int PayloadBytes);

/// <summary>
/// The operator's view of the quarantine log (<c>DataDir/quarantine/</c>, never truncated): the payloads still open,
/// their bodies, and their resolution. A resolution is an ack record appended to the quarantine log itself
/// (batch address = the payload's address, event index = <see cref="QuarantineResolution"/>). Every call scans the
/// log: quarantine is rare and small, and this keeps no second copy to go stale.
/// </summary>
public sealed class QuarantineLog(EventLog log)
{
    /// <summary>Open payloads (oldest first), of one tenant or all.</summary>
    public IReadOnlyList<QuarantinedPayload> List(string? tenant = null)
    {
        var entries = new List<QuarantinedPayload>();
        var resolved = new HashSet<long>();
        Scan((address, record) =>
        {
            switch (LogRecordFormat.TypeOf(record))
            {
                case LogRecordType.Quarantine:
                    var stored = StoredPayload.Read(record);
                    var t = Encoding.UTF8.GetString(stored.Tenant);
                    if (tenant is null || t == tenant)
                        entries.Add(new QuarantinedPayload(address, t, Encoding.UTF8.GetString(stored.Reason), stored.ReceivedUnixMs, stored.Body.Length));
                    break;
                case LogRecordType.Ack:
                    resolved.Add(AckRecord.Read(record).BatchAddress);
                    break;
            }
        });
        return [.. entries.Where(e => !resolved.Contains(e.Id))];
    }

    /// <summary>The open payload <paramref name="id"/> and its body, or null.</summary>
    public (QuarantinedPayload Entry, byte[] Body)? Find(long id)
    {
        if (List().FirstOrDefault(e => e.Id == id) is not { } entry)
            return null;
        byte[]? body = null;
        Scan((address, record) =>
        {
            if (address == id)
                body = StoredPayload.Read(record).Body.ToArray();
        }, from: id);
        return body is null ? null : (entry, body);
    }

    /// <summary>Records the resolution of <paramref name="id"/> durably. False if it is not open.</summary>
    public async Task<bool> ResolveAsync(long id, QuarantineResolution resolution, CancellationToken cancellationToken = default)
    {
        if (List().All(e => e.Id != id))
            return false;
        await log.AppendDurableAsync(new AckRecord(id, (int)resolution), cancellationToken).ConfigureAwait(false);
        return true;
    }

    private void Scan(Action<long, ReadOnlySpan<byte>> visit, long from = -1)
    {
        using var iter = log.Scan(from < 0 ? log.BeginAddress : from, log.CommittedUntilAddress);
        while (iter.GetNext(MemoryPool<byte>.Shared, out var owner, out var length, out var address, out _))
        {
            using (owner)
            {
                visit(address, owner.Memory.Span[..length]);
                if (from >= 0)
                    return;
            }
        }
    }
}
