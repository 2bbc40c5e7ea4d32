using FASTER.core;
using Microsoft.Extensions.Logging;

namespace FastIngest.Storage;

/// <summary>
/// A FASTER KV of 16-byte keys whose records expire: its log on a <see cref="SyncFileDevice"/> (<c>hlog.log</c>), the
/// settings of <see cref="KvSettings.Create"/>, pooled sessions, and a <see cref="LogAgeMap"/> (<c>age-map</c>) by
/// which each checkpoint cuts the head of the log past the TTL. The delivery-state and customer-window stores are
/// each one of these with their own keys and values.
/// </summary>
internal sealed class TtlKvStore<TValue> : IDisposable
    where TValue : new()
{
    private readonly FasterKV<DedupeKey, TValue> _kv;
    private readonly FasterKVSettings<DedupeKey, TValue> _settings;
    private readonly SyncFileDevice _device;
    private readonly SemaphoreSlim _checkpointGate = new(1, 1);
    private readonly LogAgeMap _ageMap;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _name;
    private readonly string _directory;
    private readonly KvManifest _manifest;

    /// <summary>Opens (recovering the latest checkpoint) the store <paramref name="name"/> in <paramref name="directory"/>.</summary>
    /// <param name="directory">Where its log and checkpoints live.</param>
    /// <param name="name">Its name in log lines and errors (e.g. <c>delivery-state</c>).</param>
    /// <param name="indexBytes">Hash index bytes (a power of two).</param>
    /// <param name="memoryBytes">In-memory part of its log.</param>
    /// <param name="ttl">How long a record is kept after it was last written.</param>
    /// <param name="time">The clock of the TTL.</param>
    /// <param name="logger">Where cuts are reported.</param>
    public TtlKvStore(string directory, string name, long indexBytes, long memoryBytes, TimeSpan ttl, TimeProvider time, ILogger logger)
    {
        Directory.CreateDirectory(directory);
        _directory = directory;
        _name = name;
        _time = time;
        _logger = logger;
        _device = new SyncFileDevice(Path.Combine(directory, "hlog.log"), writeThrough: true);
        _settings = KvSettings.Create<TValue>(directory, _device, indexBytes, memoryBytes);
        _kv = KvCheckpoints.Open(directory, _settings, _device, out _manifest);
        Sessions = new KvSessionPool<TValue>(_kv);
        _ageMap = new LogAgeMap(Path.Combine(directory, "age-map"), ttl);
    }

    /// <summary>Its pooled sessions.</summary>
    public KvSessionPool<TValue> Sessions { get; }

    /// <summary>Bytes of the store's log from its begin to its tail.</summary>
    public long LogBytes => _kv.Log.TailAddress - _kv.Log.BeginAddress;

    /// <summary>
    /// Cuts the head of the log that the age map proves past the TTL, takes a full fold-over checkpoint, and samples the
    /// new safe read-only address into the map.
    /// </summary>
    /// <exception cref="InvalidOperationException">FASTER refused the checkpoint.</exception>
    public async Task CheckpointAsync(CancellationToken cancellationToken = default)
    {
        await _checkpointGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_ageMap.CutExpired(_kv.Log, _time.GetUtcNow().ToUnixTimeMilliseconds()) is var was and >= 0)
                StorageLog.StoreCut(_logger, _name, was, _kv.Log.BeginAddress);
            // Everything allocated before the checkpoint starts is below its final address: flushed, and read-only, when it completes.
            var covered = _kv.Log.TailAddress;
            var (success, token) = await _kv.TakeFullCheckpointAsync(CheckpointType.FoldOver, cancellationToken).ConfigureAwait(false);
            if (!success)
                throw new InvalidOperationException($"FASTER refused the {_name} checkpoint (another one in progress)");
            var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            var safeReadOnly = _kv.Log.SafeReadOnlyAddress;
            var begin = _kv.Log.BeginAddress;
            // Reads and hashes the new index files, deletes the old checkpoint, fsyncs: not on a pool thread.
            await Internal.OffPool.RunAsync(() =>
            {
                _ageMap.Record(now, safeReadOnly);
                _manifest.Record(begin, covered, token);
                KvCheckpoints.MarkTaken(_directory);
            }).ConfigureAwait(false);
        }
        finally
        {
            _checkpointGate.Release();
        }
    }

    /// <summary>Fault injection (tests): a checkpoint the manifest does not record, as a crash right after it would leave it.</summary>
    internal async Task<Guid> CheckpointUnrecordedAsync()
    {
        var (success, token) = await _kv.TakeFullCheckpointAsync(CheckpointType.FoldOver).ConfigureAwait(false);
        if (!success)
            throw new InvalidOperationException("checkpoint refused");
        return token;
    }

    /// <summary>Disposes the sessions, the store and its device.</summary>
    public void Dispose()
    {
        Sessions.Dispose();
        _kv.Dispose();
        _settings.Dispose();
        _device.Dispose();
        _checkpointGate.Dispose();
    }
}
