using System.Text;
using FastIngest.Ingest;
using FastIngest.Storage;
using Microsoft.Extensions.Logging;

namespace FastIngest.Delivery;

/// <summary>A message's delivery state as <c>GET /v1/messages/{wamid}</c> shows it.</summary>
/// <param name="Tenant">The tenant whose webhooks reported it.</param>
/// <param name="Wamid">The message id.</param>
/// <param name="Status">The current status.</param>
/// <param name="MetaUnixSeconds">Meta's timestamp of the current status (Unix seconds).</param>
/// <param name="Changes">Status webhooks applied, stale ones included.</param>
/// <param name="History">The last <see cref="DeliveryState.HistoryCapacity"/> of them, oldest first.</param>
public sealed record MessageDelivery(string Tenant, string Wamid, MessageStatus Status, long MetaUnixSeconds, int Changes, IReadOnlyList<StatusChange> History);

/// <summary>
/// The delivery-state store: a FASTER KV of (tenant, wamid) → <see cref="DeliveryState"/> under
/// <c>DataDir/state/</c>, fed by the dispatchers with every status webhook they read from the event log, in log
/// order, and checkpointed with the dedupe store. Records untouched for longer than its TTL are cut at checkpoints.
/// </summary>
/// <remarks>
/// Each key is only ever written by its tenant's dispatcher reader (one task), so read-then-upsert needs no lock;
/// readers (the HTTP API) may run alongside. Sessions are pooled and used by one thread at a time, never across an
/// await. After a restart the dispatchers read the log from its begin again and re-apply what the checkpoint
/// missed; <see cref="DeliveryState.Apply"/> is idempotent for that.
/// </remarks>
public sealed class DeliveryStateStore : IDisposable
{
    private readonly TtlKvStore<DeliveryState> _store;

    /// <summary>Opens (recovering the latest checkpoint) the store in <paramref name="directory"/>.</summary>
    /// <param name="directory">Where its log and checkpoints live.</param>
    /// <param name="indexBytes">Hash index bytes (a power of two; 8 per slot, aim for 16 per message in the TTL).</param>
    /// <param name="memoryBytes">In-memory part of its log (each message is one 144-byte record).</param>
    /// <param name="ttl">How long a message's state is kept after its last status.</param>
    /// <param name="time">The clock of the TTL.</param>
    /// <param name="logger">Where cuts are reported.</param>
    public DeliveryStateStore(string directory, long indexBytes, long memoryBytes, TimeSpan ttl, TimeProvider time, ILogger logger)
    {
        _store = new TtlKvStore<DeliveryState>(directory, "delivery-state", indexBytes, memoryBytes, ttl, time, logger);
    }

    /// <summary>Bytes of the store's log from its begin to its tail.</summary>
    public long LogBytes => _store.LogBytes;

    /// <summary>The store key of a message: like an event id's, in a namespace of its own.</summary>
    internal static DedupeKey KeyOf(ReadOnlySpan<byte> tenantUtf8, ReadOnlySpan<byte> wamid)
    {
        Span<byte> id = stackalloc byte[6 + wamid.Length];
        "state:"u8.CopyTo(id);
        wamid.CopyTo(id[6..]);
        return EventIdentity.Key(tenantUtf8, id);
    }

    /// <summary>
    /// Applies one status webhook of <paramref name="wamid"/> (see <see cref="DeliveryState.Apply"/>) and returns
    /// whether it was stale. Synchronous; call from the projection follower only.
    /// </summary>
    internal bool Apply(ReadOnlySpan<byte> tenantUtf8, ReadOnlySpan<byte> wamid, MessageStatus status, long metaUnixSeconds, long receivedUnixMs)
    {
        if (status == MessageStatus.None || wamid.IsEmpty)
            return false;
        var key = KeyOf(tenantUtf8, wamid);
        var session = _store.Sessions.Rent();
        try
        {
            KvSession.Read(session, ref key, out var state);
            var stale = state.Apply(status, metaUnixSeconds, receivedUnixMs);
            KvSession.Upsert(session, ref key, ref state);
            return stale;
        }
        finally
        {
            _store.Sessions.Return(session);
        }
    }

    /// <summary>
    /// The verdict <see cref="Apply"/> gave this very status webhook (same status and Meta timestamp): whether it was
    /// stale. A read only, for destinations, which see a status after the projections applied it. False when the
    /// state or that entry of its history is no longer kept.
    /// </summary>
    internal bool WasStale(ReadOnlySpan<byte> tenantUtf8, ReadOnlySpan<byte> wamid, MessageStatus status, long metaUnixSeconds)
    {
        if (status == MessageStatus.None || wamid.IsEmpty || !_store.Sessions.Read(KeyOf(tenantUtf8, wamid), out var state))
            return false;
        for (var i = 0; i < state.HistoryCount; i++)
        {
            var seen = state.HistoryAt(i);
            if (seen.Status == status && seen.MetaUnixSeconds == metaUnixSeconds)
                return seen.Stale;
        }
        return false;
    }

    /// <summary>The state of <paramref name="wamid"/> as reported to <paramref name="tenant"/>, or null if none is known.</summary>
    public MessageDelivery? Find(string tenant, string wamid)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        ArgumentNullException.ThrowIfNull(wamid);
        if (!_store.Sessions.Read(KeyOf(Encoding.UTF8.GetBytes(tenant), Encoding.UTF8.GetBytes(wamid)), out var state))
            return null;
        var history = new StatusChange[state.HistoryCount];
        for (var i = 0; i < history.Length; i++)
            history[i] = state.HistoryAt(i);
        return new MessageDelivery(tenant, wamid, state.Status, state.MetaUnixSeconds, state.Changes, history);
    }

    /// <summary>Cuts records past the TTL, then takes a full (fold-over) checkpoint.</summary>
    /// <exception cref="InvalidOperationException">FASTER refused the checkpoint.</exception>
    public Task CheckpointAsync(CancellationToken cancellationToken = default)
        => _store.CheckpointAsync(cancellationToken);

    /// <summary>Disposes the sessions and the store (checkpoint first to keep recent states).</summary>
    public void Dispose() => _store.Dispose();
}
