using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace FastIngest.Internal;

/// <summary>
/// The accepted values of one credential (a token, a header value, an app secret) during a rotation: the configured
/// single value first (when set), then the list in order, UTF-8. A presented value is compared with every one in
/// fixed time, so the answer's timing does not tell which one came close.
/// </summary>
internal sealed class SecretSet
{
    private readonly byte[][] _values;

    public SecretSet(string? first, IEnumerable<string?> more) => _values = [.. Values(first, more).Select(Encoding.UTF8.GetBytes)];

    /// <summary>The accepted values, UTF-8, in order (the index is the <c>key_index</c> of the metrics).</summary>
    public IReadOnlyList<byte[]> Utf8 => _values;

    /// <summary>How many values are accepted.</summary>
    public int Count => _values.Length;

    /// <summary><paramref name="first"/> (when set) and then the non-empty values of <paramref name="more"/>.</summary>
    public static string[] Values(string? first, IEnumerable<string?> more)
        => [.. new[] { first }.Concat(more).Where(v => !string.IsNullOrEmpty(v)).Select(v => v!)];

    /// <summary>
    /// The index of the value <paramref name="presented"/> carries after <paramref name="scheme"/> (e.g. <c>"Bearer "</c>),
    /// or -1. Every value is compared, in fixed time; no allocation for values up to 512 bytes.
    /// </summary>
    public int IndexOf(ReadOnlySpan<char> presented, ReadOnlySpan<char> scheme = default)
    {
        if (!presented.StartsWith(scheme, StringComparison.Ordinal))
            return -1;
        presented = presented[scheme.Length..];
        var max = Encoding.UTF8.GetMaxByteCount(presented.Length);
        byte[]? rented = null;
        var given = max <= 512 ? stackalloc byte[512] : (rented = ArrayPool<byte>.Shared.Rent(max));
        try
        {
            var length = Encoding.UTF8.GetBytes(presented, given);
            var match = -1;
            for (var i = 0; i < _values.Length; i++)
            {
                if (CryptographicOperations.FixedTimeEquals(given[..length], _values[i]) && match < 0)
                    match = i;
            }
            return match;
        }
        finally
        {
            if (rented is not null)
                ArrayPool<byte>.Shared.Return(rented);
        }
    }
}
