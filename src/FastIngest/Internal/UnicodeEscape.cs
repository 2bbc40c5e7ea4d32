using System.Buffers;
using System.Text;

namespace FastIngest.Internal;

/// <summary>
/// The "escaped unicode version" of a UTF-8 payload that Meta computes <c>X-Hub-Signature-256</c> over (Meta's Graph
/// API webhooks docs, "Getting Started", Validating Payloads: "with lowercase hex digits"; <c>äöå</c> becomes
/// <c>\u00e4\u00f6\u00e5</c>): every non-ASCII character as <c>\uXXXX</c> with lowercase hex, one escape per UTF-16
/// code unit (a surrogate pair for characters past the BMP), every ASCII byte as it is. This is also what
/// whatsapp-api-js's <c>escapeUnicode</c> does before it verifies.
/// </summary>
internal static class UnicodeEscape
{
    /// <summary>Most bytes <see cref="Escape"/> writes for <paramref name="utf8Length"/> input bytes (6 per byte).</summary>
    public static int MaxEscapedLength(int utf8Length) => checked(utf8Length * 6);

    /// <summary>True when <paramref name="utf8"/> holds a byte over 0x7F.</summary>
    public static bool HasNonAscii(ReadOnlySpan<byte> utf8) => !Ascii.IsValid(utf8);

    /// <summary>
    /// Writes the escaped form of <paramref name="utf8"/> to <paramref name="destination"/> (at least
    /// <see cref="MaxEscapedLength"/> bytes) and returns its length. Invalid UTF-8 becomes <c>\ufffd</c>.
    /// </summary>
    public static int Escape(ReadOnlySpan<byte> utf8, Span<byte> destination)
    {
        var n = 0;
        for (var i = 0; i < utf8.Length; i++)
        {
            if (utf8[i] < 0x80)
            {
                destination[n++] = utf8[i];
                continue;
            }
            n += EscapeRune(utf8[i..], destination[n..], out var consumed);
            i += consumed - 1;
        }
        return n;
    }

    /// <summary>
    /// Escapes the one non-ASCII character that <paramref name="utf8"/> starts with into <paramref name="destination"/>
    /// (at least 12 bytes); returns the bytes written, and in <paramref name="consumed"/> the input bytes it took.
    /// </summary>
    public static int EscapeRune(ReadOnlySpan<byte> utf8, Span<byte> destination, out int consumed)
    {
        if (Rune.DecodeFromUtf8(utf8, out var rune, out consumed) != OperationStatus.Done)
            rune = Rune.ReplacementChar;
        consumed = Math.Max(consumed, 1);
        Span<char> units = stackalloc char[2];
        var count = rune.EncodeToUtf16(units);
        var n = 0;
        for (var u = 0; u < count; u++)
        {
            var c = units[u];
            destination[n++] = (byte)'\\';
            destination[n++] = (byte)'u';
            destination[n++] = HexDigit(c >> 12);
            destination[n++] = HexDigit((c >> 8) & 0xF);
            destination[n++] = HexDigit((c >> 4) & 0xF);
            destination[n++] = HexDigit(c & 0xF);
        }
        return n;
    }

    private static byte HexDigit(int nibble) => (byte)(nibble < 10 ? '0' + nibble : 'a' + nibble - 10);
}
