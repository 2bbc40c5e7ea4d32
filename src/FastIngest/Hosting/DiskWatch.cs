using FastIngest.Configuration;
using FastIngest.Ingest;
using FastIngest.Storage;
using FastIngest.Telemetry;
using FastIngest.Tenancy;
using Microsoft.Extensions.Logging;

namespace FastIngest.Hosting;

/// <summary>
/// The disk under <c>DataDir</c> and the tenants' inbound traffic, sampled every second: the bytes <c>DataDir</c>
/// holds (against <c>Storage:MaxDiskBytes</c>), a storage stall (writes failing, a commit waiting past
/// <c>Storage:StallThreshold</c>), and each tenant's inbound silence; each is logged once when it starts and once
/// when it ends.
/// </summary>
internal sealed class DiskWatch
{
    private readonly StorageOptions storage;
    private readonly string dataDir;
    private readonly EventLog log;
    private readonly EventLog quarantine;
    private readonly TenantRegistry tenants;
    private readonly TimeProvider time;
    private readonly ILogger logger;

    public DiskWatch(StorageOptions storage, string dataDir, EventLog log, EventLog quarantine, TenantRegistry tenants, TimeProvider time, ILogger logger)
    {
        this.storage = storage;
        this.dataDir = dataDir;
        this.log = log;
        this.quarantine = quarantine;
        this.tenants = tenants;
        this.time = time;
        this.logger = logger;
        _eventsTailAtSample = log.TailAddress;
        _quarantineTailAtSample = quarantine.TailAddress;
        _dataDirBytes = MeasureDataDir();
    }

    /// <summary>Bytes under <c>DataDir</c> at the last sample (every second).</summary>
    public long DataDirBytes => Interlocked.Read(ref _dataDirBytes);

    private long _dataDirBytes;

    /// <summary>
    /// Why the disk cannot take a webhook now, or null: writes are failing and being retried (disk full, read-only),
    /// or the event log's commit has waited longer than <c>Storage:StallThreshold</c> (a frozen disk). While set,
    /// webhooks get 503 with <c>Retry-After</c> and <c>/readyz</c> fails; it clears by itself once writes go through.
    /// </summary>
    public string? StorageStall
    {
        get
        {
            if (DeviceIo.StalledSince is var since and not 0)
                return $"storage: writes failing for {System.Diagnostics.Stopwatch.GetElapsedTime(since).TotalSeconds:0} s ({DeviceIo.StallReason}); retried every second, webhooks get 503 until they go through";
            if (log.CommitPendingFor is var pending && pending > storage.StallThreshold)
                return $"event log: a commit has waited {pending.TotalSeconds:0.0} s for the disk, over Storage:StallThreshold {storage.StallThreshold.TotalSeconds:0.0} s (frozen or failing disk?); webhooks get 503";
            return null;
        }
    }

    /// <summary><c>Storage:MaxDiskBytes</c> (0: no quota).</summary>
    public long MaxDiskBytes => storage.MaxDiskBytes;

    /// <summary>True while <c>DataDir</c> is over <c>Storage:MaxDiskBytes</c>: webhooks get 503 and <c>/readyz</c> fails.</summary>
    public bool OverDiskQuota => storage.MaxDiskBytes > 0 && BytesNow > storage.MaxDiskBytes;

    private long _eventsTailAtSample;
    private long _quarantineTailAtSample;

    /// <summary>
    /// <c>DataDir</c>'s bytes at the last sample plus what the event and quarantine logs took since (their tails
    /// moved, written or about to be): the quota holds at append time, not a second late.
    /// </summary>
    public long BytesNow
        => Interlocked.Read(ref _dataDirBytes)
            + Math.Max(0, log.TailAddress - Interlocked.Read(ref _eventsTailAtSample))
            + Math.Max(0, quarantine.TailAddress - Interlocked.Read(ref _quarantineTailAtSample));

    private long MeasureDataDir()
    {
        long total = 0;
        try
        {
            foreach (var file in new DirectoryInfo(dataDir).EnumerateFiles("*", SearchOption.AllDirectories))
            {
                try
                {
                    total += file.Length;
                }
                catch (FileNotFoundException)
                {
                    // deleted while we looked (a truncated segment)
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            StorageLog.DiskMeasureFailed(logger, ex, dataDir);
        }
        return total;
    }

    /// <summary>Samples every second until <paramref name="ct"/> stops it: stall, quota, inbound silence (each logged when it starts and ends).</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                WatchStall();
                var was = OverDiskQuota;
                var eventsTail = log.TailAddress;
                var quarantineTail = quarantine.TailAddress;
                var measured = MeasureDataDir();
                // Tails read before the measure: what was appended meanwhile is counted twice (the safe side) until the next sample.
                Interlocked.Exchange(ref _dataDirBytes, measured);
                Interlocked.Exchange(ref _eventsTailAtSample, eventsTail);
                Interlocked.Exchange(ref _quarantineTailAtSample, quarantineTail);
                if (OverDiskQuota != was)
                    StorageLog.DiskQuota(logger, OverDiskQuota, DataDirBytes, storage.MaxDiskBytes);
                WatchSilence();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private string? _stallLogged;
    private long _stallStarted;
    private long _unavailableAtStall;

    /// <summary>Logs a storage stall once when it starts and once when it ends, with the webhooks refused meanwhile (checked every second).</summary>
    private void WatchStall()
    {
        var stall = StorageStall;
        if (stall is not null && _stallLogged is null)
        {
            _stallLogged = stall;
            _stallStarted = time.GetTimestamp();
            _unavailableAtStall = tenants.All.Sum(t => t.Counters.Requests(RequestResult.Unavailable));
            EngineLog.StorageStalled(logger, stall);
        }
        else if (stall is null && _stallLogged is not null)
        {
            _stallLogged = null;
            var refused = tenants.All.Sum(t => t.Counters.Requests(RequestResult.Unavailable)) - _unavailableAtStall;
            EngineLog.StorageResumed(logger, time.GetElapsedTime(_stallStarted).TotalSeconds, refused);
        }
    }

    private readonly HashSet<string> _silent = new(StringComparer.Ordinal);

    /// <summary>Logs each tenant's inbound silence when it starts and when it ends (checked every second).</summary>
    private void WatchSilence()
    {
        var now = time.GetUtcNow();
        foreach (var t in tenants.All)
        {
            if (!t.Silence.Enabled)
                continue;
            var silent = t.Silence.IsSilent(now);
            if (silent && _silent.Add(t.Id))
                EngineLog.InboundSilent(logger, t.Id, t.Silence.SecondsSinceMessage(now.ToUnixTimeMilliseconds()), t.Options.InboundSilence.TotalSeconds);
            else if (!silent && _silent.Remove(t.Id))
                EngineLog.InboundResumed(logger, t.Id);
        }
    }

    /// <summary>Logs a warning when the file system of <c>DataDir</c> is smaller than the configured stores need.</summary>
    public void WarnIfDiskTooSmall()
    {
        try
        {
            var drive = new DriveInfo(dataDir);
            var fixedBytes = StorageFootprint.FixedDiskBytes(storage);
            if (drive.TotalSize < fixedBytes)
                EngineLog.DiskTooSmall(logger, dataDir, drive.TotalSize, fixedBytes);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
        }
    }
}
