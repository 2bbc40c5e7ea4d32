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
/// SHA-256(field name, a zero byte, SHA-256(raw bytes of the change's <c>value</c>));</item>
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
                return 4 + WriteHash(default, e.Item.Raw(body), destination[4..]);
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
                return 7 + WriteHash(default, e.Item.Raw(body), destination[7..]);
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
                return at + WriteHash(field, e.Value.Raw(body), destination[at..]);
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

    private static int WriteHash(ReadOnlySpan<byte> field, ReadOnlySpan<byte> raw, Span<byte> destination)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(raw, hash);
        var at = 0;
        if (field.IsEmpty)
        {
            destination[at++] = (byte)'#';
        }
        else
        {
            // SHA-256(field, 0, SHA-256(value)): two one-shot hashes, no incremental hasher to allocate.
            Span<byte> outer = stackalloc byte[field.Length + 1 + hash.Length];
            field.CopyTo(outer);
            outer[field.Length] = 0;
            hash.CopyTo(outer[(field.Length + 1)..]);
            SHA256.HashData(outer, hash);
        }
        for (var i = 0; i < HashHexLength / 2; i++)
        {
            destination[at++] = HexDigit(hash[i] >> 4);
            destination[at++] = HexDigit(hash[i] & 0xF);
        }
        return at;
    }

    private static byte HexDigit(int nibble) => (byte)(nibble < 10 ? '0' + nibble : 'a' + nibble - 10);
}
