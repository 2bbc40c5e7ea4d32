namespace FastIngest.Tests.Support;

/// <summary>Reads one series out of <c>/metrics</c> (Prometheus text format).</summary>
internal static class MetricsText
{
    /// <summary>The value of <paramref name="name"/> with exactly <paramref name="labels"/> (e.g. <c>tenant="t1"</c>; null for none); fails the test when the series is missing.</summary>
    public static double Value(string text, string name, string? labels)
    {
        var line = text.Split('\n').FirstOrDefault(l => l.StartsWith(labels is null ? name + " " : name + "{" + labels + "}", StringComparison.Ordinal));
        Assert.True(line is not null, $"no {name}{{{labels}}} in:\n{text}");
        return double.Parse(line![(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }
}
