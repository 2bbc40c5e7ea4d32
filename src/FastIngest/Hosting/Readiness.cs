using FastIngest.Delivery;
using FastIngest.Dispatch;
using FastIngest.Storage;
using FastIngest.Tenancy;

namespace FastIngest.Hosting;

/// <summary><c>/readyz</c>: why the server should not get traffic now, from every stage's own state.</summary>
internal sealed class Readiness(DamageReport damage, EventLog log, DiskWatch disk, Retention retention, TenantRegistry tenants, Outbound.OutboundService outbound,
    Projections.ProjectionFollower projections, Func<IReadOnlyList<DestinationDispatcher>> dispatchers, TimeProvider time)
{
    /// <summary>
    /// Why the server should not get traffic now, one line per reason (empty when ready): damage start-up found and
    /// nobody cleared, the event log failed a write, storage stalls, checkpoints do not fit, <c>DataDir</c> is over its
    /// quota, a tenant has had no inbound message for longer than its <c>InboundSilence</c> inside its active hours,
    /// the send scheduler or the projections failed unexpectedly in the last 5 minutes, a tenant's sends are paused
    /// (code 190), or a destination's reader or worker failed in the last 5 minutes or its oldest undelivered event
    /// is older than its <c>MaxBacklogAge</c> (the line names the tenant and the destination).
    /// </summary>
    public IReadOnlyList<string> NotReadyReasons()
    {
        var reasons = new List<string>();
        foreach (var d in damage.Open)
            reasons.Add($"damage found at start-up (#{d.Id}, {d.FoundAt:u}): {d.Detail}; clear with POST /admin/damage/clear once handled");
        if (log.Failure is { } failure)
            reasons.Add($"event log: a write failed ({failure.Message}); no webhook can be recorded");
        if (disk.StorageStall is { } stall)
            reasons.Add(stall);
        if (retention.SkipReason is { } skipped)
            reasons.Add(skipped);
        if (disk.OverDiskQuota)
            reasons.Add($"disk: DataDir holds {disk.DataDirBytes} bytes, over Storage:MaxDiskBytes {disk.MaxDiskBytes}; webhooks get 503");
        var now = time.GetUtcNow();
        foreach (var t in tenants.All)
        {
            if (t.Silence.IsSilent(now))
                reasons.Add($"tenant {t.Id}: no inbound message for {t.Silence.SecondsSinceMessage(now.ToUnixTimeMilliseconds()):0} s, over InboundSilence {t.Options.InboundSilence.TotalSeconds:0} s inside its active hours (is Meta still sending to this webhook?)");
        }
        if (outbound.RecentSchedulerFault() is { } schedulerFault)
            reasons.Add(schedulerFault);
        foreach (var (tenant, _, queued, paused) in outbound.TenantStats())
        {
            if (paused)
                reasons.Add($"tenant {tenant}: sends paused, Meta refused the access token (code 190); {queued} sends wait");
        }
        if (projections.RecentFault() is { } projectionFault)
            reasons.Add($"projections (delivery state, windows, send statuses): {projectionFault}");
        foreach (var d in dispatchers())
        {
            var who = d.Destination.Name == Destinations.DestinationSpec.ForwardName ? $"tenant {d.Tenant.Id}" : $"tenant {d.Tenant.Id}, destination {d.Destination.Name}";
            if (d.RecentFault() is { } fault)
                reasons.Add($"{who}: {fault}");
            var stats = d.Stats();
            var limit = d.Destination.Policy.MaxBacklogAge;
            if (stats.OldestUnforwardedAgeSeconds > limit.TotalSeconds)
                reasons.Add($"{who}: oldest undelivered event is {stats.OldestUnforwardedAgeSeconds:0} s old, over {(d.Destination.FromForward ? "Forward:" : "")}MaxBacklogAge {limit.TotalSeconds:0} s ({stats.BacklogEvents} events waiting)");
        }
        return reasons;
    }
}
