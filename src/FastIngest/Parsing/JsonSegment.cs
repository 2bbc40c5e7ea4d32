using System.Runtime.CompilerServices;
using System.Text.Json;

namespace FastIngest.Parsing;

/// <summary>The JSON token kind a <see cref="JsonSegment"/> covers.</summary>
public enum JsonSegmentKind : byte
{
    /// <summary>The property was absent from the payload.</summary>
    None = 0,
    /// <summary>A string without escape sequences; the raw bytes inside the quotes are its UTF-8 value.</summary>
    String,
    /// <summary>A string holding at least one escape sequence (<c>\uXXXX</c>, <c>\"</c>, ...); unescape before use.</summary>
    EscapedString,
    /// <summary>A JSON number.</summary>
    Number,
    /// <summary>A JSON object, braces included.</summary>
    Object,
    /// <summary>A JSON array, brackets included.</summary>
    Array,
    /// <summary>The literal <c>true</c>.</summary>
    True,
    /// <summary>The literal <c>false</c>.</summary>
    False,
    /// <summary>The literal <c>null</c>.</summary>
    Null,
}

/// <summary>
/// A slice of the request body: the raw bytes of one JSON token, as received (strings keep their quotes and escapes).
/// Offsets are in bytes from the start of the body the parser ran on; a segment means nothing without that body.
/// </summary>
public readonly struct JsonSegment : IEquatable<JsonSegment>
{
    /// <summary>Byte offset of the token's first byte (the opening quote, brace or bracket).</summary>
    public readonly int Start;

    /// <summary>Length of the raw token in bytes, delimiters included.</summary>
    public readonly int Length;

    /// <summary>What the token is; <see cref="JsonSegmentKind.None"/> when the property was absent.</summary>
    public readonly JsonSegmentKind Kind;

    /// <summary>Creates a segment over <paramref name="length"/> bytes at <paramref name="start"/>.</summary>
    public JsonSegment(int start, int length, JsonSegmentKind kind)
    {
        Start = start;
        Length = length;
        Kind = kind;
    }

    /// <summary>True when the property was present in the payload (even if JSON <c>null</c>).</summary>
    public bool IsPresent => Kind != JsonSegmentKind.None;

    /// <summary>True for strings, escaped or not.</summary>
    public bool IsString => Kind is JsonSegmentKind.String or JsonSegmentKind.EscapedString;

    /// <summary>The raw token bytes, delimiters included; empty when absent.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<byte> Raw(ReadOnlySpan<byte> body) => Kind == JsonSegmentKind.None ? default : body.Slice(Start, Length);

    /// <summary>
    /// For an unescaped string: the UTF-8 bytes between the quotes. For a number: its digits.
    /// Empty for anything else; call <see cref="TryGetUtf8"/> to unescape escaped strings.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<byte> RawValue(ReadOnlySpan<byte> body) => Kind switch
    {
        JsonSegmentKind.String => body.Slice(Start + 1, Length - 2),
        JsonSegmentKind.Number => body.Slice(Start, Length),
        _ => default,
    };

    /// <summary>
    /// Writes the value of a string (unescaped) or number (its digits) into <paramref name="destination"/>.
    /// Returns false when the segment is neither, or when <paramref name="destination"/> is too small.
    /// </summary>
    public bool TryGetUtf8(ReadOnlySpan<byte> body, Span<byte> destination, out int written)
    {
        switch (Kind)
        {
            case JsonSegmentKind.String:
            case JsonSegmentKind.Number:
                var raw = RawValue(body);
                written = raw.Length;
                return raw.TryCopyTo(destination);
            case JsonSegmentKind.EscapedString:
                // Reading the token again is the one unescape that the BCL offers without allocating.
                var reader = new Utf8JsonReader(body.Slice(Start, Length));
                reader.Read();
                try
                {
                    written = reader.CopyString(destination);
                    return true;
                }
                catch (ArgumentException)
                {
                    written = 0;
                    return false;
                }
            default:
                written = 0;
                return false;
        }
    }

    /// <summary>The value as a .NET string (allocates: for tests, logs and the dispatch path, not ingest).</summary>
    public string? GetString(ReadOnlySpan<byte> body)
    {
        switch (Kind)
        {
            case JsonSegmentKind.String:
            case JsonSegmentKind.Number:
                return System.Text.Encoding.UTF8.GetString(RawValue(body));
            case JsonSegmentKind.EscapedString:
                var reader = new Utf8JsonReader(body.Slice(Start, Length));
                reader.Read();
                return reader.GetString();
            case JsonSegmentKind.True:
                return "true";
            case JsonSegmentKind.False:
                return "false";
            default:
                return null;
        }
    }

    /// <summary>True when the value (unescaped) equals <paramref name="utf8"/>.</summary>
    public bool ValueEquals(ReadOnlySpan<byte> body, ReadOnlySpan<byte> utf8)
    {
        if (Kind is JsonSegmentKind.String or JsonSegmentKind.Number)
            return RawValue(body).SequenceEqual(utf8);
        if (Kind != JsonSegmentKind.EscapedString)
            return false;
        var reader = new Utf8JsonReader(body.Slice(Start, Length));
        reader.Read();
        return reader.ValueTextEquals(utf8);
    }

    /// <summary>True when both segments hold the same value (compared unescaped when either is escaped).</summary>
    public static bool ValuesEqual(ReadOnlySpan<byte> body, in JsonSegment a, in JsonSegment b)
    {
        if (!a.IsPresent || !b.IsPresent)
            return false;
        if (a.Kind == JsonSegmentKind.EscapedString)
        {
            Span<byte> scratch = stackalloc byte[256];
            return a.TryGetUtf8(body, scratch, out var n) && b.ValueEquals(body, scratch[..n]);
        }
        if (a.Kind is JsonSegmentKind.String or JsonSegmentKind.Number)
            return b.ValueEquals(body, a.RawValue(body));
        return false;
    }

    /// <inheritdoc/>
    public bool Equals(JsonSegment other) => Start == other.Start && Length == other.Length && Kind == other.Kind;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is JsonSegment s && Equals(s);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Start, Length, Kind);

    /// <summary>Segment equality.</summary>
    public static bool operator ==(JsonSegment left, JsonSegment right) => left.Equals(right);

    /// <summary>Segment inequality.</summary>
    public static bool operator !=(JsonSegment left, JsonSegment right) => !left.Equals(right);

    /// <inheritdoc/>
    public override string ToString() => $"{Kind}@{Start}+{Length}";
}
