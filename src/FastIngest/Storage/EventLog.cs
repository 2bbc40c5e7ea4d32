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
    private readonly FasterLog _log = null!;
    private readonly SyncFileDevice _device;
    private readonly DeviceIo _io;
    private SparseLogCommitManager? _commitManager;

    /// <summary>How often the commit metadata file is written at most (see <see cref="SparseLogCommitManager"/>): 1 s.</summary>
    internal static readonly TimeSpan CommitMetadataInterval = TimeSpan.FromSeconds(1);
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
        _directory = directory;
        _pageBits = pageBits;
        _segmentBits = Math.Max(pageBits, 28);
        Checksummed = LogFormat.PerEntryChecksums(directory);
        // Write-through: the group commit is one O_DIRECT | O_DSYNC pwrite, no page-cache copy and no fsync.
        // Its own writer: a group commit never queues behind the other stores' page flushes and checkpoints, and
        // the writes the commit thread issues are done on it, without a hop to another thread and back.
        _io = new DeviceIo($"fastingest-{name}");
        _device = new SyncFileDevice(Path.Combine(directory, "log"), writeThrough: true, _io);
        try
        {
            _log = OpenLog(directory, pageBits, memoryBits);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            _device.Dispose();
            _io.Stop();
            throw new IOException($"{Path.Combine(directory, "log")}: the {name} log cannot be recovered ({ex.Message}); restore the directory from a backup or move it aside to start this log empty", ex);
        }
        MaxRecordBytes = (1 << pageBits) - 64;
        _holes = LogHoles.Load(directory, _log.BeginAddress);
        RecoveredTail = _log.CommittedUntilAddress;
        Damage = Verify();
        if (Damage.Count > 0)
        {
            _holes.AddRange(Damage.Where(d => d.Until <= RecoveredTail && d.From < RecoveredTail));
            _holes.Sort((a, b) => a.From.CompareTo(b.From));
            LogHoles.Save(directory, _holes);
            foreach (var d in Damage)
                StorageLog.LogDamaged(_logger, _name, d.From, d.Until, d.Bytes, d.Error);
        }
        _durableUntil = _log.CommittedUntilAddress;
        _waiters = new CommitWaiters(() => Volatile.Read(ref _durableUntil));
        _device.BatchCompleted = _deviceProgress.Set;
        _commitThread = new Thread(CommitLoop) { IsBackground = true, Name = $"fastingest-commit-{name}" };
        _io.InlineThread = _commitThread;
        _commitThread.Start();
    }

    private FasterLog OpenLog(string directory, int pageBits, int memoryBits) =>
        new(new FasterLogSettings
        {
            LogDevice = _device,
            PageSizeBits = pageBits,
            MemorySizeBits = memoryBits,
            SegmentSizeBits = _segmentBits,
            // Commit metadata files on our device too, so that no FASTER write waits in the thread pool.
            LogCommitManager = _commitManager = new SparseLogCommitManager(
                new DeviceLogCommitCheckpointManager(new SyncFileDeviceFactory(), new DefaultCheckpointNamingScheme(Path.Combine(directory, "commits")), removeOutdated: true),
                CommitMetadataInterval),
            FastCommitMode = true,
            RemoveOutdatedCommits = true,
            TryRecoverLatest = true,
            AutoRefreshSafeTailAddress = false,
            // Every record carries a checksum that recovery (Verify) and every scan check (new logs only: see LogFormat).
            LogChecksum = Checksummed ? LogChecksumType.PerEntry : LogChecksumType.None,
        });

    private readonly string _directory;
    private readonly int _pageBits;
    private readonly int _segmentBits;
    private readonly List<LogDamage> _holes;

    /// <summary>Whether this log's records carry FASTER's per-entry checksum (every log created since they were introduced).</summary>
    public bool Checksummed { get; }

    /// <summary>The tail recovered at open: every record below it was committed by an earlier process.</summary>
    public long RecoveredTail { get; }

    /// <summary>
    /// What recovery found damaged at this open (empty when the log verified): each range was cut out of the log
    /// (readers skip it, durably) and logged as an error. A range at or past <see cref="RecoveredTail"/> is data the
    /// log held when it was last closed and no longer has (a truncated or missing file).
    /// </summary>
    public IReadOnlyList<LogDamage> Damage { get; }

    /// <summary>Every range cut out of the log and not yet truncated away (this open's and earlier ones').</summary>
    public IReadOnlyList<LogDamage> Holes => _holes;

    /// <summary>
    /// The lowest address where this open found damage, or <see cref="RecoveredTail"/>: every record an earlier
    /// process appended below it is readable.
    /// </summary>
    public long IntactUntil => Damage.Count == 0 ? RecoveredTail : Math.Min(RecoveredTail, Damage.Min(d => d.From));

    /// <summary>At most this many unreadable positions are stepped over while looking for the next good record after damage.</summary>
    private const int MaxResyncSteps = 50_000;

    /// <summary>Bytes of commit records (FASTER's, about 70 each) that may sit unseen before a page's padding.</summary>
    private const int CommitRecordsAllowance = 512;

    /// <summary>
    /// Reads every record from the begin to the recovered tail, as FASTER verifies them (checksum, length, page
    /// layout), and returns the ranges that did not verify. After a bad record it looks for the next one that
    /// verifies (FASTER's scan steps forward past it), so only the damaged records are cut out. Also checks that the
    /// log reaches as far as it did when it was last closed (file <c>closed</c>), and that every gap before a page
    /// boundary is padding that a record too large for the rest of the page left, not lost records.
    /// </summary>
    private List<LogDamage> Verify()
    {
        var damage = new List<LogDamage>();
        var tail = RecoveredTail;
        var pageSize = 1L << _pageBits;
        var from = Skip(_log.BeginAddress);
        long prevNext = from;
        long badFrom = -1;
        string? badError = null;
        var steps = 0;
        var inMemoryFrom = Math.Max(_log.BeginAddress, tail & ~(pageSize - 1));
        using var tailPage = new OnDiskHeaders(Path.Combine(_directory, "log"), _segmentBits);
        var iter = _log.Scan(from, tail);
        try
        {
            while (true)
            {
                var at = Skip(iter.NextAddress);
                if (at != iter.NextAddress)
                {
                    iter.Dispose();
                    iter = _log.Scan(at, tail);
                    prevNext = at;
                }
                bool more;
                long address = 0, next = 0;
                int length = 0;
                try
                {
                    more = iter.GetNext(System.Buffers.MemoryPool<byte>.Shared, out var owner, out length, out address, out next);
                    using (owner)
                    {
                        // FASTER checks checksums only of records it reads from disk; recovery loaded the tail page
                        // into memory, so its records are checked here against the header on disk.
                        if (more && Checksummed && address >= inMemoryFrom && !tailPage.Verify(address, owner!.Memory.Span[..length]))
                            throw new FasterException($"Invalid checksum found during verification at address {address}");
                    }
                }
                catch (FasterException ex)
                {
                    if (badFrom < 0)
                    {
                        badFrom = prevNext;
                        badError = ex.Message;
                    }
                    if (++steps > MaxResyncSteps)
                        break;
                    continue;
                }
                if (!more)
                    break;
                if (badFrom >= 0)
                {
                    damage.Add(new LogDamage(badFrom, address, badError!));
                    badFrom = -1;
                }
                else if (address >> _pageBits != prevNext >> _pageBits && address > prevNext && !IsPadding(prevNext, address, length))
                {
                    damage.Add(new LogDamage(prevNext, address, "zeros where records should be (a page lost or not written)"));
                }
                prevNext = next;
            }
            if (badFrom >= 0)
                damage.Add(new LogDamage(badFrom, tail, badError!));
            else if (iter.NextAddress > tail && prevNext < tail)
                damage.Add(new LogDamage(prevNext, tail, "zeros where records should be (the log file is shorter than what was committed, or missing)"));
        }
        finally
        {
            iter.Dispose();
        }
        if (ReadClosedAt() is { } closedAt && closedAt > tail)
        {
            damage.Add(new LogDamage(tail, closedAt, $"the log ends at {tail} but reached {closedAt} when it was last closed (the log file was truncated or deleted)"));
            WriteClosedAt(tail); // reported once: the next open starts from what this one found
        }
        return damage;

        // Padding is what a record that did not fit left at the end of a page: less than that record (the first on
        // the next page: the one at the page start, or a commit record before it), after any commit records that did
        // fit (scans do not return commit records, so their bytes are allowed for: at most CommitRecordsAllowance).
        bool IsPadding(long gapStart, long recordAt, int recordLength)
        {
            var pageStart = recordAt & ~(pageSize - 1);
            if (gapStart >> _pageBits != (pageStart >> _pageBits) - 1 && gapStart != pageStart)
                return false; // a whole page or more is missing
            var padding = pageStart - gapStart;
            var firstRecord = recordAt == pageStart ? (Checksummed ? 12 : 4) + ((recordLength + 3) & ~3) : recordAt - pageStart;
            return padding < firstRecord + CommitRecordsAllowance;
        }
    }

    /// <summary>Reads records' 8-byte checksums from the segment files (FASTER's per-entry header: checksum, then length).</summary>
    private sealed class OnDiskHeaders(string baseName, int segmentBits) : IDisposable
    {
        private readonly Dictionary<long, Microsoft.Win32.SafeHandles.SafeFileHandle?> _files = [];

        public unsafe bool Verify(long address, ReadOnlySpan<byte> payload)
        {
            var segment = address >> segmentBits;
            if (!_files.TryGetValue(segment, out var file))
            {
                var path = $"{baseName}.{segment}";
                file = File.Exists(path) ? File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete) : null;
                _files[segment] = file;
            }
            Span<byte> header = stackalloc byte[12];
            if (file is null || RandomAccess.Read(file, header, address & ((1L << segmentBits) - 1)) < 12)
                return false;
            var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(payload.Length + 4);
            try
            {
                header[8..12].CopyTo(buffer);
                payload.CopyTo(buffer.AsSpan(4));
                fixed (byte* p = buffer)
                    return Utility.XorBytes(p, payload.Length + 4) == System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(header);
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        public void Dispose()
        {
            foreach (var f in _files.Values)
                f?.Dispose();
        }
    }

    private long Skip(long address) => LogHoles.Skip(_holes, address);

    private long? ReadClosedAt()
    {
        var text = AtomicFile.Read(Path.Combine(_directory, "closed"));
        return text is not null && long.TryParse(text.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : null;
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

    private long _commitIssuedAt;

    /// <summary>How long the commit in flight has been waiting for the disk (zero when none is): a frozen or failing disk shows here.</summary>
    public TimeSpan CommitPendingFor => Interlocked.Read(ref _commitIssuedAt) is var at and not 0 ? System.Diagnostics.Stopwatch.GetElapsedTime(at) : TimeSpan.Zero;

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
    /// Reads the committed record at <paramref name="address"/> (from memory or from disk, where FASTER checks its
    /// checksum) for a random lookup (the send tier's cold sends); null when the address is outside the log (cut by a
    /// truncation) or does not read back as a record.
    /// </summary>
    public async ValueTask<byte[]?> ReadAsync(long address)
    {
        if (address < _log.BeginAddress || address >= CommittedUntilAddress)
            return null;
        try
        {
            var (bytes, length) = await _log.ReadAsync(address).ConfigureAwait(false);
            return bytes is null || length <= 0 ? null : bytes.Length == length ? bytes : bytes[..length];
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return null;
        }
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
    public LogScan Scan(long from, long until = long.MaxValue)
    {
        var target = Math.Min(until, Volatile.Read(ref _durableUntil));
        if (_log.CommittedUntilAddress < target)
        {
            var deadline = Environment.TickCount64 + 2000;
            var spin = new SpinWait();
            while (_log.CommittedUntilAddress < target && Environment.TickCount64 < deadline)
                spin.SpinOnce();
        }
        return new LogScan(_log, _holes, from, until);
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
                    inFlight = IssueCommit(out started, out var tail);
                    if (inFlight == NoCommit)
                    {
                        CatchUp(tail);
                        _waiters.Complete(); // nothing new to flush: a waiter may still be covered by the last one
                        continue;
                    }
                }

                WaitForFlush(inFlight);
                Interlocked.Exchange(ref _commitIssuedAt, 0);
                if (inFlight > Volatile.Read(ref _durableUntil))
                    Volatile.Write(ref _durableUntil, inFlight);
                Interlocked.Increment(ref _commits);
                var ticks = System.Diagnostics.Stopwatch.GetTimestamp() - started;
                Interlocked.Add(ref _commitTicks, ticks);
                CommitLatency?.Record((double)ticks / System.Diagnostics.Stopwatch.Frequency);

                if (Volatile.Read(ref _pending) != 0 && _commitsReleased.IsSet)
                {
                    inFlight = IssueCommit(out started, out var tail);
                    if (inFlight == NoCommit)
                        CatchUp(tail);
                }
                else
                    inFlight = NoCommit;
                _waiters.Complete();
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                inFlight = NoCommit;
                Interlocked.Exchange(ref _commitIssuedAt, 0);
                var first = _failure is null;
                _failure ??= ex;
                _waiters.Fail(ex);
                if (first)
                    StorageLog.CommitFailed(_logger, ex, _name); // once: later attempts rethrow the same failure
                Thread.Sleep(100);
            }
        }
    }

    private const long NoCommit = -1;

    /// <summary>
    /// Starts a commit of everything appended so far; returns the address it makes durable, or <see cref="NoCommit"/>
    /// when FASTER dropped it (see <see cref="CatchUp"/>). <paramref name="tail"/> is the log's tail just before.
    /// </summary>
    private long IssueCommit(out long started, out long tail)
    {
        _commitRequested.Reset();
        Volatile.Write(ref _pending, 0);
        started = System.Diagnostics.Stopwatch.GetTimestamp();
        tail = _log.TailAddress;
        // FastCommitMode writes the commit record into the log itself, and recovery scans forward for the newest
        // one: once the device has flushed past this commit's record, everything before it survives a crash. So
        // waiters are released from here, as soon as the flush is durable, without waiting for FASTER's own
        // completion (a thread-pool hop, then the commit metadata file).
        // Set before: the flush may be written right here, on this thread (see DeviceIo.InlineThread), and a frozen
        // disk must show as a commit waiting while it is stuck in that write.
        Interlocked.Exchange(ref _commitIssuedAt, started);
        if (!_log.CommitStrongly(out var commitTail, out _, spinWait: false, cookie: null, proposedCommitNum: -1, callback: null))
        {
            Interlocked.Exchange(ref _commitIssuedAt, 0);
            return NoCommit;
        }
        return commitTail;
    }

    /// <summary>
    /// FASTER drops a commit request that a commit already issued covers (its default commit strategy: each record is
    /// covered by at most one request), and <see cref="CommitAndWait"/> issues commits of its own. So a dropped request
    /// means: nothing new since the last commit, or another commit in flight covers <paramref name="tail"/>. Waits for
    /// that one to complete and counts what it made durable; without this a waiter whose record only the other commit
    /// covered was released only by the next append (a send's step waited forever on a quiet log).
    /// </summary>
    private void CatchUp(long tail)
    {
        while (_log.CommittedUntilAddress < tail && !_stopping)
        {
            if (_device.Failure is { } failure)
                throw new IOException("event log write failed", failure);
            _deviceProgress.Wait(1);
            _deviceProgress.Reset();
        }
        var committed = _log.CommittedUntilAddress;
        if (committed > Volatile.Read(ref _durableUntil))
            Volatile.Write(ref _durableUntil, committed);
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

    /// <summary>Records how far the log reached at a clean close (file <c>closed</c>), which the next open checks.</summary>
    private void WriteClosedAt(long? at = null)
    {
        try
        {
            AtomicFile.Write(Path.Combine(_directory, "closed"), (at ?? _log.CommittedUntilAddress).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            StorageLog.FinalCommitFailed(_logger, ex, _name);
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
        if (_failure is null)
        {
            try
            {
                _commitManager?.Flush(); // the last commit's metadata file, so the next open starts its scan there
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                StorageLog.FinalCommitFailed(_logger, ex, _name);
            }
            WriteClosedAt();
        }
        _stopping = true;
        _commitsReleased.Set();
        _commitRequested.Set();
        _commitThread.Join();
        _waiters.Fail(new ObjectDisposedException(nameof(EventLog)));
        try
        {
            _log.Dispose(); // after a failed commit FASTER may throw its stored failure from here too
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            StorageLog.FinalCommitFailed(_logger, ex, _name);
        }
        _device.Dispose();
        _io.Stop();
        _commitRequested.Dispose();
        _deviceProgress.Dispose();
    }
}
