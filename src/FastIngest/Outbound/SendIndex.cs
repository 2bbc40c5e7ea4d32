using System.Runtime.InteropServices;
using System.Text;
using FastIngest.Ingest;
using FastIngest.Storage;
using Microsoft.Extensions.Logging;

namespace FastIngest.Outbound;

/// <summary>
/// What the send index keeps of one send (32 bytes): where its records are in the outbound log and where its
/// lifecycle stands. The same value is stored under the send's id, its idempotency key and its wamid.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct SendIndexEntry
{
    /// <summary>The send record's address in the outbound log (the send's id); 0 for none.</summary>
    public long Address;

    /// <summary>The address of its last step record (which links back to the one before), or -1 for none.</summary>
    public long LastStepAddress;

    /// <summary>When it was queued (Unix ms).</summary>
    public long CreatedUnixMs;

    /// <summary>Its status (<see cref="OutboundStatus"/>).</summary>
    public byte Status;

    private byte _reserved0;
    private short _reserved1;
    private int _reserved2;
}

/// <summary>
/// The index of every send remembered for <c>Outbound:Retention</c>: a FASTER KV under <c>DataDir/outbound-index/</c>
/// of 16-byte keys (SHA-256 of the tenant and <c>send:{address}</c>, <c>key:{idempotency key}</c> or
/// <c>wamid:{wamid}</c>, as <see cref="EventIdentity.Key"/>) to a <see cref="SendIndexEntry"/>, so that a send
/// answered long ago is found by its id, its key or its wamid without holding it in memory: its records are then read
/// back from the outbound log. Written once a record is committed; checkpointed with the other stores; keys not
/// written for <c>Outbound:Retention</c> are cut.
/// </summary>
internal sealed class SendIndex : IDisposable
{
    private readonly TtlKvStore<SendIndexEntry> _store;
    private readonly string _coveredPath;

    /// <summary>Opens (recovering the latest checkpoint) the index in <paramref name="directory"/>.</summary>
    /// <exception cref="IOException">The directory cannot be used, or the store cannot be recovered.</exception>
    public SendIndex(string directory, long indexBytes, long memoryBytes, TimeSpan retention, TimeProvider time, ILogger logger)
    {
        _store = new TtlKvStore<SendIndexEntry>(directory, "send-index", indexBytes, memoryBytes, retention, time, logger);
        _coveredPath = Path.Combine(directory, "covered");
    }

    /// <summary>Bytes of the index's log.</summary>
    public long LogBytes => _store.LogBytes;

    private static DedupeKey Key(string tenant, string kind, string value)
        => EventIdentity.Key(Encoding.UTF8.GetBytes(tenant), Encoding.UTF8.GetBytes(kind + value));

    /// <summary>An id key: the address is unique in the data directory, so it needs no tenant.</summary>
    private static DedupeKey IdKey(long address)
        => Key("", "send:", address.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>The entry of the send at <paramref name="address"/>.</summary>
    public bool TryGet(long address, out SendIndexEntry entry) => _store.Sessions.Read(IdKey(address), out entry) && entry.Address == address;

    /// <summary>The address of <paramref name="tenant"/>'s send queued under idempotency key <paramref name="key"/>, or -1.</summary>
    public long FindKey(string tenant, string key) => _store.Sessions.Read(Key(tenant, "key:", key), out var e) && e.Address > 0 ? e.Address : -1;

    /// <summary>The address of <paramref name="tenant"/>'s send Meta accepted as <paramref name="wamid"/>, or -1.</summary>
    public long FindWamid(string tenant, string wamid) => _store.Sessions.Read(Key(tenant, "wamid:", wamid), out var e) && e.Address > 0 ? e.Address : -1;

    /// <summary>
    /// Writes the entry of <paramref name="message"/>, whose last committed step is at <paramref name="lastStepAddress"/>,
    /// under its id (and its key when <paramref name="withKey"/>, its wamid when it has one and <paramref name="withWamid"/>).
    /// </summary>
    public void Put(OutboundMessage message, long lastStepAddress, bool withKey, bool withWamid)
    {
        var entry = new SendIndexEntry { Address = message.Address, LastStepAddress = lastStepAddress, CreatedUnixMs = message.CreatedUnixMs, Status = (byte)message.Status };
        Put(entry, withKey ? message : null, withWamid ? message.Wamid : null);
    }

    /// <summary>Writes <paramref name="entry"/> under its id, and under <paramref name="keyOf"/>'s idempotency key and <paramref name="wamid"/> when given.</summary>
    public void Put(SendIndexEntry entry, OutboundMessage? keyOf = null, string? wamid = null)
    {
        var session = _store.Sessions.Rent();
        try
        {
            var key = IdKey(entry.Address);
            KvSession.Upsert(session, ref key, ref entry);
            if (keyOf is { } message)
            {
                key = Key(message.Tenant, "key:", message.IdempotencyKey);
                KvSession.Upsert(session, ref key, ref entry);
                if (wamid is not null)
                {
                    key = Key(message.Tenant, "wamid:", wamid);
                    KvSession.Upsert(session, ref key, ref entry);
                }
            }
        }
        finally
        {
            _store.Sessions.Return(session);
        }
    }

    /// <summary>
    /// Where the last checkpoint left the outbound log, in <c>covered</c> next to the index (so a store moved aside
    /// takes it along and the next start reads the whole log): every record below <c>Covered</c> was in the index
    /// before that checkpoint; <c>LowestUnanswered</c> is the first send then still unanswered; <c>Emitted</c> the
    /// emitted mark. Null when there is none.
    /// </summary>
    public (long Covered, long LowestUnanswered, long Emitted)? ReadCovered()
    {
        var parts = (AtomicFile.Read(_coveredPath) ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return parts.Length == 3
            && long.TryParse(parts[0], System.Globalization.CultureInfo.InvariantCulture, out var c)
            && long.TryParse(parts[1], System.Globalization.CultureInfo.InvariantCulture, out var u)
            && long.TryParse(parts[2], System.Globalization.CultureInfo.InvariantCulture, out var m) ? (c, u, m) : null;
    }

    /// <summary>Records, after a completed checkpoint, what it covered (see <see cref="ReadCovered"/>).</summary>
    public void WriteCovered(long covered, long lowestUnanswered, long emitted)
        => AtomicFile.Write(_coveredPath, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{covered} {lowestUnanswered} {emitted}\n"));

    /// <summary>Cuts keys past the retention, then takes a full (fold-over) checkpoint.</summary>
    /// <exception cref="InvalidOperationException">FASTER refused the checkpoint.</exception>
    public Task CheckpointAsync(CancellationToken cancellationToken = default) => _store.CheckpointAsync(cancellationToken);

    public void Dispose() => _store.Dispose();
}
