namespace FastIngest.Internal;

/// <summary>
/// FNV-1a, the non-cryptographic hash of bytes the project uses where a fast, stable spread is enough (hash-table
/// slots, ordering keys, a torn-record check): 32 bits (offset basis 2166136261, prime 16777619) and 64 bits (offset
/// basis 14695981039346656037, prime 1099511628211).
/// </summary>
internal static class Fnv1a
{
    /// <summary>FNV-1a 32 of <paramref name="bytes"/>.</summary>
    public static uint Hash32(ReadOnlySpan<byte> bytes)
    {
        var hash = 2166136261u;
        foreach (var b in bytes)
            hash = (hash ^ b) * 16777619u;
        return hash;
    }

    /// <summary>FNV-1a 64 of <paramref name="bytes"/>.</summary>
    public static ulong Hash64(ReadOnlySpan<byte> bytes)
    {
        var hash = 14695981039346656037ul;
        foreach (var b in bytes)
            hash = (hash ^ b) * 1099511628211ul;
        return hash;
    }
}
