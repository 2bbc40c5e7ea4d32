using System.Threading.Tasks.Sources;

namespace FastIngest.Storage;

/// <summary>
/// Requests waiting for the log to commit up to their record. Each wait is a pooled
/// <see cref="IValueTaskSource"/>, so awaiting a commit allocates nothing. The commit thread completes every waiter
/// its flush covered and runs their continuations itself, one after another, outside the lock (the next flush is
/// already on its way by then): handing each to the thread pool instead cost a queued work item and often a worker
/// wake-up per request, measured at ~7 % of throughput. A continuation is the rest of a request (set the status, let
/// Kestrel write the response), which never blocks.
/// </summary>
internal sealed class CommitWaiters
{
    private readonly Func<long> _committedUntil;
    private readonly List<Waiter> _pending = new(256);
    private readonly Stack<Waiter> _pool = new(256);
    private readonly List<Waiter> _due = new(256);
    private Exception? _failure;

    public CommitWaiters(Func<long> committedUntil) => _committedUntil = committedUntil;

    private long _continuationBytes;

    /// <summary>
    /// Bytes allocated by the waiters' continuations (the rest of each request after its commit), which run on the
    /// commit thread: the allocation gate adds them to what the request allocated before it waited.
    /// </summary>
    public long ContinuationBytes => Volatile.Read(ref _continuationBytes);

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

    /// <summary>
    /// Completes every waiter below the committed address, running their continuations on the calling thread.
    /// Called by the commit thread only (it owns the list of due waiters).
    /// </summary>
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
                _due.Add(w);
            }
        }
        // Outside the lock: a continuation may start the connection's next request, which waits here again.
        var before = GC.GetAllocatedBytesForCurrentThread();
        foreach (var w in _due)
            w.SetResult();
        _due.Clear();
        _continuationBytes += GC.GetAllocatedBytesForCurrentThread() - before;
    }

    /// <summary>Faults every waiter, now and later. Their continuations run on the thread pool.</summary>
    public void Fail(Exception failure)
    {
        Waiter[] failed;
        lock (_pending)
        {
            _failure ??= failure;
            failed = [.. _pending];
            _pending.Clear();
        }
        foreach (var w in failed)
            ThreadPool.UnsafeQueueUserWorkItem(static state => state.w.SetException(state.failure), (w, failure), preferLocal: false);
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
        private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = false };

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
