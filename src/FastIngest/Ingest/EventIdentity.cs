using System.Security.Cryptography;
using FastIngest.Parsing;
using FastIngest.Storage;

namespace FastIngest.Ingest;

/// <summary>
/// The deterministic id of an event, the same on every delivery of it, which makes it the idempotency key for
/// dedupe and the <c>X-FastIngest-Event-Id</c> header for the bot. ASCII text, at most <see cref="MaxLength"/> bytes:
/// <list type="bullet">
/// <item><c>msg:{wamid}</c> for a message;</item>
/// <item><c>status:{wamid}:{status}</c> for a status (so sent, delivered and read of one wamid are three events);</item>
/// <item><c>change:{field}:{hash}</c> for any other change, <c>hash</c> being the first 32 lowercase hex digits of
/// SHA-256(field name, a zero byte, SHA-256(raw bytes of the change's <c>value</c>), SHA-256(<c>entry[].id</c>),
/// SHA-256(<c>entry[].time</c>)), the two entry fields as the raw bytes of their values (empty when absent). A change's value often carries
/// no time of its own (a template's <c>APPROVED</c>, <c>PAUSED</c>, <c>APPROVED</c> again are equal values), so the
/// entry's WABA id and time are what tell two genuine changes apart; Meta's Graph API webhooks docs ("Getting
/// Started", Event Notifications) give <c>entry[].time</c> without saying whether a redelivery keeps it. If a
/// redelivery carried a new time it would be forwarded a second time under a second id (never dropped); two equal
/// changes of one WABA within the same second remain one event.</item>
/// <item><c>msg:#{hash}</c> / <c>status:#{hash}</c> (SHA-256 of the raw message or status object) when Meta sent no id
/// or status, or an id too long to use.</item>
/// </list>
/// </summary>
public static class EventIdentity
{
    /// <summary>Longest id written, in bytes.</summary>
    public const int MaxLength = 256;

    private const int HashHexLength = 32;
    private const int MaxWamidLength = 200;

    /// <summary>
    /// Writes the id of <paramref name="e"/> (parsed from <paramref name="body"/>) into <paramref name="destination"/>
    /// (at least <see cref="MaxLength"/> bytes) and returns its length in bytes. Allocation-free.
    /// </summary>
    public static int Write(ReadOnlySpan<byte> body, in WebhookEvent e, Span<byte> destination)
    {
        switch (e.Kind)
        {
            case WebhookEventKind.Message:
            {
                "msg:"u8.CopyTo(destination);
                if (TryCopyValue(body, e.Id, destination[4..MaxWamidLength], out var n))
                    return 4 + n;
                return 4 + WriteHash(e.Item.Raw(body), destination[4..]);
            }
            case WebhookEventKind.Status:
            {
                "status:"u8.CopyTo(destination);
                if (TryCopyValue(body, e.Id, destination[7..MaxWamidLength], out var n)
                    && e.Status.IsPresent)
                {
                    var at = 7 + n;
                    destination[at++] = (byte)':';
                    if (TryCopyValue(body, e.Status, destination[at..MaxLength], out var s))
                        return at + s;
                }
                return 7 + WriteHash(e.Item.Raw(body), destination[7..]);
            }
            default:
            {
                "change:"u8.CopyTo(destination);
                var at = 7;
                Span<byte> field = stackalloc byte[64];
                if (!TryCopyValue(body, e.Field, field, out var f))
                    f = 0;
                field = field[..f];
                if (f > 0)
                {
                    field.CopyTo(destination[at..]);
                    at += f;
                }
                destination[at++] = (byte)':';
                return at + WriteChangeHash(field, e.Value.Raw(body), e.EntryId.RawValue(body), e.EntryTime.RawValue(body), destination[at..]);
            }
        }
    }

    /// <summary>
    /// The 16-byte dedupe key of an event id within a tenant: the first 16 bytes of SHA-256(tenant, 0, id).
    /// Tenants never share keys, so the same wamid delivered to two tenants is two events.
    /// </summary>
    public static DedupeKey Key(ReadOnlySpan<byte> tenantUtf8, ReadOnlySpan<byte> eventId)
    {
        Span<byte> input = stackalloc byte[tenantUtf8.Length + 1 + eventId.Length];
        tenantUtf8.CopyTo(input);
        input[tenantUtf8.Length] = 0;
        eventId.CopyTo(input[(tenantUtf8.Length + 1)..]);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(input, hash);
        return DedupeKey.FromBytes(hash);
    }

    private static bool TryCopyValue(ReadOnlySpan<byte> body, in JsonSegment value, Span<byte> destination, out int written)
    {
        if (!value.IsString || !value.TryGetUtf8(body, destination, out written) || written == 0 || !IsPlainAscii(destination[..written]))
        {
            written = 0;
            return false;
        }
        return true;
    }

    /// <summary>Printable ASCII without ':' keeps ids unambiguous and safe in an HTTP header.</summary>
    private static bool IsPlainAscii(ReadOnlySpan<byte> s)
    {
        foreach (var b in s)
        {
            if (b is < 0x21 or > 0x7E or (byte)':')
                return false;
        }
        return true;
    }

    /// <summary>
    /// SHA-256(field, 0, SHA-256(value), SHA-256(entry id), SHA-256(entry time)) as hex: one-shot hashes over a stack
    /// buffer, no incremental hasher to allocate.
    /// </summary>
    private static int WriteChangeHash(ReadOnlySpan<byte> field, ReadOnlySpan<byte> value, ReadOnlySpan<byte> entryId, ReadOnlySpan<byte> entryTime, Span<byte> destination)
    {
        const int H = SHA256.HashSizeInBytes;
        Span<byte> outer = stackalloc byte[field.Length + 1 + 3 * H];
        field.CopyTo(outer);
        outer[field.Length] = 0;
        var at = field.Length + 1;
        SHA256.HashData(value, outer.Slice(at, H));
        SHA256.HashData(entryId, outer.Slice(at + H, H));
        SHA256.HashData(entryTime, outer.Slice(at + 2 * H, H));
        Span<byte> hash = stackalloc byte[H];
        SHA256.HashData(outer, hash);
        return WriteHex(hash, destination);
    }

    private static int WriteHash(ReadOnlySpan<byte> raw, Span<byte> destination)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(raw, hash);
        destination[0] = (byte)'#';
        return 1 + WriteHex(hash, destination[1..]);
    }

    private static int WriteHex(ReadOnlySpan<byte> hash, Span<byte> destination)
    {
        var at = 0;
        for (var i = 0; i < HashHexLength / 2; i++)
        {
            destination[at++] = HexDigit(hash[i] >> 4);
            destination[at++] = HexDigit(hash[i] & 0xF);
        }
        return at;
    }

    private static byte HexDigit(int nibble) => (byte)(nibble < 10 ? '0' + nibble : 'a' + nibble - 10);
}
