using System.Diagnostics.Metrics;
using FastIngest.Tenancy;

namespace FastIngest.Telemetry;

/// <summary>One destination's dispatch figures (of one tenant) at the moment of a scrape.</summary>
/// <param name="Tenant">The tenant id.</param>
/// <param name="Forwarded">Events delivered since start.</param>
/// <param name="Retried">Failed attempts scheduled for a retry since start.</param>
/// <param name="DeadLettered">Events sent to the dead-letter queue since start.</param>
/// <param name="BacklogEvents">Events read from the log and not yet delivered or dead-lettered.</param>
/// <param name="OldestUnforwardedAgeSeconds">Age of the oldest of those (since FastIngest received it), 0 for none.</param>
/// <param name="Circuit">The circuit breaker of the tenant's bot URL now.</param>
/// <param name="CircuitOpened">Times that breaker opened since start.</param>
/// <param name="WorkerFaults">Unexpected exceptions caught in the destination's reader and workers since start (each restarted what failed).</param>
/// <param name="Destination">The destination's name (<c>forward</c> for a tenant without <c>Destinations</c>).</param>
public readonly record struct DispatchStats(string Tenant, long Forwarded, long Retried, long DeadLettered, long BacklogEvents, double OldestUnforwardedAgeSeconds, Dispatch.CircuitState Circuit = Dispatch.CircuitState.Closed, long CircuitOpened = 0, long WorkerFaults = 0, string Destination = Destinations.DestinationSpec.ForwardName);

/// <summary>
/// FastIngest's <see cref="System.Diagnostics.Metrics"/> instruments (meter <c>FastIngest</c>) and their Prometheus
/// exporter for <c>/metrics</c>. Counters and gauges are observable instruments read at scrape time from counters the
/// hot path bumps with <see cref="Interlocked"/>; the two latency histograms (seconds) are recorded per commit and
/// per request.
/// </summary>
public sealed class FastIngestMetrics : IDisposable
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "FastIngest";

    private static readonly double[] s_latencyBuckets = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly Meter _meter = new(MeterName);

    /// <summary>Creates the instruments over live sources, read at each scrape (<paramref name="tenants"/>: the tenants configured now).</summary>
    public FastIngestMetrics(Func<IReadOnlyList<Tenant>> tenants, Func<IReadOnlyList<DispatchStats>> dispatch, Func<long> deadLetters, Func<long> dataDirBytes, Func<long> dedupeLogBytes, Outbound.OutboundService? outbound = null, TimeProvider? time = null, Storage.DamageReport? damage = null, Func<long>? checkpointsSkipped = null)
    {
        ArgumentNullException.ThrowIfNull(tenants);
        ArgumentNullException.ThrowIfNull(dispatch);
        var clock = time ?? TimeProvider.System;
        // The runtime's own figures for the stall analysis: every GC pause blocks requests (workstation GC).
        _meter.CreateObservableCounter("fastingest_gc_pause_seconds_total", () => GC.GetTotalPauseDuration().TotalSeconds, description: "Time the process spent paused for garbage collections since start (GC.GetTotalPauseDuration).");
        _meter.CreateObservableCounter("fastingest_gc_collections_total", () => new[]
        {
            new Measurement<long>(GC.CollectionCount(0), new KeyValuePair<string, object?>("generation", "0")),
            new Measurement<long>(GC.CollectionCount(1), new KeyValuePair<string, object?>("generation", "1")),
            new Measurement<long>(GC.CollectionCount(2), new KeyValuePair<string, object?>("generation", "2")),
        }, description: "Garbage collections since start, by generation (a gen 2 one includes the lower ones).");
        _meter.CreateObservableCounter("fastingest_allocated_bytes_total", () => GC.GetTotalAllocatedBytes(), description: "Bytes allocated on the managed heap since start, all threads (GC.GetTotalAllocatedBytes): divided by requests, the allocation per request of the running server.");
        _meter.CreateObservableCounter("fastingest_requests_total", () => PerTenantResult(tenants()), description: "Webhook POSTs by tenant and result (accepted, quarantined, unauthorized, too_large, unsupported_media_type, unavailable).");
        _meter.CreateObservableCounter("fastingest_signature_failures_total", () => PerTenant(tenants(), t => t.Counters.Requests(RequestResult.Unauthorized)), description: "Webhook POSTs refused for a missing, malformed or wrong X-Hub-Signature-256.");
        _meter.CreateObservableCounter("fastingest_signature_key_used_total", () => tenants().SelectMany(t => t.Counters.SignatureKeysUsed.Select((n, i) => (n, i)).Where(k => k.i < t.KeyCount || k.n > 0).Select(k => new Measurement<long>(k.n, new KeyValuePair<string, object?>("tenant", t.Id), new KeyValuePair<string, object?>("key_index", k.i.ToString(System.Globalization.CultureInfo.InvariantCulture))))),
            description: "Webhooks authenticated by each accepted secret: the app secret X-Hub-Signature-256 matched (key_index 0 is AppSecret, then AppSecrets:{n}), or, with Inbound:Auth Header, the header value (0 is HeaderValue, then HeaderValues:{n}). When the old one stops counting, it can be removed.");
        _meter.CreateObservableCounter("fastingest_events_accepted_total", () => PerTenant(tenants(), t => t.Counters.EventsAccepted), description: "New events durably recorded.");
        _meter.CreateObservableCounter("fastingest_duplicate_events_total", () => PerTenant(tenants(), t => t.Counters.Duplicates), description: "Events that repeated one already recorded (Meta's at-least-once delivery).");
        _meter.CreateObservableGauge("fastingest_inbound_message_age_seconds", () => tenants().Select(t => new Measurement<double>(t.Silence.SecondsSinceMessage(clock.GetUtcNow().ToUnixTimeMilliseconds()), new KeyValuePair<string, object?>("tenant", t.Id))), description: "Seconds since the tenant's last inbound message (since start if none).");
        _meter.CreateObservableGauge("fastingest_inbound_silent", () => tenants().Select(t => new Measurement<long>(t.Silence.IsSilent(clock.GetUtcNow()) ? 1 : 0, new KeyValuePair<string, object?>("tenant", t.Id))), description: "1 while the tenant has had no inbound message for longer than its InboundSilence inside its active hours.");
        _meter.CreateObservableCounter("fastingest_events_forwarded_total", () => Dispatch(dispatch, d => d.Forwarded), description: "Events delivered, by tenant and destination.");
        _meter.CreateObservableCounter("fastingest_forward_retries_total", () => Dispatch(dispatch, d => d.Retried), description: "Failed deliveries scheduled for a retry.");
        _meter.CreateObservableCounter("fastingest_events_dead_lettered_total", () => Dispatch(dispatch, d => d.DeadLettered), description: "Events sent to the dead-letter queue.");
        _meter.CreateObservableGauge("fastingest_backlog_events", () => Dispatch(dispatch, d => d.BacklogEvents), description: "Events read for delivery and not yet delivered or dead-lettered.");
        _meter.CreateObservableGauge("fastingest_oldest_unforwarded_age_seconds", () => DispatchDouble(dispatch, d => d.OldestUnforwardedAgeSeconds), description: "Age of the oldest event waiting for delivery, in seconds.");
        _meter.CreateObservableGauge("fastingest_forward_circuit_state", () => Dispatch(dispatch, d => (long)d.Circuit), description: "Circuit breaker of the destination: 0 closed, 1 open (sends wait), 2 half-open (one probe out).");
        _meter.CreateObservableCounter("fastingest_forward_circuit_opens_total", () => Dispatch(dispatch, d => d.CircuitOpened), description: "Times the circuit breaker of the destination opened (a failed probe counts again).");
        _meter.CreateObservableCounter("fastingest_dispatch_worker_faults_total", () => Dispatch(dispatch, d => d.WorkerFaults), description: "Unexpected exceptions in a destination's log reader or delivery workers; each restarted what failed and retried the event it held.");
        _meter.CreateObservableGauge("fastingest_dead_letters", deadLetters, description: "Open entries in the dead-letter queue.");
        if (checkpointsSkipped is not null)
            _meter.CreateObservableCounter("fastingest_checkpoints_skipped_total", checkpointsSkipped, description: "Checkpoints skipped because their index files would not have fit (free space of DataDir's disk, or Storage:MaxDiskBytes); the log is not truncated until one fits.");
        if (damage is not null)
        {
            _meter.CreateObservableCounter("fastingest_storage_damage_total", () => damage.FoundSinceStart.Select(kv => new Measurement<long>(kv.Value, new KeyValuePair<string, object?>("store", kv.Key))), description: "Damaged log ranges cut out and stores started empty, found at start-up, by store (events, quarantine, deadletter, outbound, dedupe, state, window).");
            _meter.CreateObservableGauge("fastingest_storage_damage_open", () => (long)damage.Open.Count, description: "Damage reports not yet cleared by an operator (POST /admin/damage/clear); /readyz fails while above 0.");
        }
        _meter.CreateObservableGauge("fastingest_data_dir_bytes", dataDirBytes, description: "Bytes used by files under DataDir (sampled every second).");
        _meter.CreateObservableGauge("fastingest_dedupe_log_bytes", dedupeLogBytes, description: "Bytes of the dedupe store's log still held (48 per event within DedupeTtl; the head past the TTL is cut at checkpoints).");
        if (outbound is not null)
        {
            _meter.CreateObservableCounter("fastingest_outbound_messages_total", () => OutboundOutcomes(outbound), description: "Sends by tenant and outcome: queued, accepted, sent, delivered, read, failed, rejected (by Meta), refused_by_policy (outside the 24-hour window, never sent).");
            _meter.CreateObservableGauge("fastingest_outbound_queued", () => outbound.TenantStats().Select(t => new Measurement<long>(t.Queued, new KeyValuePair<string, object?>("tenant", t.Tenant))), description: "Sends waiting for their tokens (or their backoff).");
            _meter.CreateObservableCounter("fastingest_outbound_throttled_total", () => outbound.TenantStats().Select(t => new Measurement<long>(t.Counters.Throttled, new KeyValuePair<string, object?>("tenant", t.Tenant))), description: "Throttling answers from Meta (130429, 131056, 80007...).");
            _meter.CreateObservableCounter("fastingest_outbound_retries_total", () => outbound.TenantStats().Select(t => new Measurement<long>(t.Counters.Retried, new KeyValuePair<string, object?>("tenant", t.Tenant))), description: "Sends retried after a transient failure (5xx, timeout, 131000).");
            _meter.CreateObservableCounter("fastingest_outbound_read_receipts_total", () => outbound.TenantStats().Select(t => new Measurement<long>(t.Counters.ReadReceipts, new KeyValuePair<string, object?>("tenant", t.Tenant))), description: "Read receipts (mark as read, typing indicator) passed straight to Meta; not sends, not subject to the 24-hour window.");
            _meter.CreateObservableCounter("fastingest_outbound_scheduler_faults_total", () => outbound.SchedulerFaults, description: "Unexpected exceptions of the send scheduler; each was logged and the scheduler restarted with the sends still queued.");
            _meter.CreateObservableGauge("fastingest_outbound_paused", () => outbound.TenantStats().Select(t => new Measurement<long>(t.Paused ? 1 : 0, new KeyValuePair<string, object?>("tenant", t.Tenant))), description: "1 while the tenant's sends are paused because Meta refused its access token (code 190).");
            _meter.CreateObservableGauge("fastingest_outbound_phone_rate", () => outbound.PhoneBuckets.Select(b => new Measurement<double>(b.Rate, new KeyValuePair<string, object?>("phone_number_id", b.Name))), description: "Messages/s the phone number's bucket allows now (its configured tier, or less after throttling answers).");
        }
        CommitLatency = _meter.CreateHistogram<double>("fastingest_commit_latency_seconds", description: "Group commit of the event log, from issue to durable, in seconds.");
        AckLatency = _meter.CreateHistogram<double>("fastingest_ack_latency_seconds", description: "Webhook POST from start of handling to its 200, in seconds (includes the group commit).");
        Exporter = new PrometheusExporter(_meter, s_latencyBuckets);
    }

    /// <summary><c>fastingest_commit_latency_seconds</c>.</summary>
    public Histogram<double> CommitLatency { get; }

    /// <summary><c>fastingest_ack_latency_seconds</c>.</summary>
    public Histogram<double> AckLatency { get; }

    /// <summary>
    /// Adds <c>fastingest_config_reloads_total{result="applied"|"refused"}</c> over <paramref name="reload"/> (created
    /// after the engine, by the host that maps <c>POST /admin/reload</c>).
    /// </summary>
    public void ObserveReloads(Hosting.ConfigReload reload)
    {
        ArgumentNullException.ThrowIfNull(reload);
        _meter.CreateObservableCounter("fastingest_config_reloads_total", () => new[]
        {
            new Measurement<long>(reload.Applied, new KeyValuePair<string, object?>("result", "applied")),
            new Measurement<long>(reload.Refused, new KeyValuePair<string, object?>("result", "refused")),
        }, description: "Configuration reloads (POST /admin/reload, an edited appsettings.json) applied, and refused for a bad or restart-only value (the running configuration kept).");
    }

    /// <summary>Renders <c>/metrics</c>.</summary>
    public PrometheusExporter Exporter { get; }

    private static IEnumerable<Measurement<long>> PerTenantResult(IReadOnlyList<Tenant> tenants)
    {
        foreach (var t in tenants)
        {
            foreach (var result in Enum.GetValues<RequestResult>())
                yield return new(t.Counters.Requests(result), new("tenant", t.Id), new("result", Label(result)));
        }
    }

    private static IEnumerable<Measurement<long>> OutboundOutcomes(Outbound.OutboundService outbound)
    {
        foreach (var t in outbound.TenantStats())
        {
            foreach (var outcome in Enum.GetValues<Outbound.OutboundOutcome>())
                yield return new(t.Counters.Outcomes(outcome), new("tenant", t.Tenant), new("outcome", outcome == Outbound.OutboundOutcome.RefusedByPolicy ? "refused_by_policy" : outcome.ToString().ToLowerInvariant()));
        }
    }

    private static string Label(RequestResult result) => result switch
    {
        RequestResult.Accepted => "accepted",
        RequestResult.Quarantined => "quarantined",
        RequestResult.Unauthorized => "unauthorized",
        RequestResult.TooLarge => "too_large",
        RequestResult.UnsupportedMediaType => "unsupported_media_type",
        _ => "unavailable",
    };

    private static IEnumerable<Measurement<long>> PerTenant(IReadOnlyList<Tenant> tenants, Func<Tenant, long> value)
        => tenants.Select(t => new Measurement<long>(value(t), new KeyValuePair<string, object?>("tenant", t.Id)));

    private static IEnumerable<Measurement<long>> Dispatch(Func<IReadOnlyList<DispatchStats>> dispatch, Func<DispatchStats, long> value)
        => dispatch().Select(d => new Measurement<long>(value(d), new KeyValuePair<string, object?>("tenant", d.Tenant), new KeyValuePair<string, object?>("destination", d.Destination)));

    private static IEnumerable<Measurement<double>> DispatchDouble(Func<IReadOnlyList<DispatchStats>> dispatch, Func<DispatchStats, double> value)
        => dispatch().Select(d => new Measurement<double>(value(d), new KeyValuePair<string, object?>("tenant", d.Tenant), new KeyValuePair<string, object?>("destination", d.Destination)));

    /// <summary>Stops the exporter and disposes the meter.</summary>
    public void Dispose()
    {
        Exporter.Dispose();
        _meter.Dispose();
    }
}
