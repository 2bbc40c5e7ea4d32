using FASTER.core;

namespace FastIngest.Storage;

/// <summary>
/// Pooled FASTER sessions of one store (16-byte <see cref="DedupeKey"/> keys, value in = out). A session is
/// single-threaded: rent it, use it synchronously on one thread (never across an await), return it.
/// </summary>
internal sealed class KvSessionPool<TValue> : IDisposable
{
    private readonly FasterKV<DedupeKey, TValue> _kv;
    private readonly Stack<ClientSession<DedupeKey, TValue, TValue, TValue, Empty, SimpleFunctions<DedupeKey, TValue, Empty>>> _sessions = new();

    public KvSessionPool(FasterKV<DedupeKey, TValue> kv) => _kv = kv;

    public ClientSession<DedupeKey, TValue, TValue, TValue, Empty, SimpleFunctions<DedupeKey, TValue, Empty>> Rent()
    {
        lock (_sessions)
        {
            if (_sessions.TryPop(out var s))
                return s;
        }
        return _kv.For(new SimpleFunctions<DedupeKey, TValue, Empty>()).NewSession<SimpleFunctions<DedupeKey, TValue, Empty>>();
    }

    public void Return(ClientSession<DedupeKey, TValue, TValue, TValue, Empty, SimpleFunctions<DedupeKey, TValue, Empty>> session)
    {
        lock (_sessions)
            _sessions.Push(session);
    }

    /// <summary>Reads <paramref name="key"/> on a pooled session (see <see cref="KvSession.Read"/>).</summary>
    public bool Read(DedupeKey key, out TValue value)
    {
        var session = Rent();
        try
        {
            return KvSession.Read(session, ref key, out value);
        }
        finally
        {
            Return(session);
        }
    }

    /// <summary>Disposes the pooled sessions (before the store).</summary>
    public void Dispose()
    {
        lock (_sessions)
        {
            while (_sessions.TryPop(out var s))
                s.Dispose();
        }
    }
}
