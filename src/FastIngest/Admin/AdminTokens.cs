namespace FastIngest.Admin;

/// <summary>
/// The admin tokens accepted now (<c>FastIngest:AdminToken</c>, then <c>AdminTokens:{n}</c>), each at least 16
/// characters, as <c>Authorization: Bearer {token}</c> on <c>/admin/*</c> and <c>/v1/outbound/{id}</c>. A configuration
/// reload replaces them whole; none configured turns the admin API off (404).
/// </summary>
public sealed class AdminTokens
{
    private volatile Internal.SecretSet? _current;

    /// <summary>Accepts <paramref name="values"/> (none: the admin API is off).</summary>
    public AdminTokens(IReadOnlyList<string> values) => Replace(values);

    /// <summary>The accepted values now, or null while the admin API is off.</summary>
    internal Internal.SecretSet? Current => _current;

    /// <summary>Accepts <paramref name="values"/> from now on, and no other (a reload).</summary>
    public void Replace(IReadOnlyList<string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        _current = values.Count == 0 ? null : new Internal.SecretSet(null, values);
    }

    /// <summary>Whether <paramref name="authorization"/> is <c>Bearer </c> and an accepted token (fixed-time compare).</summary>
    public bool Accepts(string authorization) => _current is { } set && set.IndexOf(authorization, "Bearer ") >= 0;
}
