namespace FastIngest.Telemetry;

/// <summary>The result label of a webhook request in <c>fastingest_requests_total</c>.</summary>
public enum RequestResult
{
    /// <summary>200: recorded (new events appended, or all were duplicates).</summary>
    Accepted,
    /// <summary>200: authentic but unparseable, kept in the quarantine log.</summary>
    Quarantined,
    /// <summary>401: missing, duplicated, malformed or wrong <c>X-Hub-Signature-256</c>.</summary>
    Unauthorized,
    /// <summary>413: over <c>MaxBodyBytes</c>.</summary>
    TooLarge,
    /// <summary>415: not JSON.</summary>
    UnsupportedMediaType,
    /// <summary>503: log full for too long, over the disk quota, or a write failed; Meta retries.</summary>
    Unavailable,
}

/// <summary>
/// One tenant's ingest counters: plain fields bumped with <see cref="Interlocked"/> on the request path (no
/// allocation, no lock), read by the metrics exporter when scraped.
/// </summary>
public sealed class TenantCounters
{
    private readonly long[] _requests = new long[Enum.GetValues<RequestResult>().Length];
    private long _eventsAccepted;
    private readonly long[] _signatureKeys;
    private long _duplicates;

    /// <summary>Counts one request with its result.</summary>
    public void Request(RequestResult result) => Interlocked.Increment(ref _requests[(int)result]);

    /// <summary>Counts the events of an accepted request: <paramref name="events"/> in it, <paramref name="newEvents"/> new.</summary>
    public void Events(int events, int newEvents)
    {
        if (newEvents > 0)
            Interlocked.Add(ref _eventsAccepted, newEvents);
        if (events > newEvents)
            Interlocked.Add(ref _duplicates, events - newEvents);
    }

    /// <summary>Counters of a tenant that accepts <paramref name="signatureKeys"/> secrets (app secrets, or header values).</summary>
    public TenantCounters(int signatureKeys = 1) => _signatureKeys = new long[Math.Max(1, signatureKeys)];

    /// <summary>Counts a webhook whose signature matched app secret <paramref name="index"/>.</summary>
    public void SignatureKeyUsed(int index) => Interlocked.Increment(ref _signatureKeys[index]);

    /// <summary>Webhooks so far whose signature matched each accepted app secret, by its index.</summary>
    public IReadOnlyList<long> SignatureKeysUsed => [.. _signatureKeys.Select((_, i) => Interlocked.Read(ref _signatureKeys[i]))];

    /// <summary>Requests so far with <paramref name="result"/>.</summary>
    public long Requests(RequestResult result) => Interlocked.Read(ref _requests[(int)result]);

    /// <summary>New events appended so far.</summary>
    public long EventsAccepted => Interlocked.Read(ref _eventsAccepted);

    /// <summary>Events that were duplicates of ones already recorded.</summary>
    public long Duplicates => Interlocked.Read(ref _duplicates);
}
