namespace FastIngest.Load;

/// <summary>Exact percentiles over recorded samples (sorted once at the end).</summary>
internal static class Percentiles
{
    public static double At(long[] sorted, double quantile)
    {
        if (sorted.Length == 0)
            return 0;
        var rank = (int)Math.Ceiling(quantile * sorted.Length) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Length - 1)];
    }
}

/// <summary>Latency samples in microseconds, appended from many tasks.</summary>
internal sealed class LatencyRecorder
{
    private readonly List<long> _samples = new(1 << 20);

    public void Add(long micros)
    {
        lock (_samples)
            _samples.Add(micros);
    }

    public long[] Sorted()
    {
        lock (_samples)
        {
            var a = _samples.ToArray();
            Array.Sort(a);
            return a;
        }
    }
}
