namespace FastIngest.Tests.Support;

/// <summary>Finds the repository root and the shared Meta webhook corpus beside it.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    /// <summary>
    /// <c>../shared/corpus/meta-webhooks</c> next to the clone (or <c>FASTINGEST_CORPUS</c>); null when it is not there.
    /// </summary>
    public static string? Corpus { get; } = FindCorpus();

    public static string Fixtures => Path.Combine(AppContext.BaseDirectory, "Fixtures");

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "FastIngest.sln")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("FastIngest.sln not found above " + AppContext.BaseDirectory);
    }

    private static string? FindCorpus()
    {
        var env = Environment.GetEnvironmentVariable("FASTINGEST_CORPUS");
        if (!string.IsNullOrEmpty(env) && Directory.Exists(env))
            return env;
        var dir = new DirectoryInfo(Root);
        for (var up = dir.Parent; up is not null; up = up.Parent)
        {
            var candidate = Path.Combine(up.FullName, "shared", "corpus", "meta-webhooks");
            if (File.Exists(Path.Combine(candidate, "SOURCES.md")))
                return candidate;
        }
        return null;
    }
}
