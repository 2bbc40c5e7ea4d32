namespace FastIngest.Internal;

/// <summary>
/// Runs cold, blocking work (hashing checkpoint files, fsyncs, directory deletes) on a thread of its own instead of a
/// thread-pool thread. The server may run on one core, where the pool has a single worker: 60-80 ms of file reads on
/// it (a checkpoint's manifest hashing 56 MB of index files) held every request queued behind it for that long (perf,
/// <c>bench/RESULTS.md</c> session 10). On a thread of its own the same work is time-sliced with the requests by the
/// kernel's scheduler.
/// </summary>
internal static class OffPool
{
    /// <summary>
    /// Runs <paramref name="work"/> on a new dedicated thread; the task completes with its result or its exception.
    /// A thread per call: for work done at most a few times a minute, never per request.
    /// </summary>
    public static Task RunAsync(Action work)
        => Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);
}
