using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using FastIngest.Configuration;
using FastIngest.Delivery;
using FastIngest.Ingest;
using FastIngest.Parsing;
using FastIngest.Storage;
using FastIngest.Tenancy;
using Microsoft.Extensions.Logging;

namespace FastIngest.Outbound;

/// <summary>What <see cref="OutboundService.SubmitAsync"/> decided.</summary>
/// <param name="Message">The send (the first one, for a repeat of an idempotency key); null when refused.</param>
/// <param name="Created">False for a repeat: nothing new was queued.</param>
/// <param name="Durable">Completes when the send is durable.</param>
/// <param name="RefusedBecause">Why the policy refused it (outside the customer service window), else null.</param>
public readonly record struct SubmitResult(OutboundMessage? Message, bool Created, Task Durable, string? RefusedBecause);

/// <summary>
/// The send tier: takes sends from bots (<see cref="SubmitAsync"/>), queues them durably (<see cref="OutboundBook"/>),
/// refuses free-form messages outside the 24-hour customer service window (<see cref="CustomerWindowStore"/>), sends
/// them under every rate limit (<see cref="OutboundScheduler"/>), and drives each through its lifecycle from Meta's
/// answer and then from the status webhooks the ingest path receives for its wamid. Each lifecycle step from
/// accepted on is also delivered to the tenant's bot as an event (<see cref="LifecycleEvent"/>), through the event log
/// like a webhook: once the step is committed in the outbound log its event is ingested (deduplicated by its event
/// id) and committed in the event log, and the book is told (an emitted mark); events not marked emitted when the
/// process stopped, however it stopped, are emitted again at the next start, so each reaches the bot once.
/// Layout: <c>DataDir/outbound/</c> (sends and steps), <c>DataDir/window/</c> (last inbound per customer).
/// </summary>
public sealed class OutboundService : IAsyncDisposable
{
    /// <summary>The <c>field</c> of lifecycle events forwarded to bots.</summary>
    public const string LifecycleField = LifecycleEvent.Field;

    private readonly OutboundOptions _options;
    private readonly EventLog _events;
    private readonly IngestPipeline _ingest;
    private readonly SendIndex _index;
    private readonly object _coldGate = new();
    private Task _coldTail = Task.CompletedTask;
    private int _coldPending;
    private readonly DeliveryStateStore _states;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    // Replaced whole by a reload (tenants added or removed), never changed in place: lookups take no lock.
    private volatile Dictionary<string, OutboundLane> _byPhone = new(StringComparer.Ordinal);
    private volatile Dictionary<string, OutboundLane> _byTenant = new(StringComparer.Ordinal);
    private volatile OutboundLane[] _lanes = [];
    private readonly OutboundScheduler _scheduler;
    private readonly GraphClient _graph;
    private readonly Dictionary<string, (long Outage, HashSet<string> Customers)> _holding = new(StringComparer.Ordinal);
    private Task _pump = Task.CompletedTask;
    private static readonly JsonSerializerOptions s_plainJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Opens the book and the window store under <paramref name="dataDir"/> and builds a lane per tenant with phone
    /// numbers. Lifecycle events go into <paramref name="events"/> through <paramref name="ingest"/>, which
    /// deduplicates them like webhooks.
    /// </summary>
    /// <exception cref="IOException">The data directory cannot be used.</exception>
    public OutboundService(FastIngestOptions options, TenantRegistry tenants, IngestPipeline ingest, EventLog events, DeliveryStateStore states, HttpClient http, string dataDir, TimeProvider time, ILoggerFactory loggerFactory, Storage.DamageReport? damage = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(tenants);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _options = options.Outbound;
        _events = events;
        _ingest = ingest;
        _states = states;
        _time = time;
        _logger = loggerFactory.CreateLogger("FastIngest.Outbound");
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var indexDir = Path.Combine(dataDir, "outbound-index");
        SendIndex OpenIndex() => new(indexDir, options.Storage.SendIndexBytes, options.Storage.SendMemoryBytes, _options.Retention, time, loggerFactory.CreateLogger("FastIngest.Outbound.Index"));
        _index = damage is null ? OpenIndex() : StoreRecovery.OpenOrReset(indexDir, "outbound-index", OpenIndex, damage, time, _logger,
            "rebuilt from the whole outbound log at this start; nothing is lost");
        Book = new OutboundBook(Path.Combine(dataDir, "outbound"), _index, _options.MaxBodyBytes + 4096, Math.Max(options.Storage.LogMemoryBytes / 4, 1L << 20),
            now - (long)_options.Retention.TotalMilliseconds, _options.Retention, loggerFactory.CreateLogger("FastIngest.Outbound.Log"));
        Windows = damage is null
            ? new CustomerWindowStore(Path.Combine(dataDir, "window"), options.Storage.WindowIndexBytes, options.Storage.WindowMemoryBytes, time, loggerFactory.CreateLogger("FastIngest.Window"))
            : StoreRecovery.OpenOrReset(Path.Combine(dataDir, "window"), "window", () => new CustomerWindowStore(Path.Combine(dataDir, "window"), options.Storage.WindowIndexBytes, options.Storage.WindowMemoryBytes, time, loggerFactory.CreateLogger("FastIngest.Window")), damage, time, _logger,
                "rebuilt from the inbound messages still in the event log; a customer whose last message is older is outside the 24-hour window until they write again (free-form sends get refused_by_policy)");
        foreach (var tenant in tenants.All)
        {
            if (LaneFor(tenant) is { } lane)
                _lanes = [.. _lanes, lane];
        }
        _graph = new GraphClient(http, new Uri(_options.GraphUrl), _options.Timeout);
        _scheduler = new OutboundScheduler(_lanes, this, _graph, _options, time, _logger);
    }

    /// <summary>Builds and registers <paramref name="tenant"/>'s lane (null when it lists no phone number).</summary>
    private OutboundLane? LaneFor(Tenant tenant)
    {
        if (tenant.Options.Outbound.PhoneNumberIds.Count == 0)
            return null;
        var lane = new OutboundLane(tenant, _options, _time);
        lock (_lanesGate)
        {
            _byTenant = new Dictionary<string, OutboundLane>(_byTenant, StringComparer.Ordinal) { [tenant.Id] = lane };
            var byPhone = new Dictionary<string, OutboundLane>(_byPhone, StringComparer.Ordinal);
            foreach (var phone in tenant.Options.Outbound.PhoneNumberIds)
                byPhone[phone] = lane;
            _byPhone = byPhone;
        }
        if (!string.IsNullOrEmpty(tenant.Options.Outbound.HoldingMessage))
            tenant.Outage.Sink = (outage, phone, customer, ts) => Hold(lane, outage, phone, customer, ts);
        return lane;
    }

    private readonly object _lanesGate = new();

    /// <summary>Takes sends for <paramref name="tenant"/> (added by a reload) when it lists phone numbers.</summary>
    internal void AddTenant(Tenant tenant)
    {
        if (LaneFor(tenant) is not { } lane)
            return;
        lock (_lanesGate)
            _lanes = [.. _lanes, lane];
        _scheduler.AddLane(lane);
    }

    /// <summary>
    /// Takes no more sends for <paramref name="tenant"/> (removed by a reload: its numbers answer 404); those it has
    /// queued still go out.
    /// </summary>
    internal void RemoveTenant(Tenant tenant)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        lock (_lanesGate)
        {
            if (!_byTenant.TryGetValue(tenant.Id, out var lane))
                return;
            _byTenant = new Dictionary<string, OutboundLane>(_byTenant.Where(kv => kv.Value != lane), StringComparer.Ordinal);
            _byPhone = new Dictionary<string, OutboundLane>(_byPhone.Where(kv => kv.Value != lane), StringComparer.Ordinal);
        }
    }

    /// <summary>Gives <paramref name="tenant"/>'s lane the send credentials of <paramref name="next"/> (a reload).</summary>
    internal void Rotate(Tenant tenant, Configuration.TenantOutboundOptions next)
    {
        if (LaneOfTenant(tenant.Id) is not { } lane)
            return;
        lane.Rotate(next);
        _scheduler.Wake(); // a tenant paused by a refused token tries at once
    }

    /// <summary><c>Outbound:MaxBodyBytes</c>.</summary>
    public int MaxBodyBytes => _options.MaxBodyBytes;

    /// <summary><c>Outbound:MaxWait</c>.</summary>
    public TimeSpan MaxWait => _options.MaxWait;

    /// <summary>Every send remembered.</summary>
    public OutboundBook Book { get; }

    /// <summary>The customer service windows.</summary>
    public CustomerWindowStore Windows { get; }

    /// <summary>Every lane (those of tenants removed by a reload included, while they have sends queued).</summary>
    internal IReadOnlyList<OutboundLane> Lanes => _lanes;

    /// <summary>The phone numbers' buckets (rate now, cuts) for <c>/metrics</c>.</summary>
    public IEnumerable<ThroughputBucket> PhoneBuckets => _scheduler.PhoneBuckets;

    /// <summary>
    /// Passes a read receipt (<see cref="ReadReceipt"/>) of <paramref name="lane"/>'s number straight to Meta, with the
    /// tenant's token (or the bot's, passed through), and returns Meta's answer as Meta gave it; null when Meta did not
    /// answer within <c>Outbound:Timeout</c>. Counted in <c>fastingest_outbound_read_receipts_total</c>.
    /// </summary>
    internal Task<(int Status, byte[] Body, string? ContentType)?> ForwardReadReceiptAsync(OutboundLane lane, string version, string phoneNumberId, byte[] body, string authorization, CancellationToken cancellationToken)
    {
        lane.Counters.CountReadReceipt();
        return _graph.ForwardAsync(version, phoneNumberId, lane.Bearer ?? authorization, body, cancellationToken, lane.SendsUrl);
    }

    /// <summary>Unexpected exceptions of the send scheduler since start (<c>fastingest_outbound_scheduler_faults_total</c>).</summary>
    public long SchedulerFaults => _scheduler.Faults;

    /// <summary>The send scheduler's last fault if it was in the last 5 minutes (it was restarted), else null.</summary>
    public string? RecentSchedulerFault() => _scheduler.RecentFault();

    /// <summary>Fault injection (tests): the scheduler loop throws this once.</summary>
    internal Exception? InjectSchedulerFault
    {
        set => _scheduler.InjectFault = value;
    }

    /// <summary>Each sending tenant's id, counters, queued sends and whether an expired token paused it.</summary>
    public IEnumerable<(string Tenant, OutboundCounters Counters, int Queued, bool Paused)> TenantStats()
        => Lanes.Select(l => (l.Tenant.Id, l.Counters, l.QueueLength, l.Paused));

    /// <summary>True when <paramref name="tenant"/> sends through FastIngest (it lists phone numbers).</summary>
    internal bool Sends(Tenant tenant) => _byTenant.ContainsKey(tenant.Id);

    /// <summary>The lane of <paramref name="phoneNumberId"/>, or null when no tenant lists it.</summary>
    internal OutboundLane? LaneOf(string phoneNumberId) => _byPhone.GetValueOrDefault(phoneNumberId);

    internal OutboundLane? LaneOfTenant(string tenant) => _byTenant.GetValueOrDefault(tenant);

    /// <summary>
    /// Queues what the book still holds unanswered (a restart), then starts sending and emitting lifecycle events. A
    /// send whose passed-through token was lost with the restart (it is never written to disk) ends failed, saying so.
    /// </summary>
    public void Start()
    {
        foreach (var m in Book.Unanswered())
        {
            if (!_byTenant.TryGetValue(m.Tenant, out var lane))
                continue;
            if (m.TokenLost && lane.Bearer is null)
                _ = FailAsync(lane, m, 0, "the bot's access token passed through with this send is held in memory only and was lost when FastIngest restarted before Meta accepted it; send it again");
            else
                _scheduler.Enqueue(lane, m);
        }
        _scheduler.Start();
        _pump = Task.Run(PumpAsync);
    }

    /// <summary>The idempotency key of a send without an <c>Idempotency-Key</c> header: <c>sha256:</c> and the hex hash of phone number and body.</summary>
    public static string BodyKey(string phoneNumberId, ReadOnlySpan<byte> body)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes(phoneNumberId));
        hash.AppendData([0]);
        hash.AppendData(body);
        return "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>
    /// An idempotency key scoped to the caller of a pass-through send: <paramref name="key"/>, a unit separator and
    /// the first 32 hex digits of SHA-256 of the passed-through <paramref name="authorization"/> (the token itself is
    /// never kept). A send by another Meta token under the same key is another send.
    /// </summary>
    public static string CallerKey(string key, string authorization)
        => key + "\u001f" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(authorization)))[..32];

    /// <summary>
    /// Queues a checked send of <paramref name="lane"/>'s tenant, or finds the first send of the same idempotency key,
    /// or refuses a free-form message outside the customer service window.
    /// </summary>
    /// <exception cref="IOException">The outbound log cannot be written.</exception>
    /// <exception cref="InvalidOperationException">The outbound log stayed full for 5 s.</exception>
    internal async ValueTask<SubmitResult> SubmitAsync(OutboundLane lane, string version, string phoneNumberId, SendRequest request, byte[] body, string key, string? authorization, bool windowKnownOpen = false)
    {
        // A repeat of a key whose send has left memory: the first send's result, never a second send.
        if (Book.FindKey(lane.Tenant.Id, key) is null && await Book.FindKeyAsync(lane.Tenant.Id, key).ConfigureAwait(false) is { } earlier)
            return new SubmitResult(earlier, false, Task.CompletedTask, null);
        if (!request.IsTemplate && !windowKnownOpen && Book.FindKey(lane.Tenant.Id, key) is null)
        {
            var last = Windows.LastInbound(lane.Tenant.Id, phoneNumberId, request.To);
            var now = _time.GetUtcNow().ToUnixTimeSeconds();
            if (last == 0 || now - last > (long)CustomerWindowStore.Window.TotalSeconds)
            {
                lane.Counters.Count(OutboundOutcome.RefusedByPolicy);
                var when = last == 0 ? "no inbound message from this customer is known" : $"the customer last wrote at {DateTimeOffset.FromUnixTimeSeconds(last):u}";
                return new SubmitResult(null, false, Task.CompletedTask,
                    $"Re-engagement message: a free-form message may only go within the 24-hour customer service window, and {when}; send a template instead (refused by FastIngest before Meta)");
            }
        }
        var (message, created, durable) = await Book.AddAsync(lane.Tenant.Id, phoneNumberId, key, request.To, request.Type, lane.Bearer is null ? authorization : null, version, body, _time.GetUtcNow().ToUnixTimeMilliseconds());
        if (created)
        {
            lane.Counters.Count(OutboundOutcome.Queued);
            _ = EnqueueWhenDurable(lane, message, durable);
        }
        return new SubmitResult(message, created, durable, null);
    }

    private async Task EnqueueWhenDurable(OutboundLane lane, OutboundMessage message, Task durable)
    {
        try
        {
            await durable.ConfigureAwait(false);
            _scheduler.Enqueue(lane, message);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            OutboundLog.SendCrashed(_logger, ex, lane.Tenant.Id, message.Id);
        }
    }

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Records that <paramref name="message"/> goes to Meta now; completes when that is durable (false: the outbound log failed).</summary>
    internal Task<bool> SubmittedAsync(OutboundMessage message)
        => Book.RecordAsync(message, new OutboundStep(OutboundStatus.Submitted, Now, 0, 0, null));

    internal async Task AcceptedAsync(OutboundLane lane, OutboundMessage message, GraphAnswer answer)
    {
        message.MetaAnswer = (answer.HttpStatus, answer.Body);
        if (!await MoveAsync(lane, message, new OutboundStep(OutboundStatus.Accepted, Now, 0, 0, null), answer.Wamid).ConfigureAwait(false))
            return;
        // Statuses of this wamid may have come in before Meta's answer did: take them from the delivery state.
        if (answer.Wamid is not null && _states.Find(lane.Tenant.Id, answer.Wamid) is { } delivery)
        {
            var moves = new List<Task<bool>>();
            foreach (var change in delivery.History)
                moves.Add(MoveAsync(lane, message, new OutboundStep(Map(change.Status), Now, change.MetaUnixSeconds, 0, null), null));
            await Task.WhenAll(moves).ConfigureAwait(false);
        }
    }

    internal Task RejectedAsync(OutboundLane lane, OutboundMessage message, GraphAnswer answer)
    {
        message.MetaAnswer = (answer.HttpStatus, answer.Body);
        OutboundLog.Ended(_logger, lane.Tenant.Id, message.Id, "rejected", answer.Code, answer.Detail ?? "");
        return MoveAsync(lane, message, new OutboundStep(OutboundStatus.Rejected, Now, 0, answer.Code, answer.Detail), null);
    }

    internal Task FailAsync(OutboundLane lane, OutboundMessage message, int code, string detail)
    {
        OutboundLog.Ended(_logger, lane.Tenant.Id, message.Id, "failed", code, detail);
        return MoveAsync(lane, message, new OutboundStep(OutboundStatus.Failed, Now, 0, code, detail), null);
    }

    /// <summary>
    /// A status webhook for <paramref name="wamid"/> read by <paramref name="tenant"/>'s dispatcher (in log order; again
    /// after a restart, which changes nothing: steps only move forward).
    /// </summary>
    internal void OnStatus(Tenant tenant, ReadOnlySpan<byte> wamid, MessageStatus status, long metaUnixSeconds, int errorCode, string? errorTitle)
    {
        if (!_byTenant.TryGetValue(tenant.Id, out var lane) || status == MessageStatus.None)
            return;
        var id = Encoding.UTF8.GetString(wamid);
        var step = new OutboundStep(Map(status), Now, metaUnixSeconds, status == MessageStatus.Failed ? errorCode : 0, status == MessageStatus.Failed ? errorTitle : null);
        lock (_coldGate)
        {
            // Decided and placed in the outbound log now, in the dispatcher's order; it shows once committed.
            if (_coldPending == 0 && Book.FindByWamid(tenant.Id, id) is { } message)
            {
                _ = MoveAsync(lane, message, step, null);
                return;
            }
            // Not in memory (answered long ago, or not FastIngest's): read back in the dispatcher's order, behind
            // every status still being read back, so no later status overtakes it.
            _coldPending++;
            _coldTail = ColdStatusAsync(_coldTail, lane, id, step);
        }
    }

    private async Task ColdStatusAsync(Task before, OutboundLane lane, string wamid, OutboundStep step)
    {
        try
        {
            await before.ConfigureAwait(false);
            if (await Book.FindByWamidAsync(lane.Tenant.Id, wamid).ConfigureAwait(false) is { } message)
                _ = MoveAsync(lane, Book.Adopt(message), step, null);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            OutboundLog.SendCrashed(_logger, ex, lane.Tenant.Id, wamid);
        }
        finally
        {
            lock (_coldGate)
                _coldPending--;
        }
    }

    /// <summary>Completes when every status being read back so far has been decided.</summary>
    private Task WhenColdDecidedAsync()
    {
        lock (_coldGate)
            return _coldTail;
    }

    private static OutboundStatus Map(MessageStatus status) => status switch
    {
        MessageStatus.Sent => OutboundStatus.Sent,
        MessageStatus.Delivered => OutboundStatus.Delivered,
        MessageStatus.Read => OutboundStatus.Read,
        MessageStatus.Failed => OutboundStatus.Failed,
        _ => OutboundStatus.Queued,
    };

    /// <summary>Records a step; once it is committed, counts it (its lifecycle event goes out from the book). False: not a move forward, or not durable.</summary>
    private async Task<bool> MoveAsync(OutboundLane lane, OutboundMessage message, OutboundStep step, string? wamid)
    {
        if (!await Book.RecordAsync(message, step, wamid).ConfigureAwait(false))
            return false;
        lane.Counters.Count(step.Status switch
        {
            OutboundStatus.Accepted => OutboundOutcome.Accepted,
            OutboundStatus.Sent => OutboundOutcome.Sent,
            OutboundStatus.Delivered => OutboundOutcome.Delivered,
            OutboundStatus.Read => OutboundOutcome.Read,
            OutboundStatus.Rejected => OutboundOutcome.Rejected,
            _ => OutboundOutcome.Failed,
        });
        return true;
    }

    /// <summary>
    /// Ingests the events of committed lifecycle steps (<see cref="OutboundBook.Lifecycle"/>) into the event log, where
    /// the tenant's dispatcher delivers them like webhooks, a batch at a time; once a batch is committed there the book
    /// is told (<see cref="OutboundBook.MarkEmitted"/>). An event already in the log (emitted again after a restart) is
    /// dropped by dedupe. While the event log cannot take them they are held back, and emitted again at the next start.
    /// </summary>
    private async Task PumpAsync()
    {
        var reader = Book.Lifecycle;
        var batch = new List<LifecycleItem>(256);
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            while (batch.Count < 256 && reader.TryRead(out var item))
                batch.Add(item);
            if (Internal.FaultInjection.HoldLifecycleEvents)
                continue;
            var waitFor = -1L;
            var all = true;
            foreach (var item in batch)
            {
                if (!_byTenant.TryGetValue(item.Tenant, out var lane))
                    continue;
                var address = await IngestAsync(lane.Tenant, item.Body).ConfigureAwait(false);
                if (address == long.MinValue)
                {
                    all = false;
                    break;
                }
                waitFor = Math.Max(waitFor, address);
            }
            try
            {
                if (waitFor >= 0)
                    await _events.WaitForCommitAsync(waitFor).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                all = false;
            }
            if (all)
                Book.MarkEmitted(batch[^1].StepAddress, batch.Count);
            else
                LogHeldBack();
        }
    }

    private int _heldBackLogged;

    private void LogHeldBack()
    {
        if (Interlocked.Exchange(ref _heldBackLogged, 1) == 0)
            OutboundLog.LifecycleHeldBack(_logger, _events.Failure?.Message ?? "the event log did not commit");
    }

    /// <summary>Ingests one lifecycle event, waiting out backpressure; the address to wait for (-1: nothing new), or <see cref="long.MinValue"/> when the event log failed.</summary>
    private async ValueTask<long> IngestAsync(Tenant tenant, byte[] body)
    {
        var outcome = _ingest.Accept(tenant, body, body.Length);
        while (outcome.Status == IngestStatus.Backpressure)
        {
            if (_events.Failure is not null)
                return long.MinValue;
            await Task.Delay(2).ConfigureAwait(false);
            outcome = outcome.Pending is { } pending ? _ingest.RetryAppend(tenant, body, body.Length, pending) : _ingest.Accept(tenant, body, body.Length);
        }
        return outcome.WaitForAddress;
    }

    /// <summary>
    /// An inbound message while the tenant's bot has been failing for <c>HoldingAfter</c>: queue the holding message to
    /// that customer, once per customer per outage (the idempotency key holds across restarts), inside the window.
    /// </summary>
    private void Hold(OutboundLane lane, long outage, string phoneNumberId, string customer, long metaUnixSeconds)
    {
        if (_time.GetUtcNow().ToUnixTimeSeconds() - metaUnixSeconds > (long)CustomerWindowStore.Window.TotalSeconds || !_byPhone.ContainsKey(phoneNumberId))
            return;
        lock (_holding)
        {
            if (!_holding.TryGetValue(lane.Tenant.Id, out var seen) || seen.Outage != outage)
                _holding[lane.Tenant.Id] = seen = (outage, new HashSet<string>(StringComparer.Ordinal));
            if (!seen.Customers.Add(customer))
                return;
        }
        var body = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["messaging_product"] = "whatsapp",
            ["recipient_type"] = "individual",
            ["to"] = customer,
            ["type"] = "text",
            ["text"] = new Dictionary<string, string> { ["body"] = lane.Options.HoldingMessage! },
        }, s_plainJson);
        var key = $"holding:{outage}:{phoneNumberId}:{customer}";
            _ = HoldAsync(lane, phoneNumberId, customer, body, key);
    }

    private async Task HoldAsync(OutboundLane lane, string phoneNumberId, string customer, byte[] body, string key)
    {
        try
        {
            var result = await SubmitAsync(lane, _options.GraphVersion, phoneNumberId, new SendRequest(customer, "text"), body, key, null, windowKnownOpen: true).ConfigureAwait(false);
            if (result.Created)
                OutboundLog.Holding(_logger, lane.Tenant.Id, customer, result.Message!.Id);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException)
        {
            OutboundLog.SendCrashed(_logger, ex, lane.Tenant.Id, key);
        }
    }

    /// <summary>
    /// Checkpoints the window store, forgets sends past <c>Outbound:Retention</c>, and commits the outbound log once
    /// every step recorded so far is in it (the statuses they came from may be cut from the event log next), with the
    /// emitted mark.
    /// </summary>
    public async Task CheckpointAsync(CancellationToken cancellationToken = default)
    {
        await Windows.CheckpointAsync(cancellationToken).ConfigureAwait(false);
        await WhenColdDecidedAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        await Book.WhenRecordedAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        await Book.CheckpointAsync(Now, Now - (long)_options.Retention.TotalMilliseconds, cancellationToken).ConfigureAwait(false);
    }

    private int _sendingStopped;
    private int _stopped;

    /// <summary>Stops sending: no new request goes to Meta; those in flight may finish (and record Meta's answer) until <paramref name="deadline"/>.</summary>
    public async Task StopSendingAsync(CancellationToken deadline)
    {
        if (Interlocked.Exchange(ref _sendingStopped, 1) == 0)
            await _scheduler.StopAsync(deadline).ConfigureAwait(false);
    }

    /// <summary>
    /// After <see cref="StopSendingAsync"/> and once the dispatchers no longer apply statuses: waits (until
    /// <paramref name="deadline"/>) for the steps still being recorded and writes their lifecycle events to the event
    /// log, then commits the outbound log with the emitted mark. What the deadline cuts is emitted at the next start.
    /// </summary>
    public async Task StopAsync(CancellationToken deadline)
    {
        await StopSendingAsync(deadline).ConfigureAwait(false);
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
            return;
        try
        {
            await WhenColdDecidedAsync().WaitAsync(deadline).ConfigureAwait(false);
            await Book.WhenRecordedAsync().WaitAsync(deadline).ConfigureAwait(false);
            Book.CompleteLifecycle();
            await _pump.WaitAsync(deadline).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        Book.Commit();
    }

    /// <summary>Stops (if not stopped) and closes the stores.</summary>
    public async ValueTask DisposeAsync()
    {
        // Bounded even when a commit never comes (a disk given up at shutdown): what is cut is redone at the next start.
        using (var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
            await StopAsync(bound.Token).ConfigureAwait(false);
        await _scheduler.DisposeAsync().ConfigureAwait(false);
        foreach (var lane in Lanes)
            lane.Dispose();
        Book.Dispose();
        _index.Dispose();
        Windows.Dispose();
    }
}
