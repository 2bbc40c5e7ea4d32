using FASTER.core;
using Microsoft.Extensions.Logging;

namespace FastIngest.Storage;

/// <summary>
/// An append-only FasterLog in one directory, with group commit driven by one dedicated thread: appenders call
/// <see cref="TryAppend{T}"/> and then await <see cref="WaitForCommitAsync"/>; the commit thread flushes whatever
/// has accumulated, waits for that flush, and starts the next one, so many appends share one flush.
/// </summary>
public sealed class EventLog : IDisposable
{
    private readonly FasterLog _log;
    private readonly SyncFileDevice _device;
    private readonly CommitWaiters _waiters;
    private readonly ManualResetEventSlim _deviceProgress = new(false);
    private long _durableUntil;
    private readonly ILogger _logger;
    private readonly Thread _commitThread;
    private readonly ManualResetEventSlim _commitRequested = new(false);
    private readonly string _name;
    private int _pending;
    private volatile bool _stopping;
    private volatile Exception? _failure;

    /// <summary>
    /// Opens (recovering if present) the log in <paramref name="directory"/>. <paramref name="maxRecordBytes"/> sizes
    /// the pages: a page holds at least one record of that size.
    /// </summary>
    /// <exception cref="IOException">The directory cannot be used.</exception>
    public EventLog(string directory, string name, int maxRecordBytes, long memoryBytes, ILogger logger)
    {
        _name = name;
        _logger = logger;
        Directory.CreateDirectory(directory);
        var pageBits = Math.Max(22, 64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(maxRecordBytes + 4096)));
        var memoryBits = Math.Max(pageBits + 2, 64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)Math.Max(memoryBytes, 1) - 1));
        // Write-through: the group commit is one O_DIRECT | O_DSYNC pwrite, no page-cache copy and no fsync.
        _device = new SyncFileDevice(Path.Combine(directory, "log"), writeThrough: true);
        _log = new FasterLog(new FasterLogSettings
        {
            LogDevice = _device,
            PageSizeBits = pageBits,
            MemorySizeBits = memoryBits,
            SegmentSizeBits = Math.Max(pageBits, 28),
            // Commit metadata files on our device too, so that no FASTER write waits in the thread pool.
            LogCommitManager = new DeviceLogCommitCheckpointManager(new SyncFileDeviceFactory(), new DefaultCheckpointNamingScheme(Path.Combine(directory, "commits")), removeOutdated: true),
            FastCommitMode = true,
            RemoveOutdatedCommits = true,
            TryRecoverLatest = true,
            AutoRefreshSafeTailAddress = false,
        });
        MaxRecordBytes = (1 << pageBits) - 64;
        _durableUntil = _log.CommittedUntilAddress;
        _waiters = new CommitWaiters(() => Volatile.Read(ref _durableUntil));
        _device.BatchCompleted = _deviceProgress.Set;
        _commitThread = new Thread(CommitLoop) { IsBackground = true, Name = $"fastingest-commit-{name}" };
        _commitThread.Start();
    }

    private long _commits;
    private long _commitTicks;

    /// <summary>Where each group commit's latency (issue to durable, seconds) is recorded, if set.</summary>
    public System.Diagnostics.Metrics.Histogram<double>? CommitLatency { get; set; }

    /// <summary>Flushes completed since open (commits that had something to flush).</summary>
    public long Commits => Interlocked.Read(ref _commits);

    /// <summary>Time spent in those flushes, from issue to durable, in ms.</summary>
    public double CommitMilliseconds => Interlocked.Read(ref _commitTicks) * 1000.0 / System.Diagnostics.Stopwatch.Frequency;

    /// <summary>Largest record <see cref="TryAppend{T}"/> takes, in bytes.</summary>
    public int MaxRecordBytes { get; }

    /// <summary>Address of the oldest record kept (records before it were truncated).</summary>
    public long BeginAddress => _log.BeginAddress;

    /// <summary>Address the next record will get.</summary>
    public long TailAddress => _log.TailAddress;

    /// <summary>Every record below this address is on disk and survives a crash.</summary>
    public long CommittedUntilAddress => Math.Max(Volatile.Read(ref _durableUntil), _log.CommittedUntilAddress);

    /// <summary>Set when a commit failed; the log accepts no more durable writes after that.</summary>
    public Exception? Failure => _failure;

    private readonly ManualResetEventSlim _commitsReleased = new(true);

    /// <summary>
    /// Fault injection (tests): no commit is issued until <see cref="ReleaseCommits"/>; appends go on into memory, so
    /// the log on disk is what a process killed at this moment would leave.
    /// </summary>
    internal void HoldCommits() => _commitsReleased.Reset();

    /// <summary>Ends <see cref="HoldCommits"/>.</summary>
    internal void ReleaseCommits() => _commitsReleased.Set();

    /// <summary>Bytes allocated by commit waiters' continuations on the commit thread (see <see cref="CommitWaiters.ContinuationBytes"/>).</summary>
    internal long ContinuationAllocatedBytes => _waiters.ContinuationBytes;

    /// <summary>The device under the log (tests freeze it to make a frozen disk).</summary>
    internal SyncFileDevice Device => _device;

    /// <summary>
    /// Appends <paramref name="record"/> to the in-memory tail and schedules a commit. False when the log's memory
    /// is full of uncommitted data: backpressure; the caller waits for a commit and tries again.
    /// </summary>
    /// <exception cref="InvalidOperationException">The record is larger than <see cref="MaxRecordBytes"/>.</exception>
    public bool TryAppend<T>(T record, out long address) where T : ILogEnqueueEntry
    {
        if (record.SerializedLength > MaxRecordBytes)
            ThrowRecordTooLarge(record.SerializedLength);
        if (!_log.TryEnqueue(record, out address))
        {
            RequestCommit();
            return false;
        }
        RequestCommit();
        return true;
    }

    /// <summary>
    /// Appends <paramref name="record"/>, waiting out backpressure (1 ms steps), and completes once it is committed;
    /// returns its address. For the cold paths (dead letters, replays); the ingest path handles backpressure itself.
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled while the log was full.</exception>
    public async ValueTask<long> AppendDurableAsync<T>(T record, CancellationToken cancellationToken = default) where T : ILogEnqueueEntry
    {
        long address;
        while (!TryAppend(record, out address))
            await Task.Delay(1, cancellationToken).ConfigureAwait(false);
        // Commit waiters resume on the commit thread (the ingest path wants that); a cold-path caller must not: its
        // continuation would hold up every later commit, and disposing the log from there would join its own thread.
        await WaitForCommitAsync(address).ConfigureAwait(false);
        await Task.Yield();
        return address;
    }

    /// <summary>
    /// Completes when the record at <paramref name="address"/> is committed. Throws the commit's failure. The
    /// continuation runs on the commit thread: keep it short and never block or dispose the log there (cold paths use
    /// <see cref="AppendDurableAsync"/>, which moves off it).
    /// </summary>
    public ValueTask WaitForCommitAsync(long address)
    {
        if (Volatile.Read(ref _durableUntil) > address)
            return ValueTask.CompletedTask;
        RequestCommit();
        return _waiters.WaitAsync(address);
    }

    /// <summary>
    /// Commits everything appended so far, and a pending truncation, and waits for it on this thread (shutdown,
    /// tests). Not for the request path: it yields in a loop until the flush is done.
    /// </summary>
    public void CommitAndWait() => _log.Commit(spinWait: true);

    /// <summary>Schedules a commit on the commit thread (idempotent while one is pending).</summary>
    public void RequestCommit()
    {
        if (Interlocked.Exchange(ref _pending, 1) == 0)
            _commitRequested.Set();
    }

    /// <summary>Drops records before <paramref name="address"/> (a record start); takes effect with the next commit.</summary>
    public void TruncateUntil(long address)
    {
        if (address > _log.BeginAddress)
        {
            _log.TruncateUntil(address);
            RequestCommit();
        }
    }

    /// <summary>
    /// An iterator over committed records from <paramref name="from"/> up to <paramref name="until"/> (exclusive;
    /// <see cref="long.MaxValue"/> to follow the tail). The caller disposes it.
    /// </summary>
    /// <remarks>
    /// FASTER's own committed address, which bounds its iterators, trails <see cref="CommittedUntilAddress"/> by its
    /// flush callback (usually microseconds): a scan started right after a commit first waits (up to 2 s) for it to
    /// catch up, so records a waiter was already told are durable are also visible.
    /// </remarks>
    public FasterLogScanIterator Scan(long from, long until = long.MaxValue)
    {
        var target = Math.Min(until, Volatile.Read(ref _durableUntil));
        if (_log.CommittedUntilAddress < target)
        {
            var deadline = Environment.TickCount64 + 2000;
            var spin = new SpinWait();
            while (_log.CommittedUntilAddress < target && Environment.TickCount64 < deadline)
                spin.SpinOnce();
        }
        return _log.Scan(from, until);
    }

    private void CommitLoop()
    {
        // One flush in flight at a time. As soon as it is durable, the next one (whatever was appended meanwhile) is
        // issued, and only then are the finished flush's waiters completed, so their continuations (which run on this
        // thread) overlap the next write instead of delaying it.
        var inFlight = NoCommit;
        long started = 0;
        while (!_stopping)
        {
            try
            {
                if (inFlight == NoCommit)
                {
                    _commitRequested.Wait();
                    _commitsReleased.Wait();
                    if (_stopping)
                        break;
                    inFlight = IssueCommit(out started);
                    if (inFlight == NoCommit)
                    {
                        _waiters.Complete(); // nothing new to flush: a waiter may still be covered by the last one
                        continue;
                    }
                }

                WaitForFlush(inFlight);
                if (inFlight > Volatile.Read(ref _durableUntil))
                    Volatile.Write(ref _durableUntil, inFlight);
                Interlocked.Increment(ref _commits);
                var ticks = System.Diagnostics.Stopwatch.GetTimestamp() - started;
                Interlocked.Add(ref _commitTicks, ticks);
                CommitLatency?.Record((double)ticks / System.Diagnostics.Stopwatch.Frequency);

                inFlight = Volatile.Read(ref _pending) != 0 && _commitsReleased.IsSet ? IssueCommit(out started) : NoCommit;
                _waiters.Complete();
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                inFlight = NoCommit;
                _failure ??= ex;
                _waiters.Fail(ex);
                StorageLog.CommitFailed(_logger, ex, _name);
                Thread.Sleep(100);
            }
        }
    }

    private const long NoCommit = -1;

    /// <summary>Starts a commit of everything appended so far; returns the address it makes durable, or <see cref="NoCommit"/>.</summary>
    private long IssueCommit(out long started)
    {
        _commitRequested.Reset();
        Volatile.Write(ref _pending, 0);
        started = System.Diagnostics.Stopwatch.GetTimestamp();
        // FastCommitMode writes the commit record into the log itself, and recovery scans forward for the newest
        // one: once the device has flushed past this commit's record, everything before it survives a crash. So
        // waiters are released from here, as soon as the flush is durable, without waiting for FASTER's own
        // completion (a thread-pool hop, then the commit metadata file).
        return _log.CommitStrongly(out var commitTail, out _, spinWait: false, cookie: null, proposedCommitNum: -1, callback: null)
            ? commitTail
            : NoCommit;
    }

    private void WaitForFlush(long until)
    {
        while (true)
        {
            _deviceProgress.Reset();
            if (_log.FlushedUntilAddress >= until)
                return;
            if (_device.Failure is { } failure)
                throw new IOException("event log write failed", failure);
            _deviceProgress.Wait(50);
        }
    }

    private static void ThrowRecordTooLarge(int length)
        => throw new InvalidOperationException($"record of {length} bytes exceeds the log's page size");

    /// <summary>Commits what is pending, stops the commit thread and closes the log.</summary>
    /// <exception cref="InvalidOperationException">Called on the commit thread (from a commit waiter's continuation).</exception>
    public void Dispose()
    {
        if (_stopping)
            return;
        if (Thread.CurrentThread == _commitThread)
            throw new InvalidOperationException($"the {_name} log cannot be disposed from its own commit thread (a commit waiter's continuation)");
        try
        {
            if (_failure is null)
                CommitAndWait();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            StorageLog.FinalCommitFailed(_logger, ex, _name);
        }
        _stopping = true;
        _commitsReleased.Set();
        _commitRequested.Set();
        _commitThread.Join();
        _waiters.Fail(new ObjectDisposedException(nameof(EventLog)));
        _log.Dispose();
        _device.Dispose();
        _commitRequested.Dispose();
        _deviceProgress.Dispose();
    }
}
