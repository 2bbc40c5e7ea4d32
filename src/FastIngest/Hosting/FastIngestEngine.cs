using System.Buffers;
using System.Globalization;
using System.Text;
using FastIngest.Configuration;
using FastIngest.Delivery;
using FastIngest.Dispatch;
using FastIngest.Ingest;
using FastIngest.Storage;
using FastIngest.Telemetry;
using FastIngest.Tenancy;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FastIngest.Hosting;

/// <summary>
/// Composes the stages and owns their lifetime: opens (and recovers) the event log, the quarantine log, the
/// dead-letter queue and the derived stores under <c>DataDir</c>, reads the log once at start
/// (<see cref="StartupRecovery"/>), builds the projections (<see cref="Projections.ProjectionFollower"/>), one
/// <see cref="DestinationDispatcher"/> per tenant and destination (starting at its recorded position,
/// <see cref="DeliveryPositions"/>), and the send tier; then runs <see cref="Retention"/> (checkpoints, positions,
/// log truncation) and <see cref="DiskWatch"/> (disk, stalls, silence), answers <c>/readyz</c> through
/// <see cref="Readiness"/> and replays through <see cref="EventReplays"/>, and stops everything in order.
/// </summary>
/// <remarks>
/// Layout of <c>DataDir</c>: <c>events/</c> (event log), <c>quarantine/</c> (unparseable payloads, never truncated),
/// <c>dedupe/</c> (FASTER KV and checkpoints), <c>state/</c> (delivery states, FASTER KV), <c>outbound/</c> (sends), <c>window/</c> (customer service windows, FASTER KV), <c>out/{tenant}.jsonl</c> (file delivery), <c>boot</c> (start counter), <c>positions</c> (delivered watermarks).
/// </remarks>
public sealed class FastIngestEngine : IHostedService, IAsyncDisposable
{
    private readonly FastIngestOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly EventLog _log;
    private readonly EventLog _quarantine;
    private readonly DedupeStore _dedupe;
    private readonly DeliveryStateStore _states;
    private readonly DeadLetterQueue _deadLetters;
    private volatile DestinationDispatcher[] _dispatchers = [];
    private readonly Dictionary<string, CircuitBreaker> _breakers = new(StringComparer.Ordinal);
    private readonly ForwardTargetWrapper? _faults;
    private readonly ILoggerFactory _loggerFactory;
    private readonly AckSet _acked;
    private readonly object _reconfigure = new();
    private readonly List<Task> _retiring = [];
    private readonly Dictionary<(string Tenant, string Destination), long> _retiredAt = []; // under _reconfigure
    private readonly Projections.ProjectionFollower _projections;
    private readonly HttpClient _http;
    private readonly CancellationTokenSource _stop = new();
    private readonly Retention _retention;
    private Task _maintenance = Task.CompletedTask;
    private Task _diskWatch = Task.CompletedTask;
    private DiskWatch _disk = null!;
    private Readiness _readiness = null!;
    private int _stopped;
    private bool _running; // under _reconfigure
    private long _shutdownRequestedTicks;
    private readonly DataDirLock _dirLock;
    private readonly EventReplays _replays;

    /// <summary>Opens and recovers everything (synchronously: the server must not take requests before this is done).</summary>
    /// <exception cref="IOException">The data directory cannot be used.</exception>
    public FastIngestEngine(FastIngestOptions options, ILoggerFactory loggerFactory, TimeProvider? time = null)
        : this(options, loggerFactory, time, null)
    {
    }

    /// <summary>
    /// As the public constructor; <paramref name="faults"/>, when given, wraps each tenant's destination (fault
    /// injection for the tests of dispatch supervision).
    /// </summary>
    internal FastIngestEngine(FastIngestOptions options, ILoggerFactory loggerFactory, TimeProvider? time, ForwardTargetWrapper? faults)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _options = options;
        _faults = faults;
        _loggerFactory = loggerFactory;
        _time = time ?? TimeProvider.System;
        _logger = loggerFactory.CreateLogger("FastIngest");
        Tenants = new TenantRegistry(options.Tenants, _time);

        // A relative DataDir is the working directory's (the process's current directory), said in full at start.
        var dataDir = Path.GetFullPath(options.DataDir, Environment.CurrentDirectory);
        Directory.CreateDirectory(dataDir);
        DataDir = dataDir;
        EngineLog.DataDirectory(_logger, dataDir, options.DataDir);
        // Before anything in the directory is opened: a second process on the same data would corrupt it.
        _dirLock = DataDirLock.Acquire(dataDir);
        var boot = BootCounter.Next(dataDir);
        Damage = new DamageReport(dataDir);
        var maxRecord = options.MaxBodyBytes + 64 * 1024;
        _quarantine = new EventLog(Path.Combine(dataDir, "quarantine"), "quarantine", maxRecord, Math.Max(options.Storage.LogMemoryBytes / 4, 4L * maxRecord), loggerFactory.CreateLogger("FastIngest.Quarantine"));
        ReportDamage("quarantine", _quarantine, "quarantined payloads in it are lost");
        _log = new EventLog(Path.Combine(dataDir, "events"), "events", maxRecord, Math.Max(options.Storage.LogMemoryBytes, 4L * maxRecord), loggerFactory.CreateLogger("FastIngest.EventLog"));
        ReportDamage("events", _log, "acknowledged events in it are lost unless Meta sends them again (they are accepted as new), and acks in it are lost (those events are delivered again)");
        _deadLetters = new DeadLetterQueue(Path.Combine(dataDir, "deadletter"), maxRecord, Math.Max(options.Storage.LogMemoryBytes / 4, 4L * maxRecord), _time, loggerFactory.CreateLogger("FastIngest.DeadLetter"));
        ReportDamage("deadletter", _deadLetters.Log, "dead letters in it are lost");
        _dedupe = StoreRecovery.OpenOrReset(Path.Combine(dataDir, "dedupe"), "dedupe", () => new DedupeStore(Path.Combine(dataDir, "dedupe"), options.Storage.DedupeIndexBytes, options.Storage.DedupeMemoryBytes, loggerFactory.CreateLogger("FastIngest.Dedupe"), options.DedupeTtl, _time), Damage, _time, _logger,
            "rebuilt from the event log; an event delivered before that Meta sends again may be delivered twice until DedupeTtl has passed");

        _states = StoreRecovery.OpenOrReset(Path.Combine(dataDir, "state"), "state", () => new DeliveryStateStore(Path.Combine(dataDir, "state"), options.Storage.StateIndexBytes, options.Storage.StateMemoryBytes, options.DeliveryStateTtl, _time, loggerFactory.CreateLogger("FastIngest.DeliveryState")), Damage, _time, _logger,
            "rebuilt from the statuses still in the event log; older messages' states are unknown (GET /v1/messages answers 404 for them)");

        Quarantine = new QuarantineLog(_quarantine);
        var recoveredTail = _log.RecoveredTail;
        // Every record an earlier boot appended below this is readable: marks of records past it are void.
        var intact = _log.IntactUntil;
        // Durable before any request: which earlier marks are real depends on what each boot got committed.
        var bootTails = BootTails.Record(dataDir, boot, intact);
        if (_log.Damage.Count == 0 && bootTails.HighestBefore(boot) is var earlier && earlier > recoveredTail)
        {
            var detail = $"the event log ends at {recoveredTail} but an earlier start recovered it up to {earlier}: {earlier - recoveredTail} bytes of it are gone (the directory was deleted, replaced or truncated); acknowledged events in them are lost unless Meta sends them again (they are accepted as new)";
            Damage.Add("events", detail, _time.GetUtcNow());
            EngineLog.DamageFound(_logger, "events", detail);
        }
        _dedupe.ClampReplayFrom(intact);
        Pipeline = new IngestPipeline(_log, _quarantine, _dedupe, options.DedupeTtl, boot, intact, _time, loggerFactory.CreateLogger("FastIngest.Ingest"), options.MaxEventsPerPayload, bootTails);
        BodyBudget = new BodyBudget(options.MaxInFlightBodyBytes);

        // Each destination's delivered watermark and the projections' applied address from the last checkpoint:
        // readers start there, and acks below a watermark are not kept. After damage to the event log (records gone,
        // or a log that is not the one the positions describe) every stage reads the log from its begin.
        var destinations = new List<(Tenant Tenant, Destinations.DestinationSpec Spec)>();
        for (var i = 0; i < options.Tenants.Count; i++)
        {
            var tenant = Tenants.Find(options.Tenants[i].Id.AsSpan())!;
            foreach (var destination in Destinations.DestinationSpec.Resolve(tenant.Options, string.Create(CultureInfo.InvariantCulture, $"{FastIngestOptions.SectionName}:Tenants:{i}"), dataDir))
                destinations.Add((tenant, destination));
        }
        var positions = Damage.FoundSinceStart.Any(d => d.Key == "events") ? DeliveryPositions.None : DeliveryPositions.Load(dataDir, _logger);
        long StartOf(long? recorded) => recorded is { } at ? Math.Clamp(at, _log.BeginAddress, recoveredTail) : _log.BeginAddress;
        var acked = _acked = new AckSet();
        foreach (var (tenant, destination) in destinations)
            acked.SetWatermark(AckRecord.TenantHashOf(tenant.IdUtf8), destination.Id, StartOf(positions.WatermarkOf(tenant.Id, destination.Name)));
        var orphanCap = StartupRecovery.Run(_log, recoveredTail, _dedupe, Pipeline, Tenants, acked, _logger);
        AcksKeptAtStart = acked.Count;
        AcksSkippedAtStart = acked.Skipped;

        _http = new HttpClient(new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            MaxConnectionsPerServer = 1024,
            AutomaticDecompression = System.Net.DecompressionMethods.None,
        })
        { Timeout = Timeout.InfiniteTimeSpan };

        Outbound = new Outbound.OutboundService(options, Tenants, Pipeline, _log, _states, _http, dataDir, _time, loggerFactory, Damage);
        ReportDamage("outbound", Outbound.Book.Log, "sends recorded in it are lost (their state is unknown; a bot that retries with the same idempotency key sends again)");

        // A view store started empty at this start (damage) is rebuilt from every status the log still holds.
        var viewsReset = Damage.FoundSinceStart.Any(d => d.Key is "state" or "window" or "outbound-index");
        _projections = new Projections.ProjectionFollower(_log, Tenants, _states, Outbound, viewsReset || positions.Projections == 0 ? _log.BeginAddress : StartOf(positions.Projections), _time, loggerFactory.CreateLogger("FastIngest.Projections"));
        // One read of the log feeds the views and every destination that is caught up (the others read on their own until they are).
        var feed = Feed = _projections.Feed;
        // One breaker per destination address: tenants delivering to the same bot URL (or broker) share it (the first one's settings).
        foreach (var (tenant, destination) in destinations)
            AddDispatcher(tenant, destination, StartOf(positions.WatermarkOf(tenant.Id, destination.Name)));

        _disk = new DiskWatch(options.Storage, dataDir, _log, _quarantine, Tenants, _time, _logger);
        _retention = new Retention(options, dataDir, _log, _dedupe, _states, Outbound, _projections, () => _dispatchers, orphanCap, () => _disk.BytesNow, _time, _logger);
        _replays = new EventReplays(Tenants, Pipeline, Quarantine, _deadLetters, _log, () => _dispatchers.Select(d => (d.Tenant.Id, d.Destination.Name)).ToHashSet(), _time);
        _disk.WarnIfDiskTooSmall();
        _readiness = new Readiness(Damage, _log, _disk, _retention, Tenants, Outbound, _projections, () => _dispatchers, _time);
        Metrics = new FastIngestMetrics(() => Tenants.All, DispatchStats, () => _deadLetters.Count, () => _disk.DataDirBytes, () => _dedupe.LogBytes, Outbound, _time, Damage, () => CheckpointsSkipped);
        _log.CommitLatency = Metrics.CommitLatency;
    }

    /// <summary>
    /// Builds the dispatcher of <paramref name="tenant"/>'s <paramref name="destination"/>, reading from
    /// <paramref name="startAddress"/>, and adds it to those the engine runs (not started).
    /// </summary>
    private DestinationDispatcher AddDispatcher(Tenant tenant, Destinations.DestinationSpec destination, long startAddress)
    {
        var target = Destinations.DestinationTargets.Create(tenant, destination, _http, _time, _loggerFactory);
        if (_faults is not null)
            target = _faults.Wrap(tenant.Id, target);
        var policy = destination.Policy;
        CircuitBreaker? breaker;
        lock (_breakers)
        {
            if (!_breakers.TryGetValue(target.Describe, out breaker))
            {
                breaker = new CircuitBreaker(target.Describe, policy.BreakerFailures, policy.BreakDuration, policy.MaxBackoff > policy.BreakDuration ? policy.MaxBackoff : policy.BreakDuration, _time);
                _breakers.Add(target.Describe, breaker);
            }
        }
        var dispatcher = new DestinationDispatcher(tenant, destination, _log, _projections, target, breaker, _deadLetters, _states, _acked, startAddress, _time, _loggerFactory.CreateLogger("FastIngest.Dispatch"), _loggerFactory.CreateLogger("FastIngest.Events"), Feed);
        lock (_reconfigure)
            _dispatchers = [.. _dispatchers, dispatcher];
        EngineLog.TenantReady(_logger, tenant.Id, destination.Name == Destinations.DestinationSpec.ForwardName ? target.Describe : $"{destination.Name}: {target.Describe}");
        return dispatcher;
    }

    /// <summary>The dispatchers running now (one per tenant and destination, and those of removed tenants still delivering their backlog).</summary>
    internal IReadOnlyList<DestinationDispatcher> Dispatchers => _dispatchers;

    /// <summary>
    /// Adds <paramref name="options"/> as a tenant (a configuration reload; <paramref name="key"/> is its section,
    /// <c>FastIngest:Tenants:{i}</c>): its destinations' dispatchers start at the log's begin (events of the tenant an
    /// earlier configuration left in the log are delivered), its sends are taken when it lists phone numbers, and
    /// then its webhooks are taken.
    /// </summary>
    internal void AddTenant(TenantOptions options, string key)
    {
        var tenant = new Tenant(options, _time);
        lock (_reconfigure)
        {
            // No watermark: every ack of this tenant's still in memory counts (an earlier configuration's deliveries).
            foreach (var destination in Destinations.DestinationSpec.Resolve(options, key, DataDir))
            {
                // A tenant removed earlier in this run starts where its dispatcher stopped (its acks are not in memory).
                var start = _retiredAt.TryGetValue((tenant.Id, destination.Name), out var at) ? Math.Max(at, _log.BeginAddress) : _log.BeginAddress;
                var dispatcher = AddDispatcher(tenant, destination, start);
                if (_running)
                    dispatcher.Start();
            }
        }
        Outbound.AddTenant(tenant);
        Tenants.Add(tenant);
    }

    /// <summary>
    /// Removes tenant <paramref name="id"/> (a configuration reload): its webhooks and new sends get 404 at once; its
    /// dispatchers go on until every event it had in the log when it was removed is delivered (or dead-lettered), and
    /// then stop; sends it had queued still go out. Returns false when no such tenant is configured.
    /// </summary>
    internal bool RemoveTenant(string id)
    {
        if (Tenants.Remove(id) is not { } tenant)
            return false;
        Outbound.RemoveTenant(tenant);
        var tail = _log.TailAddress;
        var mine = _dispatchers.Where(d => d.Tenant == tenant).ToArray();
        lock (_retiring)
            _retiring.Add(RetireAsync(tenant, mine, tail));
        return true;
    }

    /// <summary>
    /// Gives <paramref name="tenant"/> the secrets of <paramref name="next"/> (a reload that changed nothing else of
    /// it; <paramref name="key"/> is its section): inbound app secrets, header values and <c>hub.verify_token</c>, its
    /// send credentials, and each signing destination's key (events waiting for a retry are signed again).
    /// </summary>
    internal void RotateTenant(Tenant tenant, TenantOptions next, string key)
    {
        var specs = Destinations.DestinationSpec.Resolve(next, key, DataDir);
        tenant.Rotate(next);
        Outbound.Rotate(tenant, next.Outbound);
        foreach (var d in _dispatchers)
        {
            if (d.Tenant != tenant || specs.FirstOrDefault(s => s.Name == d.Destination.Name) is not { } spec)
                continue;
            var signing = ForwardSigning.Of(spec.Policy, spec.Kind is DestinationKind.Webhook or DestinationKind.Chatwoot);
            if (signing is null ? d.Signing is not null : !signing.SameAs(d.Signing))
                d.Rotate(signing);
        }
    }

    /// <summary>Whether a removed tenant <paramref name="id"/> still has dispatchers delivering its backlog.</summary>
    internal bool IsRetiring(string id) => _dispatchers.Any(d => d.Tenant.Id == id && Tenants.Find(id.AsSpan()) != d.Tenant);

    private async Task RetireAsync(Tenant tenant, DestinationDispatcher[] dispatchers, long tail)
    {
        try
        {
            // Delivered (or dead-lettered) up to where the log was at the removal: nothing of the tenant's is left.
            while (!_stop.IsCancellationRequested && dispatchers.Any(d => d.LowWater < tail))
                await Task.Delay(TimeSpan.FromMilliseconds(100), _time, _stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return; // shutting down: StopAsync stops them with the others
        }
        lock (_reconfigure)
        {
            if (_stop.IsCancellationRequested)
                return;
            _dispatchers = [.. _dispatchers.Where(d => !dispatchers.Contains(d))];
            foreach (var d in dispatchers)
                _retiredAt[(tenant.Id, d.Destination.Name)] = d.LowWater;
        }
        foreach (var d in dispatchers)
        {
            try
            {
                await d.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                EngineLog.ShutdownStepFailed(_logger, ex);
            }
        }
        EngineLog.TenantRetired(_logger, tenant.Id, tail);
    }

    /// <summary>The shared read that feeds the destinations that are caught up.</summary>
    internal DestinationFeed Feed { get; }

    /// <summary>Acks read at start-up and kept in memory: those at or above their destination's delivered watermark.</summary>
    internal int AcksKeptAtStart { get; }

    /// <summary>Acks read at start-up and dropped: below their destination's delivered watermark, where its reader never looks.</summary>
    internal long AcksSkippedAtStart { get; }

    /// <summary>Damage that start-up found and handled, open until an operator clears it (each entry fails <c>/readyz</c>).</summary>
    public DamageReport Damage { get; }

    private void ReportDamage(string store, EventLog log, string consequence)
    {
        foreach (var d in log.Damage)
        {
            var detail = d.From >= log.RecoveredTail
                ? $"{store} log: [{d.From}, {d.Until}) ({d.Bytes} bytes) is missing: {d.Error}; {consequence}"
                : $"{store} log: [{d.From}, {d.Until}) ({d.Bytes} bytes) did not verify and was cut out: {d.Error}; {consequence}";
            Damage.Add(store, detail, _time.GetUtcNow());
        }
    }

    /// <summary>The send tier (<c>POST /graph/{version}/{phone_number_id}/messages</c>).</summary>
    public Outbound.OutboundService Outbound { get; }

    /// <summary>The instruments behind <c>/metrics</c>.</summary>
    public FastIngestMetrics Metrics { get; }

    /// <summary>Every tenant's dispatch figures now.</summary>
    public IReadOnlyList<DispatchStats> DispatchStats() => [.. _dispatchers.Select(d => d.Stats())];

    /// <summary>Bytes under <c>DataDir</c> at the last sample (every second).</summary>
    public long DataDirBytes => _disk.DataDirBytes;

    /// <summary>
    /// Why the disk cannot take a webhook now, or null (see <see cref="DiskWatch.StorageStall"/>): while set, webhooks
    /// get 503 with <c>Retry-After</c> and <c>/readyz</c> fails; it clears by itself once writes go through.
    /// </summary>
    public string? StorageStall => _disk.StorageStall;

    /// <summary>True while <c>DataDir</c> is over <c>Storage:MaxDiskBytes</c>: webhooks get 503 and <c>/readyz</c> fails.</summary>
    public bool OverDiskQuota => _disk.OverDiskQuota;

    /// <summary>
    /// Why the server should not get traffic now, one line per reason (empty when ready); see
    /// <see cref="Readiness.NotReadyReasons"/>.
    /// </summary>
    public IReadOnlyList<string> NotReadyReasons() => _readiness.NotReadyReasons();

    /// <summary>The configured tenants.</summary>
    public TenantRegistry Tenants { get; }

    /// <summary>The ingest path's synchronous core.</summary>
    public IngestPipeline Pipeline { get; }

    /// <summary>The full path of the data directory.</summary>
    public string DataDir { get; }

    /// <summary>Largest webhook body accepted, in bytes.</summary>
    public int MaxBodyBytes => _options.MaxBodyBytes;

    /// <summary>The engine's clock.</summary>
    internal TimeProvider Time => _time;

    /// <summary>The bytes of webhook bodies in memory now, against <c>MaxInFlightBodyBytes</c>.</summary>
    public BodyBudget BodyBudget { get; }

    /// <summary>Events delivered to bots since start, over all tenants.</summary>
    public long Delivered => _dispatchers.Sum(d => d.Delivered);

    /// <summary>The quarantine log (<c>DataDir/quarantine/</c>): authentic payloads that did not parse.</summary>
    public QuarantineLog Quarantine { get; }

    /// <summary>
    /// Runs quarantined payloads (one, one tenant's, or all) through today's parser: each that parses now is ingested
    /// like a webhook (deduped, committed to the event log, then delivered) and marked replayed; the rest stay.
    /// Payloads of a tenant no longer configured stay. Returns (replayed, still unparseable).
    /// </summary>
    public Task<(int Replayed, int Unparseable)> ReplayQuarantineAsync(string? tenant, long? id, CancellationToken cancellationToken = default)
        => _replays.QuarantineAsync(tenant, id, cancellationToken);

    /// <summary>The delivery-state store (<c>DataDir/state/</c>): each outbound message's status, by wamid.</summary>
    public DeliveryStateStore DeliveryStates => _states;

    /// <summary>The dead-letter queue (<c>DataDir/deadletter/</c>).</summary>
    public DeadLetterQueue DeadLetters => _deadLetters;

    /// <summary>
    /// Puts dead letters back into the event log for delivery: one (<paramref name="id"/>), one tenant's (of one of its
    /// destinations, with <paramref name="destination"/>), or all. Each goes back as a batch record for the destination
    /// that gave up on it only (the others have it already), with its kept payload and a fresh received time (so
    /// <c>MaxAge</c> starts again), is committed, and only then marked replayed; a crash in between replays it once
    /// more (same event id). Entries of a tenant or destination that is no longer configured stay. Returns how many
    /// were replayed.
    /// </summary>
    public Task<int> ReplayDeadLettersAsync(string? tenant, long? id, string? destination = null, CancellationToken cancellationToken = default)
        => _replays.DeadLettersAsync(tenant, id, destination, cancellationToken);

    /// <summary>The event log (exposed for tests and tooling).</summary>
    public EventLog Log => _log;

    /// <summary>
    /// Compiles the checkpoint path on scratch stores (<see cref="CheckpointWarmup"/>, once per process), then starts
    /// the dispatchers and the checkpoint loop. The host runs this before Kestrel listens, so that compile is done
    /// before traffic instead of on the first periodic checkpoint.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await CheckpointWarmup.RunOnceAsync(DataDir, _time, _logger).ConfigureAwait(false);
        _projections.Start();
        lock (_reconfigure)
        {
            foreach (var d in _dispatchers)
                d.Start();
            _running = true;
        }
        Outbound.Start();
        _maintenance = Task.Run(() => _retention.RunAsync(_stop.Token), CancellationToken.None);
        _diskWatch = Task.Run(() => _disk.RunAsync(_stop.Token), CancellationToken.None);
    }

    /// <summary>
    /// Checkpoints the stores, records the positions, then truncates the event log below the lowest address still
    /// needed (see <see cref="Retention.CheckpointAndTruncateAsync"/>).
    /// </summary>
    public Task CheckpointAndTruncateAsync(CancellationToken cancellationToken = default) => _retention.CheckpointAndTruncateAsync(cancellationToken);

    /// <summary>Checkpoints skipped since start because their files would not have fit (<c>fastingest_checkpoints_skipped_total</c>).</summary>
    public long CheckpointsSkipped => _retention.CheckpointsSkipped;

    /// <summary>
    /// Marks the start of a shutdown (the host's <c>ApplicationStopping</c>): <c>ShutdownTimeout</c> counts from here,
    /// so the time Kestrel spends finishing requests in flight comes out of the dispatchers' drain.
    /// </summary>
    public void ShutdownRequested() => Interlocked.CompareExchange(ref _shutdownRequestedTicks, _time.GetTimestamp(), 0);

    /// <summary>
    /// Stops dispatching (sends in progress may finish and record their acks until <c>ShutdownTimeout</c>, less a
    /// reserve, has passed since <see cref="ShutdownRequested"/> or until <paramref name="cancellationToken"/> fires),
    /// then commits the log (acks included) and checkpoints the dedupe store.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
            return;
        ShutdownRequested();
        lock (_reconfigure)
            _stop.Cancel(); // a removed tenant's dispatchers still delivering are stopped with the others from here
        Task[] retiring;
        lock (_retiring)
            retiring = [.. _retiring];
        await Task.WhenAll(retiring).ConfigureAwait(false);
        var budget = _options.ShutdownTimeout;
        var reserve = TimeSpan.FromTicks(Math.Min(TimeSpan.TicksPerSecond, budget.Ticks / 4));
        TimeSpan Left() => budget - reserve - _time.GetElapsedTime(Interlocked.Read(ref _shutdownRequestedTicks));

        // A disk that refuses writes now is not waited for: an ack, a checkpoint or a send record would wait for it
        // forever. Everything acknowledged is already durable in the event log; what is given up is redone after
        // the next start (an ack lost means a delivery repeated, with the same event id).
        if (StorageStall is not null)
            GiveUpStalledWrites();
        if (!await Within(_maintenance, Left()).ConfigureAwait(false))
            GiveUpStalledWrites();
        await _diskWatch.ConfigureAwait(false);

        using (var drain = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            var left = Left();
            drain.CancelAfter(left > TimeSpan.Zero ? left : TimeSpan.Zero);
            // Sends first (Meta's answers to those in flight are recorded), then the dispatchers and the projections
            // (the statuses they read still move sends), then the lifecycle events of every step so far go into the
            // event log. What the deadline cuts is emitted at the next start.
            var stopping = Task.Run(async () =>
            {
                await Outbound.StopSendingAsync(drain.Token).ConfigureAwait(false);
                await Task.WhenAll(_dispatchers.Select(d => d.StopAsync(drain.Token))).ConfigureAwait(false);
                await _projections.StopAsync().ConfigureAwait(false);
                await Outbound.StopAsync(drain.Token).ConfigureAwait(false);
            }, CancellationToken.None);
            // A worker recording an ack waits for its commit, whatever the token: past the budget, writes that do not
            // go through are given up, which ends those waits.
            if (!await Within(stopping, (left > TimeSpan.Zero ? left : TimeSpan.Zero) + TimeSpan.FromTicks(reserve.Ticks / 4)).ConfigureAwait(false))
            {
                GiveUpStalledWrites();
                await Within(stopping, TimeSpan.FromTicks(reserve.Ticks / 4)).ConfigureAwait(false);
            }
        }
        foreach (var d in _dispatchers)
            await d.DisposeAsync().ConfigureAwait(false);
        await _projections.DisposeAsync().ConfigureAwait(false);

        // Acks and a final checkpoint, if the disk takes them in the reserve; a disk that refuses writes is not
        // waited for at all.
        if (StorageStall is not null || _log.Failure is not null)
            GiveUpStalledWrites();
        var final = Task.Run(async () =>
        {
            if (_log.Failure is null)
                _log.CommitAndWait();
            await CheckpointAndTruncateAsync(CancellationToken.None).ConfigureAwait(false);
            if (_log.Failure is null)
                _log.CommitAndWait();
        }, CancellationToken.None);
        if (!await Within(final, reserve - TimeSpan.FromTicks(reserve.Ticks / 4)).ConfigureAwait(false))
        {
            GiveUpStalledWrites();
            await Within(final, TimeSpan.FromTicks(reserve.Ticks / 4)).ConfigureAwait(false);
        }
        EngineLog.Stopped(_logger, _log.Commits, _log.Commits == 0 ? 0 : _log.CommitMilliseconds / _log.Commits, Delivered,
            _time.GetElapsedTime(Interlocked.Read(ref _shutdownRequestedTicks)).TotalMilliseconds);
    }

    /// <summary>Whether <paramref name="task"/> ended within <paramref name="timeout"/> (its exception, if any, is logged, not thrown).</summary>
    private async Task<bool> Within(Task task, TimeSpan timeout)
    {
        try
        {
            await task.WaitAsync(timeout > TimeSpan.Zero ? timeout : TimeSpan.Zero, TimeProvider.System).ConfigureAwait(false); // the real budget, whatever the engine's clock
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            EngineLog.ShutdownStepFailed(_logger, ex);
            return true;
        }
    }

    /// <summary>Writes under <c>DataDir</c> that fail are failed instead of retried (shutdown with a disk that refuses them).</summary>
    private void GiveUpStalledWrites()
    {
        if (DeviceIo.IsAbandoned(DataDir))
            return;
        DeviceIo.Abandon(DataDir);
        EngineLog.WritesAbandoned(_logger, StorageStall ?? _log.Failure?.Message ?? "the final commit or checkpoint did not finish in the shutdown's reserve");
    }

    /// <summary>Stops (if not stopped) and closes everything.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        await Outbound.DisposeAsync().ConfigureAwait(false);
        _log.Dispose();
        _quarantine.Dispose();
        _deadLetters.Dispose();
        _dedupe.Dispose();
        _states.Dispose();
        Metrics.Dispose();
        _http.Dispose();
        _stop.Dispose();
        Tenants.Dispose();
        _dirLock.Dispose();
    }
}

internal static partial class EngineLog
{
    [LoggerMessage(4001, LogLevel.Information, "Tenant {Tenant}: webhooks at /webhooks/{Tenant}, events forwarded to {Target}")]
    public static partial void TenantReady(ILogger logger, string tenant, string target);

    [LoggerMessage(4002, LogLevel.Information, "Event log recovered: [{Begin}, {Tail}), {Acked} acks above the delivered watermarks kept ({Below} below them not), {Replayed} dedupe marks replayed")]
    public static partial void Recovered(ILogger logger, long begin, long tail, int acked, long below, int replayed);

    [LoggerMessage(4004, LogLevel.Information, "Stopped {ShutdownMs:F0} ms after the shutdown began: {Commits} group commits of the event log (mean {MeanCommitMs:F2} ms), {Delivered} events delivered")]
    public static partial void Stopped(ILogger logger, long commits, double meanCommitMs, long delivered, double shutdownMs);

    [LoggerMessage(4005, LogLevel.Warning, "Tenant {Tenant}: no inbound message for {Seconds:0} s (InboundSilence {LimitSeconds:0} s, inside active hours): is Meta still sending to this webhook?")]
    public static partial void InboundSilent(ILogger logger, string tenant, double seconds, double limitSeconds);

    [LoggerMessage(4006, LogLevel.Information, "Tenant {Tenant}: inbound messages again (or outside active hours)")]
    public static partial void InboundResumed(ILogger logger, string tenant);

    [LoggerMessage(4007, LogLevel.Critical, "Damage found in {Store}: {Detail}. /readyz fails until an operator clears it (POST /admin/damage/clear)")]
    public static partial void DamageFound(ILogger logger, string store, string detail);

    [LoggerMessage(4008, LogLevel.Critical, "Storage stalled: {Reason}. Nothing acknowledged is lost; it is retried until the disk takes writes again")]
    public static partial void StorageStalled(ILogger logger, string reason);

    [LoggerMessage(4009, LogLevel.Warning, "Storage writes go through again after {Seconds:0.0} s; {Refused} webhooks were answered 503 meanwhile (Meta retries them)")]
    public static partial void StorageResumed(ILogger logger, double seconds, long refused);

    [LoggerMessage(4010, LogLevel.Error, "Shutting down with writes that do not go through ({Reason}): they are given up, not waited for; everything acknowledged was already durable")]
    public static partial void WritesAbandoned(ILogger logger, string reason);

    [LoggerMessage(4011, LogLevel.Error, "A shutdown step failed; the shutdown goes on")]
    public static partial void ShutdownStepFailed(ILogger logger, Exception exception);

    [LoggerMessage(4012, LogLevel.Information, "Data directory: {Path} (FastIngest:DataDir '{Configured}')")]
    public static partial void DataDirectory(ILogger logger, string path, string configured);

    [LoggerMessage(4013, LogLevel.Error, "{Reason} (logged once; /readyz fails and fastingest_checkpoints_skipped_total counts until one fits)")]
    public static partial void CheckpointSkipped(ILogger logger, string reason);

    [LoggerMessage(4014, LogLevel.Warning, "Checkpoints fit again, after {Skipped} skipped since start")]
    public static partial void CheckpointFitsAgain(ILogger logger, long skipped);

    [LoggerMessage(4015, LogLevel.Warning, "The disk of {DataDir} holds {TotalBytes} bytes in all, less than these storage sizes need ({FixedBytes}: README, Sizing); checkpoints will be skipped and the event log not truncated")]
    public static partial void DiskTooSmall(ILogger logger, string dataDir, long totalBytes, long fixedBytes);

    [LoggerMessage(4016, LogLevel.Information, "Tenant {Tenant}: removed by a reload; its backlog up to {Address} is delivered and its dispatchers stopped")]
    public static partial void TenantRetired(ILogger logger, string tenant, long address);

    [LoggerMessage(4003, LogLevel.Warning, "The event log holds events of tenant {Tenant}, which is not configured (first at {Address}); they are kept, and the log is not truncated past them, until the tenant is configured again")]
    public static partial void OrphanRecords(ILogger logger, string tenant, long address);
}
