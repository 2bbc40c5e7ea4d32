using System.Threading.Tasks.Sources;

namespace FastIngest.Storage;

/// <summary>
/// Requests waiting for the log to commit up to their record. Each wait is a pooled
/// <see cref="IValueTaskSource"/>, so awaiting a commit allocates nothing; the commit thread completes every
/// waiter its flush covered, and continuations run on the thread pool, never on the commit thread.
/// </summary>
internal sealed class CommitWaiters
{
    private readonly Func<long> _committedUntil;
    private readonly List<Waiter> _pending = new(256);
    private readonly Stack<Waiter> _pool = new(256);
    private Exception? _failure;

    public CommitWaiters(Func<long> committedUntil) => _committedUntil = committedUntil;

    public int Pending
    {
        get
        {
            lock (_pending)
                return _pending.Count;
        }
    }

    /// <summary>Completes when the record at <paramref name="address"/> is committed, or faults with the commit failure.</summary>
    public ValueTask WaitAsync(long address)
    {
        Waiter waiter;
        lock (_pending)
        {
            if (_failure is { } failure)
                return ValueTask.FromException(failure);
            // Read under the lock that Complete takes, after FASTER moved the committed address: no waiter is missed.
            if (_committedUntil() > address)
                return ValueTask.CompletedTask;
            waiter = _pool.Count > 0 ? _pool.Pop() : new Waiter(this);
            waiter.Address = address;
            _pending.Add(waiter);
        }
        return new ValueTask(waiter, waiter.Version);
    }

    /// <summary>Completes every waiter below the committed address. Called by the commit thread after each flush.</summary>
    public void Complete()
    {
        var committed = _committedUntil();
        lock (_pending)
        {
            for (var i = _pending.Count - 1; i >= 0; i--)
            {
                var w = _pending[i];
                if (w.Address >= committed)
                    continue;
                _pending[i] = _pending[^1];
                _pending.RemoveAt(_pending.Count - 1);
                w.SetResult();
            }
        }
    }

    /// <summary>Faults every waiter, now and later.</summary>
    public void Fail(Exception failure)
    {
        lock (_pending)
        {
            _failure ??= failure;
            foreach (var w in _pending)
                w.SetException(failure);
            _pending.Clear();
        }
    }

    private void Return(Waiter waiter)
    {
        lock (_pending)
        {
            if (_pool.Count < 4096)
                _pool.Push(waiter);
        }
    }

    private sealed class Waiter(CommitWaiters owner) : IValueTaskSource
    {
        private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };

        public long Address;

        public short Version => _core.Version;

        public void SetResult() => _core.SetResult(true);

        public void SetException(Exception e) => _core.SetException(e);

        public void GetResult(short token)
        {
            try
            {
                _core.GetResult(token);
            }
            finally
            {
                _core.Reset();
                owner.Return(this);
            }
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
            => _core.OnCompleted(continuation, state, token, flags);
    }
}
