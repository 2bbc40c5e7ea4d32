namespace FastIngest.Ingest;

/// <summary>
/// The bytes of webhook bodies held in memory at once, over all requests: each request reserves the size of the
/// buffer it reads its body into as that buffer grows with the bytes actually received (never the size a client
/// declares), and gives it back when it is answered. Past <see cref="Limit"/> a reservation fails and the request is
/// answered 503 with <c>Retry-After</c>, so slow or hostile clients cannot run the process out of memory. Lock-free.
/// </summary>
public sealed class BodyBudget(long limit)
{
    private long _used;

    /// <summary><c>FastIngest:MaxInFlightBodyBytes</c>: most body bytes held at once, in bytes.</summary>
    public long Limit { get; } = limit;

    /// <summary>Bytes reserved now.</summary>
    public long Used => Interlocked.Read(ref _used);

    /// <summary>Reserves <paramref name="bytes"/> more; false (nothing reserved) when that would pass <see cref="Limit"/>.</summary>
    public bool TryReserve(long bytes)
    {
        if (Interlocked.Add(ref _used, bytes) <= Limit)
            return true;
        Interlocked.Add(ref _used, -bytes);
        return false;
    }

    /// <summary>Gives back <paramref name="bytes"/> reserved earlier.</summary>
    public void Release(long bytes) => Interlocked.Add(ref _used, -bytes);
}
