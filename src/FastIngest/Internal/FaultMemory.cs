namespace FastIngest.Internal;

/// <summary>
/// What a supervised loop's owner remembers of its faults (see <see cref="Supervised"/>): how many since start, and
/// the last one while it is recent enough for <c>/readyz</c> to show it.
/// </summary>
internal sealed class FaultMemory(TimeProvider time)
{
    /// <summary>How long <c>/readyz</c> shows a fault after it happened: 5 minutes.</summary>
    public static readonly TimeSpan VisibleFor = TimeSpan.FromMinutes(5);

    private sealed record Last(long AtUnixMs, string What);

    private long _count;
    private Last? _last;

    /// <summary>Faults since start.</summary>
    public long Count => Interlocked.Read(ref _count);

    /// <summary>Counts a fault of <paramref name="where"/> (a role: reader, worker, ...) and remembers it.</summary>
    public void Record(string where, Exception ex)
    {
        Interlocked.Increment(ref _count);
        Volatile.Write(ref _last, new Last(time.GetUtcNow().ToUnixTimeMilliseconds(), $"{where}: {ex.GetType().Name}: {ex.Message}"));
    }

    /// <summary>
    /// "{n} {<paramref name="what"/>}, last {s} s ago: {role}: {exception}" while the last fault is less than
    /// <see cref="VisibleFor"/> old; null otherwise.
    /// </summary>
    public string? Recent(string what)
    {
        if (Volatile.Read(ref _last) is not { } last)
            return null;
        var age = time.GetUtcNow().ToUnixTimeMilliseconds() - last.AtUnixMs;
        return age > VisibleFor.TotalMilliseconds ? null : $"{Count} {what}, last {age / 1000} s ago: {last.What}";
    }
}
