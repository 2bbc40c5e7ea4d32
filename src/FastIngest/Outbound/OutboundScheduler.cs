using System.Threading.RateLimiting;
using FastIngest.Configuration;
using FastIngest.Dispatch;
using Microsoft.Extensions.Logging;

namespace FastIngest.Outbound;

/// <summary>One tenant's side of the send tier: its queue, its buckets, its token.</summary>
internal sealed class OutboundLane : IDisposable
{
    public OutboundLane(Tenancy.Tenant tenant, OutboundOptions shared, TimeProvider time)
    {
        Tenant = tenant;
        var o = tenant.Options.Outbound;
        Options = o;
        Is360Dialog = o.Provider == "360dialog";
        SendsUrl = Is360Dialog ? o.BaseUrl.TrimEnd('/') + "/messages" : null;
        _credentials = new LaneCredentials(o, Is360Dialog);
        Quota = o.Rate > 0 ? new ThroughputBucket(tenant.Id, o.Rate, shared.RateRecoveryInterval, time) : null;
        Phones = [.. o.PhoneNumberIds.Select(p => new PhoneQueue(p, new ThroughputBucket(p, o.PhoneNumberRate, shared.RateRecoveryInterval, time)))];
        Pairs = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = o.PairBurst,
            TokensPerPeriod = 1,
            ReplenishmentPeriod = o.PairInterval,
            QueueLimit = 0,
            AutoReplenishment = true,
        }));
    }

    public Tenancy.Tenant Tenant { get; }
    public TenantOutboundOptions Options { get; }

    private volatile LaneCredentials _credentials;
    private int _bearerIndex;

    /// <summary>
    /// The tenant's credential as it goes out: <c>Bearer {AccessToken}</c> (Meta: <c>AccessToken</c>, then
    /// <c>AccessTokens:{n}</c>, from the first to the next each time Meta refuses one with code 190), the
    /// <c>D360-API-KEY</c> value (360dialog), or null when the bot's own header is passed through to Meta.
    /// </summary>
    public string? Bearer
    {
        get
        {
            var bearers = _credentials.Bearers;
            return bearers.Length == 0 ? null : bearers[Math.Min(Volatile.Read(ref _bearerIndex), bearers.Length - 1)];
        }
    }

    /// <summary>
    /// Meta refused <paramref name="used"/> (code 190): when it is the token in use and another follows it in the
    /// list, sends use that one from now on and this returns true (also when another send already moved on past it);
    /// false when there is no other token to try (the tenant pauses).
    /// </summary>
    public bool MoveToNextBearer(string used)
    {
        var bearers = _credentials.Bearers;
        var at = Array.IndexOf(bearers, used);
        if (at < 0)
            return Bearer != used; // the credentials were replaced by a reload since this send left
        if (at < Volatile.Read(ref _bearerIndex))
            return true;
        return at + 1 < bearers.Length && Interlocked.CompareExchange(ref _bearerIndex, at + 1, at) == at;
    }

    /// <summary>
    /// Takes the credentials of <paramref name="next"/> (a configuration reload): the access tokens (from the first
    /// again), the 360dialog API key and the bot tokens. A tenant paused by a refused token tries its next send at once.
    /// </summary>
    public void Rotate(TenantOutboundOptions next)
    {
        ArgumentNullException.ThrowIfNull(next);
        _credentials = new LaneCredentials(next, Is360Dialog);
        Volatile.Write(ref _bearerIndex, 0);
        if (Paused)
            Volatile.Write(ref PausedUntilUnixMs, 1); // in the past: the next send probes
    }

    /// <summary>Index of the access token in use (0 = the first), for the tests and the logs.</summary>
    public int BearerIndex => Volatile.Read(ref _bearerIndex);

    /// <summary>Whether sends go to 360dialog (<c>Outbound:Provider</c>) instead of Meta's Graph API.</summary>
    public bool Is360Dialog { get; }

    /// <summary>360dialog's <c>{BaseUrl}/messages</c>; null for Meta.</summary>
    public string? SendsUrl { get; }

    /// <summary><c>BotToken</c> and <c>BotTokens</c>: the values of the bot's credential.</summary>
    public Internal.SecretSet BotTokens => _credentials.BotTokens;

    /// <summary>True when <paramref name="presented"/> is one of <see cref="BotTokens"/>, prefixed by <paramref name="scheme"/> (fixed-time compare).</summary>
    public bool IsBotToken(string presented, string scheme = "") => BotTokens.IndexOf(presented, scheme) >= 0;

    public ThroughputBucket? Quota { get; }
    public PartitionedRateLimiter<string> Pairs { get; }
    public OutboundCounters Counters { get; } = new();

    /// <summary>Guards <see cref="Phones"/> and every queue in it.</summary>
    public object Gate { get; } = new();

    /// <summary>The queued sends of each of the tenant's numbers (<see cref="PhoneQueue"/>), in the order the scheduler visits them.</summary>
    public PhoneQueue[] Phones { get; }

    /// <summary>The number the scheduler looks at first next time (round robin over <see cref="Phones"/>). Scheduler only.</summary>
    public int NextPhone;

    /// <summary>The queue of <paramref name="phoneNumberId"/>.</summary>
    public PhoneQueue? Phone(string phoneNumberId)
    {
        foreach (var p in Phones)
        {
            if (p.PhoneNumberId == phoneNumberId)
                return p;
        }
        return null;
    }

    /// <summary>Unix ms until which the tenant is paused by an expired token (code 190); 0 when not paused.</summary>
    public long PausedUntilUnixMs;

    /// <summary>True while one send probes whether the token works again.</summary>
    public bool Probing;

    /// <summary>True while paused by an expired token.</summary>
    public bool Paused => Volatile.Read(ref PausedUntilUnixMs) != 0;

    /// <summary>Sends queued over all its numbers (not in flight).</summary>
    public int QueueLength
    {
        get
        {
            lock (Gate)
                return Phones.Sum(p => p.Count);
        }
    }

    public void Dispose()
    {
        Quota?.Dispose();
        foreach (var p in Phones)
            p.Bucket.Dispose();
        Pairs.Dispose();
    }
}

/// <summary>
/// Takes queued sends to Meta under every limit: one scheduler task visits the tenants round robin and takes at most
/// one send from each per round (deficit round robin with a quantum of one message: every send costs the same), so a
/// tenant's single reply waits at most one round behind another tenant's 100,000 queued campaign messages. Inside a
/// tenant it visits its numbers round robin, and inside a number its customers in turn (<see cref="PhoneQueue"/>): a
/// send goes when its number's bucket, its tenant's quota bucket and its recipient pair's bucket all hold a token; up
/// to <c>Outbound:MaxInFlight</c> requests are in flight at once, one per customer so their order holds. Sends held
/// back (a throttled number, a customer's pair limit or backoff) wait on timers and hold up no other number or
/// customer. The task sleeps until something can change: a new send, a send done, the earliest timer of a held-back
/// customer, a bucket's refill, the end of a pause; it never polls.
/// </summary>
internal sealed class OutboundScheduler : IAsyncDisposable
{
    private volatile OutboundLane[] _lanes;
    private readonly OutboundService _service;
    private readonly GraphClient _graph;
    private readonly OutboundOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly List<Task> _sends = [];
    // Retries and throttling answers come per send: during a Meta outage with a campaign queued, one line each would
    // flood the log. One line per tenant and code per 10 s, with the count held back (the metrics count them all).
    private readonly Internal.LogThrottle _retryLog;
    private readonly Func<OutboundMessage, (PhoneQueue.Verdict, long)> _check;
    private OutboundLane? _checking;
    private long _checkNow;
    private int _inFlight;
    private int _next;
    private Task _loop = Task.CompletedTask;

    public OutboundScheduler(IReadOnlyList<OutboundLane> lanes, OutboundService service, GraphClient graph, OutboundOptions options, TimeProvider time, ILogger logger)
    {
        _lanes = [.. lanes];
        _service = service;
        _graph = graph;
        _options = options;
        _time = time;
        _logger = logger;
        _check = Check;
        _retryLog = new Internal.LogThrottle(TimeSpan.FromSeconds(10), time);
    }

    /// <summary>Looks at every lane again now (a reload changed a lane's credentials or pause).</summary>
    public void Wake() => _wake.Release();

    /// <summary>Schedules <paramref name="lane"/>'s sends too (a tenant added by a reload).</summary>
    public void AddLane(OutboundLane lane)
    {
        lock (_sends)
            _lanes = [.. _lanes, lane];
        _wake.Release();
    }

    /// <summary>The phone numbers' buckets (for <c>/metrics</c>).</summary>
    public IEnumerable<ThroughputBucket> PhoneBuckets => _lanes.SelectMany(l => l.Phones).Select(p => p.Bucket);

    /// <summary>Requests to Meta in flight now.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    public void Start() => _loop = Task.Run(() => SuperviseAsync(_stop.Token));

    private long _faults;
    private long _lastFaultUnixMs;
    private string? _lastFault;

    /// <summary>Unexpected exceptions of the scheduler loop since start (each was logged and the loop restarted).</summary>
    public long Faults => Interlocked.Read(ref _faults);

    /// <summary>The last fault, if it was in the last 5 minutes (for <c>/readyz</c>), else null.</summary>
    public string? RecentFault()
        => _lastFault is { } fault && Now - Interlocked.Read(ref _lastFaultUnixMs) < 5 * 60 * 1000 ? fault : null;

    /// <summary>Fault injection (tests): thrown once from inside the loop (woken for it), as an unexpected bug would be.</summary>
    internal Exception? InjectFault
    {
        get => _injectFault;
        set
        {
            _injectFault = value;
            _wake.Release();
        }
    }

    private Exception? _injectFault;

    /// <summary>
    /// Runs the loop until <paramref name="ct"/> stops it. An unexpected exception (a bug: the loop is every tenant's
    /// sends) is logged, counted, shown on <c>/readyz</c> for 5 minutes, and the loop starts again after 1 s; the
    /// sends stay queued.
    /// </summary>
    private Task SuperviseAsync(CancellationToken ct) => Internal.Supervised.RunAsync(LoopAsync, OnFault, TimeSpan.FromSeconds(1), _time, ct);

    private void OnFault(Exception ex)
    {
        Interlocked.Increment(ref _faults);
        Interlocked.Exchange(ref _lastFaultUnixMs, Now);
        _lastFault = $"send scheduler failed ({ex.GetType().Name}: {ex.Message}) and was restarted";
        OutboundLog.SchedulerFaulted(_logger, ex);
    }

    /// <summary>Queues <paramref name="message"/> behind its customer's other sends on its number, and wakes the scheduler.</summary>
    public void Enqueue(OutboundLane lane, OutboundMessage message)
    {
        lock (lane.Gate)
            (lane.Phone(message.PhoneNumberId) ?? lane.Phones[0]).Add(message);
        _wake.Release();
    }

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private async Task LoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            if (InjectFault is { } fault)
            {
                InjectFault = null;
                throw fault;
            }
            var now = Now;
            var wake = long.MaxValue;
            var sent = false;
            var lanes = _lanes;
            for (var k = 0; k < lanes.Length && InFlight < _options.MaxInFlight; k++)
            {
                var lane = lanes[(_next + k) % lanes.Length];
                if (Pick(lane, now, ref wake) is { } message)
                {
                    sent = true;
                    Launch(lane, message);
                }
            }
            _next = (_next + 1) % Math.Max(1, lanes.Length);
            if (sent)
                continue;
            // Throttled rates recover even while nothing is queued (so /metrics shows the rate a send would get).
            var recovering = false;
            foreach (var lane in lanes)
            {
                foreach (var phone in lane.Phones)
                    recovering |= phone.Bucket.Recover();
                recovering |= lane.Quota?.Recover() == true;
            }
            if (recovering)
                wake = Math.Min(wake, now + (long)_options.RateRecoveryInterval.TotalMilliseconds);
            // Nothing can go now: sleep until a new send or a finished one (both release _wake) or the earliest timer.
            var delay = wake == long.MaxValue ? Timeout.InfiniteTimeSpan : TimeSpan.FromMilliseconds(Math.Clamp(wake - now, 1, int.MaxValue));
            await _wake.WaitAsync(delay, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The first send of <paramref name="lane"/> that may go now, with its tokens taken; null if none, with
    /// <paramref name="wake"/> lowered to when one might.
    /// </summary>
    private OutboundMessage? Pick(OutboundLane lane, long now, ref long wake)
    {
        if (lane.Paused)
        {
            if (lane.Probing)
                return null; // the probe's end wakes the scheduler
            var until = Volatile.Read(ref lane.PausedUntilUnixMs);
            if (now < until)
            {
                if (lane.QueueLength > 0)
                    wake = Math.Min(wake, until);
                return null;
            }
        }
        lock (lane.Gate)
        {
            var phones = lane.Phones;
            var any = false;
            foreach (var p in phones)
                any |= p.Count > 0;
            if (!any)
                return null;
            if (lane.Quota is { Available: false } quota)
            {
                wake = Math.Min(wake, now + (long)Math.Ceiling(quota.RefillInterval.TotalMilliseconds));
                return null;
            }
            _checking = lane;
            _checkNow = now;
            for (var i = 0; i < phones.Length; i++)
            {
                var phone = phones[(lane.NextPhone + i) % phones.Length];
                if (phone.Count == 0)
                    continue;
                phone.Promote(now);
                if (phone.HasReady && !phone.Bucket.Available)
                {
                    wake = Math.Min(wake, now + (long)Math.Ceiling(phone.Bucket.RefillInterval.TotalMilliseconds));
                    continue;
                }
                if (phone.Take(_check) is { } m)
                {
                    phone.Bucket.TryTake();
                    lane.Quota?.TryTake();
                    lane.Pairs.AttemptAcquire(m.PairKey).Dispose();
                    lane.NextPhone = (lane.NextPhone + i + 1) % phones.Length;
                    if (lane.Paused)
                        lane.Probing = true;
                    _checking = null;
                    return m;
                }
                wake = Math.Min(wake, phone.NextWakeUnixMs);
            }
            _checking = null;
            return null;
        }
    }

    /// <summary>Whether a customer's head send may go now (under the lane's lock, for <see cref="PhoneQueue.Take"/>).</summary>
    private (PhoneQueue.Verdict, long) Check(OutboundMessage m)
    {
        var lane = _checking!;
        var now = _checkNow;
        if (now - m.CreatedUnixMs > (long)_options.MaxAge.TotalMilliseconds)
        {
            _ = _service.FailAsync(lane, m, 0, $"not accepted within Outbound:MaxAge ({_options.MaxAge}) after {m.Attempts} attempts");
            return (PhoneQueue.Verdict.Drop, 0);
        }
        if (m.NotBeforeUnixMs > now)
            return (PhoneQueue.Verdict.WaitUntil, m.NotBeforeUnixMs);
        if (lane.Pairs.GetStatistics(m.PairKey)?.CurrentAvailablePermits < 1)
            return (PhoneQueue.Verdict.WaitUntil, now + (long)Math.Max(1, lane.Options.PairInterval.TotalMilliseconds)); // one pair token per PairInterval
        return (PhoneQueue.Verdict.Go, 0);
    }

    private void Launch(OutboundLane lane, OutboundMessage message)
    {
        Interlocked.Increment(ref _inFlight);
        // A stop lets requests in flight finish (cutting one would send it again after the restart); only the drain deadline cuts them.
        var task = SendAsync(lane, message, _abort.Token);
        lock (_sends)
        {
            _sends.RemoveAll(t => t.IsCompleted);
            _sends.Add(task);
        }
    }

    private async Task SendAsync(OutboundLane lane, OutboundMessage message, CancellationToken ct)
    {
        await Task.Yield();
        var requeue = false;
        try
        {
            var body = message.Body;
            // Placed in the log now, ahead of whatever Meta answers; not waited for: the request leaves when its token
            // was taken (waiting for a commit here would bunch sends up at Meta), and a send not answered for good goes
            // again after a restart whether or not this step made it to disk.
            _ = _service.SubmittedAsync(message);
            var used = message.Authorization ?? lane.Bearer ?? "";
            var answer = await _graph.SendAsync(message, used, body, ct, lane.SendsUrl).ConfigureAwait(false);
            requeue = await HandleAsync(lane, message, answer, used).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Cut by the drain deadline: it stays submitted in the book and goes out again after the next start.
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            OutboundLog.SendCrashed(_logger, ex, lane.Tenant.Id, message.Id);
            message.NotBeforeUnixMs = Now + (long)_options.MaxBackoff.TotalMilliseconds;
            requeue = true;
            lane.Probing = false; // a probe that crashed must not leave the tenant paused for good

        }
        lock (lane.Gate)
            (lane.Phone(message.PhoneNumberId) ?? lane.Phones[0]).Done(message.To, requeue && !ct.IsCancellationRequested ? message : null, Now);
        Interlocked.Decrement(ref _inFlight);
        _wake.Release();
    }

    /// <summary>Acts on Meta's answer (a final one is durable when this completes); true when the send goes back to the front of its queue.</summary>
    private async Task<bool> HandleAsync(OutboundLane lane, OutboundMessage message, GraphAnswer answer, string used)
    {
        var now = Now;
        if (lane.Paused)
        {
            // Only an answer from Meta past its token check proves the token works; a transient one (5xx, a timeout)
            // proves nothing: the tenant stays paused and the same send probes again after its backoff.
            if (answer.Class is not (MetaErrorClass.AuthExpired or MetaErrorClass.Transient))
            {
                Volatile.Write(ref lane.PausedUntilUnixMs, 0);
                OutboundLog.Resumed(_logger, lane.Tenant.Id);
            }
            lane.Probing = false;
        }
        switch (answer.Class)
        {
            case MetaErrorClass.None:
                message.TransientFailures = 0;
                await _service.AcceptedAsync(lane, message, answer).ConfigureAwait(false);
                return false;
            case MetaErrorClass.Permanent:
                await _service.RejectedAsync(lane, message, answer).ConfigureAwait(false);
                return false;
            case MetaErrorClass.Throughput:
            {
                lane.Counters.CountThrottled();
                var bucket = lane.Phone(message.PhoneNumberId)?.Bucket;
                bucket?.Cut();
                var delay = RetryDelay(message, answer);
                message.NotBeforeUnixMs = now + (long)delay.TotalMilliseconds;
                if (_retryLog.ShouldLog(lane.Tenant.Id, answer.Code, out var held))
                    OutboundLog.Throttled(_logger, lane.Tenant.Id, message.Id, answer.Code, message.PhoneNumberId, bucket?.Rate ?? 0, (long)delay.TotalMilliseconds, held);
                return true;
            }
            case MetaErrorClass.PairRate:
            {
                lane.Counters.CountThrottled();
                var delay = RetryDelay(message, answer);
                message.NotBeforeUnixMs = now + (long)delay.TotalMilliseconds; // the customer's FIFO waits behind it
                if (_retryLog.ShouldLog(lane.Tenant.Id, answer.Code, out var held))
                    OutboundLog.Throttled(_logger, lane.Tenant.Id, message.Id, answer.Code, message.To, 0, (long)delay.TotalMilliseconds, held);
                return true;
            }
            case MetaErrorClass.AuthExpired when lane.Bearer is null:
                // Pass-through: the token Meta refused is this request's, not the tenant's. It fails this send; pausing
                // the tenant would let anyone who reaches the port with a junk bearer stop every send.
                await _service.FailAsync(lane, message, answer.Code, $"Meta refused the access token passed through with this send: {answer.Detail}").ConfigureAwait(false);
                return false;
            case MetaErrorClass.AuthExpired when lane.MoveToNextBearer(used):
                // AccessTokens: the next token in the list takes over at once (a rotation whose first token was revoked).
                message.FreeAttempts++;
                OutboundLog.NextToken(_logger, lane.Tenant.Id, answer.Code, answer.Detail ?? "", lane.BearerIndex);
                return true;
            case MetaErrorClass.AuthExpired:
                Volatile.Write(ref lane.PausedUntilUnixMs, now + (long)_options.PausedRetryInterval.TotalMilliseconds);
                lane.Probing = false;
                message.FreeAttempts++; // not the send's fault
                OutboundLog.Paused(_logger, lane.Tenant.Id, answer.Code, answer.Detail ?? "", (long)_options.PausedRetryInterval.TotalSeconds);
                return true;
            default:
            {
                if (message.Attempts - message.FreeAttempts >= _options.MaxAttempts)
                {
                    await _service.FailAsync(lane, message, answer.Code, $"{message.Attempts - message.FreeAttempts} attempts (Outbound:MaxAttempts); last: {answer.Detail}").ConfigureAwait(false);
                    return false;
                }
                lane.Counters.CountRetried();
                var delay = RetryDelay(message, answer);
                message.NotBeforeUnixMs = now + (long)delay.TotalMilliseconds;
                if (_retryLog.ShouldLog(lane.Tenant.Id, answer.Code, out var held))
                    OutboundLog.Retrying(_logger, lane.Tenant.Id, message.Id, message.Attempts, answer.Detail ?? "", (long)delay.TotalMilliseconds, held);
                return true;
            }
        }
    }

    private TimeSpan RetryDelay(OutboundMessage message, GraphAnswer answer)
    {
        message.TransientFailures++;
        var backoff = Backoff.Delay(message.TransientFailures, _options.InitialBackoff, _options.MaxBackoff);
        return answer.RetryAfter is { } ra && ra > backoff && ra < TimeSpan.FromHours(1) ? ra : backoff;
    }

    /// <summary>Stops taking sends and waits for those in flight (each ends within <c>Outbound:Timeout</c>, or at <paramref name="deadline"/>).</summary>
    public async Task StopAsync(CancellationToken deadline)
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        Task[] sends;
        lock (_sends)
            sends = [.. _sends];
        try
        {
            await Task.WhenAll(sends).WaitAsync(deadline).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await _abort.CancelAsync().ConfigureAwait(false);
            try
            {
                // Cut requests end at once; one recording Meta's answer waits for its commit, which a disk given up
                // at shutdown never gives: not waited for past this (its send goes out again after the next start).
                await Task.WhenAll(sends).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
            await StopAsync(CancellationToken.None).ConfigureAwait(false);
        _stop.Dispose();
        _abort.Dispose();
        _wake.Dispose();
    }
}

/// <summary>One tenant's send credentials as configured (replaced whole by a reload, never changed in place).</summary>
internal sealed class LaneCredentials
{
    public LaneCredentials(TenantOutboundOptions o, bool is360Dialog)
    {
        Bearers = is360Dialog ? [o.ApiKey ?? ""]
            : [.. Internal.SecretSet.Values(o.AccessToken, o.AccessTokens).Select(t => "Bearer " + t)];
        BotTokens = new Internal.SecretSet(o.BotToken, o.BotTokens);
    }

    /// <summary>The <c>Authorization</c> values to try in order (one <c>D360-API-KEY</c> value for 360dialog); empty: pass-through.</summary>
    public string[] Bearers { get; }

    /// <summary>The bot's accepted credentials.</summary>
    public Internal.SecretSet BotTokens { get; }
}
