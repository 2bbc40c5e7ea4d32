using System.Globalization;
using FASTER.core;
using Microsoft.Extensions.Logging;

namespace FastIngest.Storage;

/// <summary>
/// The seen-event index: a FASTER KV store of <see cref="DedupeKey"/> → <see cref="DedupeEntry"/> in one directory,
/// checkpointed so that it survives restarts. FASTER sessions are single-threaded, so callers rent one per
/// synchronous section (<see cref="Rent"/> / <see cref="Return"/>) and never hold it across an await.
/// </summary>
/// <remarks>
/// Check-then-mark must be atomic per key across concurrent requests: callers take <see cref="StripeLock"/> of every
/// key they touch, in ascending stripe order. A checkpoint takes all stripes for an instant, so that it can name the
/// event log address below which every accepted record's marks are in the checkpoint (<see cref="ReplayFrom"/>).
/// </remarks>
public sealed class DedupeStore : IDisposable
{
    /// <summary>Number of stripe locks; a power of two.</summary>
    public const int StripeCount = 256;

    private readonly FasterKV<DedupeKey, DedupeEntry> _kv;
    private readonly FasterKVSettings<DedupeKey, DedupeEntry> _settings;
    private readonly SyncFileDevice _device;
    private readonly object[] _stripes;
    private readonly Stack<DedupeSession> _sessions = new();
    private readonly string _replayFromPath;
    private readonly string _directory;
    private readonly KvManifest _manifest;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _checkpointGate = new(1, 1);
    private readonly LogAgeMap? _ageMap;
    private readonly TimeProvider _time;

    /// <summary>Opens, recovering the latest checkpoint if there is one.</summary>
    /// <param name="directory">Where the store's log and checkpoints live.</param>
    /// <param name="indexBytes">Hash index size in bytes (a power of two; 64 bytes per bucket of 7 keys).</param>
    /// <param name="memoryBytes">In-memory part of the store's log in bytes; older keys are read from disk.</param>
    /// <param name="logger">Where recovery and checkpoints are reported.</param>
    /// <param name="ttl">
    /// The dedupe TTL: each checkpoint cuts the head of the store's log that holds only marks older than this (see
    /// <see cref="LogAgeMap"/>), so disk stays bounded under steady traffic. Null: never cut.
    /// </param>
    /// <param name="time">The clock of the TTL (default: system).</param>
    public DedupeStore(string directory, long indexBytes, long memoryBytes, ILogger logger, TimeSpan? ttl = null, TimeProvider? time = null)
    {
        _logger = logger;
        _time = time ?? TimeProvider.System;
        Directory.CreateDirectory(directory);
        _directory = directory;
        _replayFromPath = Path.Combine(directory, "replay-from");
        // Our device, not FASTER's managed one: a key that has left memory is read while the request holds its
        // stripe lock, and that read must not wait in the thread pool's queue behind the requests it is blocking.
        // Written through: page flushes and checkpoints are not copied into the page cache on the server's core.
        _device = new SyncFileDevice(Path.Combine(directory, "hlog.log"), writeThrough: true);
        _settings = KvSettings.Create<DedupeEntry>(directory, _device, indexBytes, memoryBytes);
        _kv = KvCheckpoints.Open(directory, _settings, _device, out _manifest);
        _stripes = new object[StripeCount];
        for (var i = 0; i < _stripes.Length; i++)
            _stripes[i] = new object();

        if (ttl is { } t)
            _ageMap = new LogAgeMap(Path.Combine(directory, "age-map"), t);
        var text = AtomicFile.Read(_replayFromPath);
        ReplayFrom = text is not null && long.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var r) ? r : 0;
        if (_kv.EntryCount == 0)
            ReplayFrom = 0; // no checkpoint was recovered: rebuild everything the log still has
        StorageLog.DedupeRecovered(_logger, _kv.EntryCount, ReplayFrom);
    }

    /// <summary>
    /// Event log address from which records must be replayed into this store after it was opened: every record
    /// before it has its marks in the recovered checkpoint. 0 when nothing was recovered.
    /// </summary>
    public long ReplayFrom { get; private set; }

    /// <summary>
    /// Lowers <see cref="ReplayFrom"/> to <paramref name="recoveredTail"/> (durably) when the last checkpoint claimed
    /// more than the log recovered: the records this boot writes there must be replayed after the next crash too.
    /// </summary>
    public void ClampReplayFrom(long recoveredTail)
    {
        if (ReplayFrom <= recoveredTail)
            return;
        ReplayFrom = recoveredTail;
        AtomicFile.Write(_replayFromPath, recoveredTail.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>Records in the store's log (live and superseded), for monitoring.</summary>
    public long EntryCount => _kv.EntryCount;

    /// <summary>Bytes of the store's log from its begin (past what was cut) to its tail: what it holds on disk and in memory.</summary>
    public long LogBytes => _kv.Log.TailAddress - _kv.Log.BeginAddress;

    /// <summary>Where the store's log begins: advances as marks older than the TTL are cut.</summary>
    public long BeginAddress => _kv.Log.BeginAddress;

    /// <summary>The stripe lock index of <paramref name="key"/>.</summary>
    public static int StripeOf(in DedupeKey key) => (int)(key.High & (StripeCount - 1));

    /// <summary>The lock object of stripe <paramref name="stripe"/>.</summary>
    public object StripeLock(int stripe) => _stripes[stripe];

    /// <summary>Takes a session from the pool (or makes one). Use from one thread, then <see cref="Return"/> it.</summary>
    public DedupeSession Rent()
    {
        lock (_sessions)
        {
            if (_sessions.TryPop(out var s))
                return s;
        }
        return new DedupeSession(_kv.For(new SimpleFunctions<DedupeKey, DedupeEntry, Empty>()).NewSession<SimpleFunctions<DedupeKey, DedupeEntry, Empty>>());
    }

    /// <summary>Gives a session back to the pool.</summary>
    public void Return(DedupeSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        lock (_sessions)
            _sessions.Push(session);
    }

    /// <summary>
    /// Looks <paramref name="key"/> up. Completes synchronously; a key that has left memory is read from disk on this thread.
    /// </summary>
    public static bool TryGet(DedupeSession session, DedupeKey key, out DedupeEntry entry)
    {
        ArgumentNullException.ThrowIfNull(session);
        return KvSession.Read(session.Session, ref key, out entry);
    }

    /// <summary>Sets the entry of <paramref name="key"/>.</summary>
    public static void Put(DedupeSession session, DedupeKey key, DedupeEntry entry)
    {
        ArgumentNullException.ThrowIfNull(session);
        KvSession.Upsert(session.Session, ref key, ref entry);
    }

    /// <summary>
    /// Takes a full checkpoint. <paramref name="tailWhileQuiet"/> is called while every stripe is held (no mark is
    /// being made) and returns the event log's tail: every record below it has its marks in memory, so the
    /// checkpoint covers them and a restart replays from there. Returns the new <see cref="ReplayFrom"/>.
    /// </summary>
    public async Task<long> CheckpointAsync(Func<long> tailWhileQuiet, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tailWhileQuiet);
        await _checkpointGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var replayFrom = AllStripes(tailWhileQuiet);
            CutExpired();
            // Everything allocated before the checkpoint starts is below its final address: flushed, and read-only, when it completes.
            var covered = _kv.Log.TailAddress;
            var (success, token) = await _kv.TakeFullCheckpointAsync(CheckpointType.FoldOver, cancellationToken).ConfigureAwait(false);
            if (!success)
                throw new InvalidOperationException("FASTER refused the checkpoint (another one in progress)");
            // A fold-over checkpoint made the whole log read-only: everything below was last written before now.
            var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            var safeReadOnly = _kv.Log.SafeReadOnlyAddress;
            var begin = _kv.Log.BeginAddress;
            // Reads and hashes the new index files, deletes the old checkpoint, fsyncs: not on a pool thread.
            await Internal.OffPool.RunAsync(() =>
            {
                _ageMap?.Record(now, safeReadOnly);
                _manifest.Record(begin, covered, token);
                KvCheckpoints.MarkTaken(_directory);
                AtomicFile.Write(_replayFromPath, replayFrom.ToString(CultureInfo.InvariantCulture));
            }).ConfigureAwait(false);
            ReplayFrom = replayFrom;
            StorageLog.CheckpointTaken(_logger, replayFrom);
            return replayFrom;
        }
        finally
        {
            _checkpointGate.Release();
        }
    }

    private void CutExpired()
    {
        if (_ageMap?.CutExpired(_kv.Log, _time.GetUtcNow().ToUnixTimeMilliseconds()) is { } was and >= 0)
            StorageLog.StoreCut(_logger, "dedupe", was, _kv.Log.BeginAddress);
    }

    private long AllStripes(Func<long> action)
    {
        var taken = 0;
        try
        {
            for (; taken < _stripes.Length; taken++)
                Monitor.Enter(_stripes[taken]);
            return action();
        }
        finally
        {
            for (var i = taken - 1; i >= 0; i--)
                Monitor.Exit(_stripes[i]);
        }
    }

    /// <summary>Disposes the sessions and the store (take a checkpoint first to keep recent marks).</summary>
    public void Dispose()
    {
        lock (_sessions)
        {
            while (_sessions.TryPop(out var s))
                s.Session.Dispose();
        }
        _kv.Dispose();
        _settings.Dispose();
        _device.Dispose();
        _checkpointGate.Dispose();
    }
}

/// <summary>A pooled FASTER client session of a <see cref="DedupeStore"/>; single-threaded while rented.</summary>
public sealed class DedupeSession
{
    internal DedupeSession(ClientSession<DedupeKey, DedupeEntry, DedupeEntry, DedupeEntry, Empty, SimpleFunctions<DedupeKey, DedupeEntry, Empty>> session)
        => Session = session;

    internal ClientSession<DedupeKey, DedupeEntry, DedupeEntry, DedupeEntry, Empty, SimpleFunctions<DedupeKey, DedupeEntry, Empty>> Session { get; }
}
