namespace FastIngest.Outbound;

/// <summary>Graph API versions in paths: <c>v</c>, 1-3 digits, a dot, 1-2 digits (e.g. <c>v23.0</c>).</summary>
public static class GraphVersions
{
    /// <summary>True for a well-formed version.</summary>
    public static bool IsValid(string? version)
    {
        if (version is not { Length: >= 4 and <= 7 } || version[0] != 'v')
            return false;
        var dot = version.IndexOf('.', StringComparison.Ordinal);
        return dot is >= 2 and <= 4 && dot < version.Length - 1 && version.Length - dot - 1 <= 2
            && version.AsSpan(1, dot - 1).ContainsAnyExceptInRange('0', '9') == false
            && version.AsSpan(dot + 1).ContainsAnyExceptInRange('0', '9') == false;
    }
}
