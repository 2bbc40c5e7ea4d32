using System.Text;
using FastIngest.Parsing;
using FastIngest.Storage;
using FastIngest.Tenancy;
using Microsoft.Extensions.Logging;

namespace FastIngest.Ingest;

/// <summary>What became of one verified webhook body.</summary>
public enum IngestStatus : byte
{
    /// <summary>Parsed; new events appended (or none were new). Answer 200 once <see cref="IngestOutcome.WaitForAddress"/> is committed.</summary>
    Accepted = 0,
    /// <summary>Authentic but unparseable: kept in the quarantine log. Answer 200 once committed: a retry would not fix it.</summary>
    Quarantined,
    /// <summary>
    /// The log's memory is full of uncommitted data: wait for commit progress and call
    /// <see cref="IngestPipeline.RetryAppend"/> with <see cref="IngestOutcome.Pending"/> (or, when that is null,
    /// <see cref="IngestPipeline.Accept"/> again).
    /// </summary>
    Backpressure,
}

/// <summary>
/// A verified, parsed and hashed batch whose append met backpressure: its new events' indices, dedupe keys and
/// stripes, kept so that a retry only re-checks dedupe and appends, without parsing or hashing again. Allocated only
/// under backpressure.
/// </summary>
public sealed class PendingIngest
{
    internal PendingIngest(int events, long receivedUnixMs, ReadOnlySpan<int> indices, ReadOnlySpan<DedupeKey> keys, ReadOnlySpan<int> stripes)
    {
        Events = events;
        ReceivedUnixMs = receivedUnixMs;
        Count = indices.Length;
        Indices = indices.ToArray();
        Keys = keys.ToArray();
        Stripes = stripes.ToArray();
    }

    /// <summary>Events in the payload.</summary>
    public int Events { get; }

    internal long ReceivedUnixMs { get; }

    internal int Count { get; set; }

    internal int[] Indices { get; }

    internal DedupeKey[] Keys { get; }

    internal int[] Stripes { get; }
}

/// <summary>
/// The result of <see cref="IngestPipeline.Accept"/>. When <see cref="WaitForAddress"/> is not -1, the 200 may go out
/// only after <see cref="WaitLog"/> has committed that address (the request's own record, or the in-flight record of
/// a duplicate it relies on).
/// </summary>
public readonly record struct IngestOutcome(IngestStatus Status, int Events, int NewEvents, long WaitForAddress, EventLog? WaitLog, PendingIngest? Pending = null);

/// <summary>
/// The synchronous core of ingest, after the signature check: parse, compute each event's id, dedupe against the
/// FASTER KV store and append the new events to the event log as one batch record. Check and mark of each key
/// happen under its stripe lock, together with the append, so a duplicate racing its original can never both pass.
/// Allocation-free in steady state (per-thread scratch; the caller owns the body buffer).
/// </summary>
public sealed class IngestPipeline
{
    [ThreadStatic]
    private static IngestScratch? t_scratch;

    private readonly EventLog _log;
    private readonly EventLog _quarantine;
    private readonly DedupeStore _dedupe;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly long _ttlMs;
    private readonly int _boot;
    private readonly long _recoveredTail;
    private readonly int _maxEvents;
    private readonly BootTails? _bootTails;
    private long _parses;
    private long _backpressured;

    /// <summary>Default of <c>FastIngest:MaxEventsPerPayload</c>: 10,000 (Meta batches up to 1,000 updates per POST).</summary>
    public const int DefaultMaxEvents = 10_000;

    /// <summary>Creates the pipeline.</summary>
    /// <param name="log">Where new events are appended.</param>
    /// <param name="quarantine">Where unparseable authentic payloads are kept.</param>
    /// <param name="dedupe">The seen-event index.</param>
    /// <param name="dedupeTtl">How long a seen event id suppresses its repeats.</param>
    /// <param name="boot">This process start's number (<see cref="BootCounter"/>).</param>
    /// <param name="recoveredTail">The event log's tail when it was opened: marks of an earlier boot at or past it were never committed.</param>
    /// <param name="time">Clock.</param>
    /// <param name="logger">For quarantine reports.</param>
    /// <param name="maxEvents">Most events accepted in one payload; a payload with more is quarantined.</param>
    /// <param name="bootTails">
    /// Each boot's recovered tail (<see cref="BootTails"/>): a mark of an earlier boot counts only below what that boot
    /// got committed. Null: only below <paramref name="recoveredTail"/> (which is not enough across several crashes).
    /// </param>
    public IngestPipeline(EventLog log, EventLog quarantine, DedupeStore dedupe, TimeSpan dedupeTtl, int boot, long recoveredTail, TimeProvider time, ILogger logger, int maxEvents = DefaultMaxEvents, BootTails? bootTails = null)
    {
        _bootTails = bootTails;
        _maxEvents = maxEvents;
        _log = log;
        _quarantine = quarantine;
        _dedupe = dedupe;
        _ttlMs = (long)dedupeTtl.TotalMilliseconds;
        _boot = boot;
        _recoveredTail = recoveredTail;
        _time = time;
        _logger = logger;
    }

    /// <summary>Payloads quarantined since start.</summary>
    public long QuarantinedCount => Interlocked.Read(ref _quarantined);

    private long _quarantined;

    /// <summary>Payloads parsed by <see cref="Accept"/> since start (a retry after backpressure does not parse again).</summary>
    public long Parses => Interlocked.Read(ref _parses);

    /// <summary>Appends that met backpressure since start.</summary>
    public long Backpressured => Interlocked.Read(ref _backpressured);

    /// <summary>
    /// Ingests <paramref name="body"/>[..<paramref name="length"/>], already verified as <paramref name="tenant"/>'s.
    /// Runs synchronously on the calling thread (dedupe misses may read from disk); never awaits.
    /// </summary>
    /// <exception cref="InvalidOperationException">The body is larger than a log record can be.</exception>
    public IngestOutcome Accept(Tenant tenant, byte[] body, int length)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        ArgumentNullException.ThrowIfNull(body);
        var scratch = t_scratch ??= new IngestScratch();
        var span = body.AsSpan(0, length);
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();

        Interlocked.Increment(ref _parses);
        var parsed = WebhookParser.Parse(span, scratch.Events);
        if (!parsed.Success)
            return Quarantine(tenant, body, length, now, parsed.ToString());

        var n = scratch.Events.Count;
        if (n > _maxEvents)
            return Quarantine(tenant, body, length, now, $"{n} events, over FastIngest:MaxEventsPerPayload ({_maxEvents})");
        if (n == 0)
            return new IngestOutcome(IngestStatus.Accepted, 0, 0, -1, null);
        scratch.EnsureCapacity(n);

        Span<byte> id = stackalloc byte[EventIdentity.MaxLength];
        var keys = scratch.Keys;
        var stripes = scratch.Stripes;
        var hasMessage = false;
        for (var i = 0; i < n; i++)
        {
            hasMessage |= scratch.Events[i].Kind == WebhookEventKind.Message;
            var idLength = EventIdentity.Write(span, in scratch.Events[i], id);
            keys[i] = EventIdentity.Key(tenant.IdUtf8, id[..idLength]);
            stripes[i] = DedupeStore.StripeOf(in keys[i]);
        }
        if (hasMessage)
        {
            tenant.Silence.MessageSeen(now);
            if (tenant.Outage.HoldingDue(now))
                Hold(tenant, span, scratch.Events);
        }
        var lockCount = SortUnique(stripes.AsSpan(0, n));

        // The events unique within the payload (the same event twice in one payload counts once) are the candidates.
        scratch.SeenInPayload.Reset(n);
        var candidates = 0;
        for (var i = 0; i < n; i++)
        {
            if (!scratch.SeenInPayload.Add(keys, i))
                continue;
            scratch.NewIndices[candidates] = i;
            scratch.NewKeys[candidates] = keys[i];
            candidates++;
        }
        var outcome = Locked(tenant, body, length, now, n, stripes.AsSpan(0, lockCount), scratch.NewIndices, scratch.NewKeys, candidates);
        if (outcome.Status != IngestStatus.Backpressure)
            return outcome;
        return outcome with { Pending = new PendingIngest(n, now, scratch.NewIndices.AsSpan(0, outcome.NewEvents), scratch.NewKeys.AsSpan(0, outcome.NewEvents), stripes.AsSpan(0, lockCount)) };
    }

    /// <summary>
    /// Tries the append of a batch that met backpressure again: its events are checked against dedupe once more (a
    /// copy may have been recorded meanwhile) and the rest appended; nothing is parsed or hashed again.
    /// </summary>
    public IngestOutcome RetryAppend(Tenant tenant, byte[] body, int length, PendingIngest pending)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        ArgumentNullException.ThrowIfNull(body);
        ArgumentNullException.ThrowIfNull(pending);
        var outcome = Locked(tenant, body, length, pending.ReceivedUnixMs, pending.Events, pending.Stripes, pending.Indices, pending.Keys, pending.Count);
        if (outcome.Status == IngestStatus.Backpressure)
        {
            pending.Count = outcome.NewEvents;
            return outcome with { Pending = pending };
        }
        return outcome;
    }

    private IngestOutcome Locked(Tenant tenant, byte[] body, int length, long now, int n, ReadOnlySpan<int> stripes, int[] indices, DedupeKey[] keys, int candidates)
    {
        var locked = 0;
        try
        {
            for (; locked < stripes.Length; locked++)
                Monitor.Enter(_dedupe.StripeLock(stripes[locked]));
            return DedupeAndAppend(tenant, body, length, now, n, indices, keys, candidates);
        }
        finally
        {
            for (var i = locked - 1; i >= 0; i--)
                Monitor.Exit(_dedupe.StripeLock(stripes[i]));
        }
    }

    /// <summary>
    /// Under the stripe locks: drops the candidates already marked (live) from <paramref name="indices"/> and
    /// <paramref name="keys"/>, compacting them in place, and appends the rest as one batch record. On backpressure
    /// the outcome's <see cref="IngestOutcome.NewEvents"/> is how many candidates are left in the arrays.
    /// </summary>
    private IngestOutcome DedupeAndAppend(Tenant tenant, byte[] body, int length, long now, int n, int[] indices, DedupeKey[] keys, int candidates)
    {
        var session = _dedupe.Rent();
        try
        {
            var newCount = 0;
            var waitFor = -1L;
            var committed = _log.CommittedUntilAddress;
            for (var c = 0; c < candidates; c++)
            {
                if (DedupeStore.TryGet(session, keys[c], out var entry) && IsLive(in entry, now))
                {
                    if (entry.LogAddress >= committed)
                        waitFor = Math.Max(waitFor, entry.LogAddress); // its original is still on its way to disk
                    continue;
                }
                indices[newCount] = indices[c];
                keys[newCount] = keys[c];
                newCount++;
            }

            if (newCount > 0)
            {
                var record = new BatchRecord(tenant.IdUtf8, now, indices, keys, newCount, body, length);
                if (!_log.TryAppend(record, out var address))
                {
                    Interlocked.Increment(ref _backpressured);
                    return new IngestOutcome(IngestStatus.Backpressure, n, newCount, -1, null);
                }
                var mark = new DedupeEntry { SeenUnixMs = now, LogAddress = address, Boot = _boot };
                for (var j = 0; j < newCount; j++)
                    DedupeStore.Put(session, keys[j], mark);
                waitFor = Math.Max(waitFor, address);
            }
            return new IngestOutcome(IngestStatus.Accepted, n, newCount, waitFor, waitFor >= 0 ? _log : null);
        }
        finally
        {
            _dedupe.Return(session);
        }
    }

    /// <summary>
    /// A mark counts while inside the TTL, unless an earlier boot made it for a record at or past what that boot got
    /// committed (<see cref="BootTails.CommittedBy"/>): that record never reached disk, so the event was never really
    /// accepted (a checkpoint had saved the mark before the commit), whatever later boots wrote at that address.
    /// </summary>
    private bool IsLive(in DedupeEntry entry, long now)
        => now - entry.SeenUnixMs < _ttlMs
            && (entry.Boot == _boot || entry.LogAddress < (_bootTails?.CommittedBy(entry.Boot) ?? _recoveredTail));

    /// <summary>Marks replayed from log records after a restart: same as a fresh mark of this boot.</summary>
    internal DedupeEntry ReplayMark(long receivedUnixMs, long address) => new() { SeenUnixMs = receivedUnixMs, LogAddress = address, Boot = _boot };

    /// <summary>True when a record received at <paramref name="receivedUnixMs"/> is still inside the TTL.</summary>
    internal bool WithinTtl(long receivedUnixMs) => _time.GetUtcNow().ToUnixTimeMilliseconds() - receivedUnixMs < _ttlMs;

    private IngestOutcome Quarantine(Tenant tenant, byte[] body, int length, long now, string reason)
    {
        var record = new QuarantineRecord(tenant.IdUtf8, now, Encoding.UTF8.GetBytes(reason), body, length);
        if (!_quarantine.TryAppend(record, out var address))
            return new IngestOutcome(IngestStatus.Backpressure, 0, 0, -1, null);
        Interlocked.Increment(ref _quarantined);
        IngestLog.Quarantined(_logger, tenant.Id, length, reason, address);
        return new IngestOutcome(IngestStatus.Quarantined, 0, 0, address, _quarantine);
    }

    /// <summary>The bot has been down for <c>HoldingAfter</c>: hand each customer who wrote to the send tier (cold path).</summary>
    private static void Hold(Tenant tenant, ReadOnlySpan<byte> body, EventBuffer events)
    {
        if (tenant.Outage.Sink is not { } sink)
            return;
        var outage = tenant.Outage.FailingSinceUnixMs;
        for (var i = 0; i < events.Count; i++)
        {
            ref readonly var e = ref events[i];
            if (e.Kind != WebhookEventKind.Message)
                continue;
            var phone = e.PhoneNumberId.RawValue(body);
            var from = e.From.RawValue(body);
            if (phone.IsEmpty || from.IsEmpty)
                continue;
            sink(outage, Encoding.UTF8.GetString(phone), Encoding.UTF8.GetString(from), Delivery.DeliveryState.ParseTimestamp(e.Timestamp.RawValue(body)));
        }
    }

    private static int SortUnique(Span<int> values)
    {
        values.Sort();
        var unique = 0;
        for (var i = 0; i < values.Length; i++)
        {
            if (unique == 0 || values[i] != values[unique - 1])
                values[unique++] = values[i];
        }
        return unique;
    }
}

/// <summary>Per-thread buffers of <see cref="IngestPipeline"/>, grown on demand and reused.</summary>
internal sealed class IngestScratch
{
    public EventBuffer Events { get; } = new(64);
    public DedupeKey[] Keys { get; private set; } = new DedupeKey[64];
    public DedupeKey[] NewKeys { get; private set; } = new DedupeKey[64];
    public int[] NewIndices { get; private set; } = new int[64];
    public int[] Stripes { get; private set; } = new int[64];
    public KeySet SeenInPayload { get; } = new();

    public void EnsureCapacity(int n)
    {
        if (Keys.Length >= n)
            return;
        var size = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)n);
        Keys = new DedupeKey[size];
        NewKeys = new DedupeKey[size];
        NewIndices = new int[size];
        Stripes = new int[size];
    }
}

/// <summary>An open-addressing set of indices into a key array, to spot an event repeated within one payload.</summary>
internal sealed class KeySet
{
    private int[] _slots = new int[128];
    private int _mask;

    public void Reset(int n)
    {
        var size = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, n * 2));
        if (_slots.Length < size)
            _slots = new int[size];
        _mask = size - 1;
        _slots.AsSpan(0, size).Fill(-1);
    }

    /// <summary>Adds keys[index]; false when an equal key was added before.</summary>
    public bool Add(DedupeKey[] keys, int index)
    {
        var slot = (int)keys[index].Low & _mask;
        while (true)
        {
            var existing = _slots[slot];
            if (existing < 0)
            {
                _slots[slot] = index;
                return true;
            }
            if (keys[existing] == keys[index])
                return false;
            slot = (slot + 1) & _mask;
        }
    }
}
