using System.Text;
using FastIngest.Dispatch;
using FastIngest.Ingest;
using FastIngest.Storage;
using FastIngest.Tenancy;

namespace FastIngest.Hosting;

/// <summary>
/// Puts what an operator asks for back into the event log: quarantined payloads that today's parser reads, and dead
/// letters for the destination that gave up on them. Both go in as new batch records, committed before the entry is
/// marked replayed, and flow from there like any webhook (the admin API's <c>.../replay</c> routes).
/// </summary>
internal sealed class EventReplays(TenantRegistry tenants, IngestPipeline pipeline, QuarantineLog quarantine, DeadLetterQueue deadLetters, EventLog log, Func<IReadOnlySet<(string Tenant, string Destination)>> destinations, TimeProvider time)
{
    /// <summary>See <see cref="FastIngestEngine.ReplayQuarantineAsync"/>.</summary>
    public async Task<(int Replayed, int Unparseable)> QuarantineAsync(string? tenant, long? id, CancellationToken cancellationToken)
    {
        var replayed = 0;
        var unparseable = 0;
        using var events = new Parsing.EventBuffer(64);
        foreach (var entry in quarantine.List(tenant))
        {
            if ((id is { } one && entry.Id != one) || tenants.Find(entry.Tenant) is not { } owner || quarantine.Find(entry.Id) is not { } found)
                continue;
            if (!Parsing.WebhookParser.Parse(found.Body, events).Success)
            {
                unparseable++;
                continue;
            }
            var outcome = pipeline.Accept(owner, found.Body, found.Body.Length);
            while (outcome.Status == IngestStatus.Backpressure)
            {
                await Task.Delay(5, cancellationToken).ConfigureAwait(false);
                outcome = pipeline.Accept(owner, found.Body, found.Body.Length);
            }
            if (outcome.WaitLog is { } log)
            {
                await log.WaitForCommitAsync(outcome.WaitForAddress).ConfigureAwait(false);
                await Task.Yield(); // off the commit thread
            }
            if (await quarantine.ResolveAsync(entry.Id, QuarantineResolution.Replayed, cancellationToken).ConfigureAwait(false))
                replayed++;
        }
        return (replayed, unparseable);
    }

    /// <summary>See <see cref="FastIngestEngine.ReplayDeadLettersAsync"/>.</summary>
    public async Task<int> DeadLettersAsync(string? tenant, long? id, string? destination, CancellationToken cancellationToken)
    {
        IReadOnlyList<DeadLetter> entries = id is { } one
            ? deadLetters.Find(one) is { } found ? [found] : []
            : deadLetters.List(tenant, destination);
        var replayed = 0;
        foreach (var entry in entries)
        {
            if ((tenant is not null && entry.Tenant != tenant) || (destination is not null && entry.Destination != destination))
                continue;
            if (tenants.Find(entry.Tenant.AsSpan()) is not { } owner || deadLetters.ReadPayload(entry.Id) is not { } payload)
                continue;
            if (!destinations().Contains((owner.Id, entry.Destination)))
                continue;
            var key = EventIdentity.Key(owner.IdUtf8, Encoding.UTF8.GetBytes(entry.EventId));
            var record = new BatchRecord(owner.IdUtf8, time.GetUtcNow().ToUnixTimeMilliseconds(), [0], [key], 1, payload, payload.Length, Destinations.DestinationSpec.IdOf(entry.Destination));
            await log.AppendDurableAsync(record, cancellationToken).ConfigureAwait(false);
            if (await deadLetters.ResolveAsync(entry.Id, DeadLetterResolution.Replayed, cancellationToken).ConfigureAwait(false))
                replayed++;
        }
        return replayed;
    }
}
