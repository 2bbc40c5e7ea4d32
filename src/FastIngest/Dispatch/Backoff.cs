namespace FastIngest.Dispatch;

/// <summary>Capped exponential backoff with jitter: attempt n waits a random time in [d/2, d], d = min(max, initial × 2^(n-1)).</summary>
internal static class Backoff
{
    public static TimeSpan Delay(int attempt, TimeSpan initial, TimeSpan max)
    {
        var exponent = Math.Clamp(attempt - 1, 0, 30);
        var ceiling = Math.Min(max.TotalMilliseconds, initial.TotalMilliseconds * Math.Pow(2, exponent));
        var ms = ceiling / 2 + Random.Shared.NextDouble() * ceiling / 2;
        return TimeSpan.FromMilliseconds(ms);
    }
}
