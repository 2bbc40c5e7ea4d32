namespace FastIngest.Internal;

/// <summary>
/// Lets a repeated log line through at most once per <paramref name="interval"/> per key (e.g. tenant and status),
/// counting what it held back so the next line can say how many were suppressed. For lines a client can trigger at
/// will (rejections), so a flood of bad requests cannot flood the log. Thread-safe; time from the
/// <see cref="TimeProvider"/>.
/// </summary>
internal sealed class LogThrottle(TimeSpan interval, TimeProvider time)
{
    private readonly object _gate = new();
    private readonly Dictionary<(string, int), (long NextUnixMs, long Suppressed)> _keys = [];

    /// <summary>
    /// True when the line for (<paramref name="name"/>, <paramref name="code"/>) may be written now; then
    /// <paramref name="suppressed"/> is how many were held back since the last one written.
    /// </summary>
    public bool ShouldLog(string name, int code, out long suppressed)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        lock (_gate)
        {
            _keys.TryGetValue((name, code), out var state);
            if (now < state.NextUnixMs)
            {
                _keys[(name, code)] = (state.NextUnixMs, state.Suppressed + 1);
                suppressed = 0;
                return false;
            }
            if (_keys.Count > 10_000)
                _keys.Clear(); // bounded: keys are tenants x statuses in practice
            _keys[(name, code)] = (now + (long)interval.TotalMilliseconds, 0);
            suppressed = state.Suppressed;
            return true;
        }
    }
}
