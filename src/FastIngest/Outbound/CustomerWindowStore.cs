using FastIngest.Ingest;
using FastIngest.Storage;
using Microsoft.Extensions.Logging;

namespace FastIngest.Outbound;

/// <summary>
/// The customer service window: a FASTER KV under <c>DataDir/window/</c> of (tenant, phone_number_id, customer wa_id)
/// → Meta's timestamp of the customer's last inbound message (Unix seconds), fed by the dispatchers with every
/// inbound message they read from the event log, before the message is forwarded to the bot. A free-form message may
/// go to a customer only within <see cref="Window"/> of that time (Meta's "customer service window"; templates may
/// go any time). Checkpointed with the other stores; records untouched for two windows are cut.
/// </summary>
/// <remarks>
/// Each key is written only by its tenant's dispatcher reader (one task), so read-then-upsert needs no lock. After a
/// restart the log is read again from its begin and <see cref="Seen"/> keeps the latest time, so re-reading is harmless.
/// </remarks>
public sealed class CustomerWindowStore : IDisposable
{
    /// <summary>Meta's customer service window: 24 hours from the customer's last message.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromHours(24);

    private readonly TtlKvStore<long> _store;

    /// <summary>Opens (recovering the latest checkpoint) the store in <paramref name="directory"/>.</summary>
    /// <param name="directory">Where its log and checkpoints live.</param>
    /// <param name="indexBytes">Hash index bytes (a power of two).</param>
    /// <param name="memoryBytes">In-memory part of its log (each customer is one 40-byte record).</param>
    /// <param name="time">The clock of the cuts.</param>
    /// <param name="logger">Where cuts are reported.</param>
    public CustomerWindowStore(string directory, long indexBytes, long memoryBytes, TimeProvider time, ILogger logger)
    {
        _store = new TtlKvStore<long>(directory, "customer-window", indexBytes, memoryBytes, 2 * Window, time, logger);
    }

    private static DedupeKey KeyOf(ReadOnlySpan<byte> tenantUtf8, ReadOnlySpan<byte> phoneNumberId, ReadOnlySpan<byte> waId)
    {
        Span<byte> id = stackalloc byte[8 + phoneNumberId.Length + waId.Length];
        "window:"u8.CopyTo(id);
        phoneNumberId.CopyTo(id[7..]);
        id[7 + phoneNumberId.Length] = (byte)':';
        waId.CopyTo(id[(8 + phoneNumberId.Length)..]);
        return EventIdentity.Key(tenantUtf8, id);
    }

    /// <summary>
    /// Records an inbound message of <paramref name="waId"/> to <paramref name="phoneNumberId"/> sent at
    /// <paramref name="metaUnixSeconds"/> (keeps the latest). Synchronous; call from the tenant's dispatcher reader only.
    /// </summary>
    internal void Seen(ReadOnlySpan<byte> tenantUtf8, ReadOnlySpan<byte> phoneNumberId, ReadOnlySpan<byte> waId, long metaUnixSeconds)
    {
        if (waId.IsEmpty || phoneNumberId.IsEmpty || waId.Length > 64 || phoneNumberId.Length > 64 || metaUnixSeconds <= 0)
            return;
        var key = KeyOf(tenantUtf8, phoneNumberId, waId);
        var session = _store.Sessions.Rent();
        try
        {
            if (KvSession.Read(session, ref key, out var last) && last >= metaUnixSeconds)
                return;
            KvSession.Upsert(session, ref key, ref metaUnixSeconds);
        }
        finally
        {
            _store.Sessions.Return(session);
        }
    }

    /// <summary>Meta's timestamp (Unix seconds) of the last inbound message of <paramref name="waId"/> to <paramref name="phoneNumberId"/>, or 0 for none.</summary>
    public long LastInbound(string tenant, string phoneNumberId, string waId)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        ArgumentNullException.ThrowIfNull(phoneNumberId);
        ArgumentNullException.ThrowIfNull(waId);
        var key = KeyOf(System.Text.Encoding.UTF8.GetBytes(tenant), System.Text.Encoding.UTF8.GetBytes(phoneNumberId), System.Text.Encoding.UTF8.GetBytes(waId));
        return _store.Sessions.Read(key, out var last) ? last : 0;
    }

    /// <summary>Cuts records past two windows, then takes a full (fold-over) checkpoint.</summary>
    /// <exception cref="InvalidOperationException">FASTER refused the checkpoint.</exception>
    public Task CheckpointAsync(CancellationToken cancellationToken = default)
        => _store.CheckpointAsync(cancellationToken);

    /// <summary>Disposes the sessions and the store.</summary>
    public void Dispose() => _store.Dispose();
}
