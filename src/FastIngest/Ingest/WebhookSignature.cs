using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace FastIngest.Ingest;

/// <summary>Outcome of checking an <c>X-Hub-Signature-256</c> header.</summary>
public enum SignatureCheck : byte
{
    /// <summary>The header is <c>sha256=</c> plus the HMAC-SHA256 of the exact body under the app secret.</summary>
    Valid = 0,
    /// <summary>No header.</summary>
    Missing,
    /// <summary>The header is there more than once.</summary>
    Duplicated,
    /// <summary>Not <c>sha256=</c> followed by 64 hex digits.</summary>
    Malformed,
    /// <summary>Well-formed, but not the HMAC of this body under this secret.</summary>
    Mismatch,
}

/// <summary>
/// <c>X-Hub-Signature-256</c>, as Meta signs webhook deliveries (Meta, "Webhooks: Getting Started", section
/// "Validate Payloads"): <c>sha256=</c> followed by the lowercase hex HMAC-SHA256 of the raw request body,
/// keyed by the app secret. Verified on stack buffers and compared in constant time.
/// </summary>
public static class WebhookSignature
{
    /// <summary>The header name.</summary>
    public const string HeaderName = "X-Hub-Signature-256";

    /// <summary>Length of a header value in characters: <c>sha256=</c> and 64 hex digits.</summary>
    public const int HeaderValueLength = 7 + 2 * HMACSHA256.HashSizeInBytes;

    private const string Prefix = "sha256=";

    /// <summary>
    /// Checks <paramref name="header"/> against the HMAC-SHA256 of <paramref name="body"/> under <paramref name="secret"/>.
    /// Allocation-free; the comparison takes the same time wherever the first differing byte is.
    /// </summary>
    public static SignatureCheck Verify(ReadOnlySpan<char> header, ReadOnlySpan<byte> secret, ReadOnlySpan<byte> body)
    {
        Span<byte> claimed = stackalloc byte[HMACSHA256.HashSizeInBytes];
        var form = ParseHeader(header, claimed);
        if (form != SignatureCheck.Valid)
            return form;
        Span<byte> actual = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(secret, body, actual);
        return CryptographicOperations.FixedTimeEquals(claimed, actual) ? SignatureCheck.Valid : SignatureCheck.Mismatch;
    }

    /// <summary>
    /// Same as <see cref="Verify(ReadOnlySpan{char}, ReadOnlySpan{byte}, ReadOnlySpan{byte})"/> with an HMAC-SHA256
    /// already keyed by the secret (<see cref="IncrementalHash.CreateHMAC(HashAlgorithmName, byte[])"/>), reused across
    /// calls on one thread: about half the cost of a one-shot HMAC, which sets up a new context every time.
    /// </summary>
    public static SignatureCheck Verify(ReadOnlySpan<char> header, IncrementalHash keyedHmac, ReadOnlySpan<byte> body)
    {
        ArgumentNullException.ThrowIfNull(keyedHmac);
        Span<byte> claimed = stackalloc byte[HMACSHA256.HashSizeInBytes];
        var form = ParseHeader(header, claimed);
        if (form != SignatureCheck.Valid)
            return form;
        Span<byte> actual = stackalloc byte[HMACSHA256.HashSizeInBytes];
        keyedHmac.AppendData(body);
        keyedHmac.GetHashAndReset(actual);
        return CryptographicOperations.FixedTimeEquals(claimed, actual) ? SignatureCheck.Valid : SignatureCheck.Mismatch;
    }

    /// <summary>
    /// As <see cref="Verify(ReadOnlySpan{char}, IncrementalHash, ReadOnlySpan{byte})"/>, and, for a body with non-ASCII
    /// bytes whose raw bytes do not match, again over its escaped unicode form (<see cref="Internal.UnicodeEscape"/>),
    /// which is what Meta's docs say it signs: a signature over either form, under the secret, is valid. The second
    /// HMAC is only computed for such bodies, on a buffer rented from the array pool.
    /// </summary>
    public static SignatureCheck VerifyRawOrEscaped(ReadOnlySpan<char> header, IncrementalHash keyedHmac, ReadOnlySpan<byte> body)
    {
        var check = Verify(header, keyedHmac, body);
        if (check != SignatureCheck.Mismatch || !Internal.UnicodeEscape.HasNonAscii(body))
            return check;
        var escaped = ArrayPool<byte>.Shared.Rent(Internal.UnicodeEscape.MaxEscapedLength(body.Length));
        try
        {
            var length = Internal.UnicodeEscape.Escape(body, escaped);
            return Verify(header, keyedHmac, escaped.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(escaped);
        }
    }

    /// <summary>Decodes <c>sha256=</c> and 64 hex digits into <paramref name="claimed"/>; Valid means well-formed.</summary>
    private static SignatureCheck ParseHeader(ReadOnlySpan<char> header, Span<byte> claimed)
    {
        if (header.IsEmpty)
            return SignatureCheck.Missing;
        header = header.Trim();
        if (header.Length != HeaderValueLength || !header.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
            return SignatureCheck.Malformed;
        if (Convert.FromHexString(header[Prefix.Length..], claimed, out _, out var written) != OperationStatus.Done
            || written != claimed.Length)
            return SignatureCheck.Malformed;
        return SignatureCheck.Valid;
    }

    /// <summary>
    /// Writes the header value for <paramref name="body"/> signed with <paramref name="secret"/> into
    /// <paramref name="destination"/> (at least <see cref="HeaderValueLength"/> chars). Returns the chars written.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="HeaderValueLength"/>.</exception>
    public static int Sign(ReadOnlySpan<byte> secret, ReadOnlySpan<byte> body, Span<char> destination)
    {
        if (destination.Length < HeaderValueLength)
            throw new ArgumentException($"needs {HeaderValueLength} chars", nameof(destination));
        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(secret, body, mac);
        Prefix.CopyTo(destination);
        Convert.TryToHexStringLower(mac, destination[Prefix.Length..], out var hexChars);
        return Prefix.Length + hexChars;
    }

    /// <summary>The header value for <paramref name="body"/> signed with <paramref name="secret"/>, as a string.</summary>
    public static string Sign(ReadOnlySpan<byte> secret, ReadOnlySpan<byte> body)
    {
        Span<char> chars = stackalloc char[HeaderValueLength];
        return new string(chars[..Sign(secret, body, chars)]);
    }

    /// <summary>The header value for <paramref name="body"/> signed with the UTF-8 bytes of <paramref name="secret"/>.</summary>
    public static string Sign(string secret, ReadOnlySpan<byte> body) => Sign(Encoding.UTF8.GetBytes(secret), body);
}
