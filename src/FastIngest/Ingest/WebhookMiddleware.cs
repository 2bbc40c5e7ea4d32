using FastIngest.Configuration;
using System.Buffers;
using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Threading.Tasks.Sources;
using System.Text;
using FastIngest.Hosting;
using FastIngest.Telemetry;
using FastIngest.Tenancy;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;

namespace FastIngest.Ingest;

/// <summary>
/// The webhook endpoint, as a Kestrel middleware ahead of routing: <c>/webhooks/{tenant}</c>.
/// <list type="bullet">
/// <item><c>GET</c> with <c>hub.mode=subscribe</c>, <c>hub.verify_token</c>, <c>hub.challenge</c>: Meta's verification
/// handshake (Meta, "Webhooks: Getting Started", "Verification Requests"). 200 and the challenge as text/plain when the
/// token is the tenant's; 403 otherwise; 400 without a challenge.</item>
/// <item><c>POST</c>: the raw body is read from <see cref="HttpRequest.BodyReader"/> into a pooled buffer, its
/// <c>X-Hub-Signature-256</c> checked, then it is parsed, deduped and appended; 200 goes out after the append is
/// committed. 401 for a missing, duplicated, malformed or wrong signature (nothing recorded); 413 over
/// <c>MaxBodyBytes</c>; 415 for a declared content type other than JSON; 503 (with <c>Retry-After</c>) if the log
/// cannot take it, so that Meta retries.</item>
/// <item>404 for an unknown tenant; 405 for other methods.</item>
/// </list>
/// </summary>
public sealed class WebhookMiddleware
{
    /// <summary>The path prefix this middleware owns.</summary>
    public const string PathPrefix = "/webhooks/";

    private static readonly TimeSpan s_backpressureLimit = TimeSpan.FromSeconds(5);

    private readonly RequestDelegate _next;
    private readonly TenantRegistry _tenants;
    private readonly IngestPipeline _pipeline;
    private readonly FastIngestEngine _engine;
    private readonly ILogger _logger;
    private readonly int _maxBody;
    private readonly BodyBudget _budget;
    private readonly Internal.LogThrottle _rejections;

    /// <summary>
    /// Body buffers. Not <see cref="ArrayPool{T}.Shared"/>: a buffer is rented on the request's thread and returned on
    /// the log's commit thread, and the shared pool's per-thread and per-core caches then miss under concurrency (a
    /// new array every few dozen requests); this pool keeps one list per size, whatever thread returns. What it can
    /// hold at once is bounded by <c>MaxInFlightBodyBytes</c>.
    /// </summary>
    private readonly ArrayPool<byte> _bodies;

    /// <summary>First body buffer when the client declares more (or nothing): the buffer grows with what arrives.</summary>
    private const int InitialBodyBuffer = 16 * 1024;

    /// <summary>Creates the middleware over the running engine.</summary>
    public WebhookMiddleware(RequestDelegate next, FastIngestEngine engine, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _next = next;
        _tenants = engine.Tenants;
        _pipeline = engine.Pipeline;
        _engine = engine;
        _maxBody = engine.MaxBodyBytes;
        _budget = engine.BodyBudget;
        _bodies = ArrayPool<byte>.Create(_maxBody + 1, 256);
        _rejections = new Internal.LogThrottle(TimeSpan.FromSeconds(1), engine.Time);
        _logger = loggerFactory.CreateLogger("FastIngest.Webhook");
    }

    /// <summary>Handles <c>/webhooks/*</c>; passes anything else on.</summary>
    public Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var path = context.Request.Path.Value;
        if (path is null || !path.StartsWith(PathPrefix, StringComparison.Ordinal))
            return _next(context);

        var name = path.AsSpan(PathPrefix.Length);
        if (name.EndsWith('/'))
            name = name[..^1];
        var tenant = name.IsEmpty || name.Contains('/') ? null : _tenants.Find(name);
        if (tenant is null)
            return Reply(context, StatusCodes.Status404NotFound, "unknown tenant");

        var method = context.Request.Method;
        if (HttpMethods.IsPost(method))
        {
            var ingest = IngestAsync(context, tenant);
            return ingest.IsCompletedSuccessfully ? Task.CompletedTask : ingest.AsTask();
        }
        if (HttpMethods.IsGet(method))
        {
            // A BSP-hosted number has no Meta handshake (360dialog sends no hub.challenge).
            return tenant.InboundAuth == InboundAuth.MetaSignature ? Handshake(context, tenant)
                : Reply(context, StatusCodes.Status404NotFound, "this tenant's webhooks come from a BSP: there is no hub.challenge handshake");
        }
        context.Response.Headers.Allow = "GET, POST";
        return Reply(context, StatusCodes.Status405MethodNotAllowed, "use GET for the handshake and POST for events");
    }

    /// <summary>
    /// <c>X-Hub-Signature-256</c> under each accepted app secret in turn (a rotation); the first that matches is counted
    /// by its index. Malformed stops at once (no key can make it match).
    /// </summary>
    private static SignatureCheck VerifyAnyKey(Tenant tenant, string header, ReadOnlySpan<byte> body)
    {
        var check = SignatureCheck.Mismatch;
        var credentials = tenant.Credentials; // one set for the whole check, whatever a reload does meanwhile
        for (var key = 0; key < credentials.AppSecrets.Length && check == SignatureCheck.Mismatch; key++)
        {
            check = WebhookSignature.VerifyRawOrEscaped(header, credentials.HmacOf(key), body);
            if (check == SignatureCheck.Valid)
                tenant.Counters.SignatureKeyUsed(key);
        }
        return check;
    }

    private static Task Handshake(HttpContext context, Tenant tenant)
    {
        var query = context.Request.Query;
        if (!string.Equals(query["hub.mode"], "subscribe", StringComparison.Ordinal))
            return Reply(context, StatusCodes.Status403Forbidden, "hub.mode must be subscribe");
        var token = query["hub.verify_token"].ToString();
        var given = Encoding.UTF8.GetBytes(token);
        if (!CryptographicOperations.FixedTimeEquals(given, tenant.Credentials.VerifyToken))
            return Reply(context, StatusCodes.Status403Forbidden, "hub.verify_token does not match");
        var challenge = query["hub.challenge"];
        if (StringValues.IsNullOrEmpty(challenge) || challenge.Count != 1)
            return Reply(context, StatusCodes.Status400BadRequest, "hub.challenge is missing");
        context.Response.Headers.XContentTypeOptions = "nosniff";
        return Reply(context, StatusCodes.Status200OK, challenge.ToString());
    }

    /// <summary>
    /// One webhook POST: the checks on the headers, then the body (<see cref="BodyOperation"/>: read into a buffer
    /// that grows with what arrives, reserved against <c>MaxInFlightBodyBytes</c>), the signature, the ingest, the wait
    /// for the group commit and the 200. Nothing here is a suspended async method: the body read and the commit wait
    /// are pooled <see cref="IValueTaskSource"/>s, so a request allocates nothing, whether its body came in one read or
    /// several, but the <see cref="Task"/> that Kestrel's middleware contract asks for when it cannot answer at once.
    /// Rejections (cold) are answered with the <see cref="Task"/> of their reply.
    /// </summary>
    private ValueTask IngestAsync(HttpContext context, Tenant tenant)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var request = context.Request;
        if (_engine.StorageStall is not null)
        {
            // Counted, not logged per request: the engine logs the stall once when it starts and once when it ends.
            tenant.Counters.Request(RequestResult.Unavailable);
            context.Response.Headers.RetryAfter = "5";
            return new ValueTask(Reply(context, StatusCodes.Status503ServiceUnavailable, "the disk is not taking writes now; retry"));
        }
        if (_engine.OverDiskQuota)
        {
            context.Response.Headers.RetryAfter = "60";
            return new ValueTask(Reject(context, tenant, StatusCodes.Status503ServiceUnavailable, "over the disk quota (Storage:MaxDiskBytes); retry later"));
        }
        if (request.ContentLength > _maxBody)
            return new ValueTask(Reject(context, tenant, StatusCodes.Status413PayloadTooLarge, "body exceeds MaxBodyBytes"));
        if (request.ContentType is { Length: > 0 } contentType && !IsJson(contentType))
            return new ValueTask(Reject(context, tenant, StatusCodes.Status415UnsupportedMediaType, "content type must be application/json"));
        var signatures = request.Headers[WebhookSignature.HeaderName];
        if (tenant.InboundAuth == InboundAuth.Header)
        {
            // A secret header instead of a signature: checked before a byte of the body is read.
            var secret = request.Headers[tenant.InboundHeaderName];
            if (secret.Count != 1 || tenant.InboundHeaderValues.IndexOf(secret.ToString()) is var matched && matched < 0)
            {
                return new ValueTask(Reject(context, tenant, StatusCodes.Status401Unauthorized, secret.Count switch
                {
                    0 => $"{tenant.InboundHeaderName} is missing",
                    1 => $"{tenant.InboundHeaderName} does not match",
                    _ => $"{tenant.InboundHeaderName} is duplicated",
                }));
            }
            tenant.Counters.SignatureKeyUsed(matched);
        }
        else if (signatures.Count != 1)
        {
            return new ValueTask(Reject(context, tenant, StatusCodes.Status401Unauthorized,
                signatures.Count == 0 ? "X-Hub-Signature-256 is missing" : "X-Hub-Signature-256 is duplicated"));
        }

        // The buffer starts at what was declared, up to 16 KiB, and grows only with bytes that actually arrive, each
        // size reserved against MaxInFlightBodyBytes: a client declaring 4 MiB and dripping costs what it sent.
        long reserved = 0;
        if (!Reserve(ref reserved, (int)Math.Min(request.ContentLength + 1 ?? InitialBodyBuffer, Math.Min(InitialBodyBuffer, _maxBody + 1L))))
            return new ValueTask(RejectBusy(context, tenant));
        return BodyOperation.Start(this, context, tenant, signatures, _bodies.Rent((int)reserved), reserved, started);
    }

    /// <summary>
    /// The whole body has arrived: the signature, then the ingest, then the wait for the commit
    /// (<see cref="Acknowledge"/>). <paramref name="handedOver"/> is set once the buffer belongs to that wait (which
    /// releases it); before that the caller releases it.
    /// </summary>
    private ValueTask AfterBody(HttpContext context, Tenant tenant, StringValues signatures, byte[] body, int length, long reserved, long started, ref bool handedOver)
    {
        var check = tenant.InboundAuth == InboundAuth.Header ? SignatureCheck.Valid : VerifyAnyKey(tenant, signatures.ToString(), body.AsSpan(0, length));
        if (check != SignatureCheck.Valid)
        {
            return new ValueTask(Reject(context, tenant, StatusCodes.Status401Unauthorized, check == SignatureCheck.Mismatch
                ? "X-Hub-Signature-256 does not match the body" : "X-Hub-Signature-256 is malformed"));
        }
        var outcome = _pipeline.Accept(tenant, body, length);
        handedOver = true;
        return outcome.Status == IngestStatus.Backpressure
            ? BackpressureAsync(context, tenant, body, length, reserved, outcome, started)
            : Acknowledge(context, tenant, new Received(false, body, reserved, outcome), started);
    }

    /// <summary>The log's memory is full (cold): waits for room (see <see cref="WaitOutBackpressureAsync"/>), then acknowledges, or answers 503.</summary>
    private async ValueTask BackpressureAsync(HttpContext context, Tenant tenant, byte[] body, int length, long reserved, IngestOutcome outcome, long started)
    {
        try
        {
            outcome = await WaitOutBackpressureAsync(tenant, body, length, outcome, context.RequestAborted).ConfigureAwait(false);
        }
        catch
        {
            Release(body, reserved);
            throw;
        }
        if (outcome.Status == IngestStatus.Backpressure)
        {
            Release(body, reserved);
            context.Response.Headers.RetryAfter = "5";
            await Reject(context, tenant, StatusCodes.Status503ServiceUnavailable, "event log is full; retry").ConfigureAwait(false);
            return;
        }
        await Acknowledge(context, tenant, new Received(false, body, reserved, outcome), started).ConfigureAwait(false);
    }

    /// <summary>An accepted webhook waiting for its answer: the body buffer and its reservation to release once answered, and the ingest outcome.</summary>
    private readonly record struct Received(bool Answered, byte[] Body, long Reserved, IngestOutcome Outcome);

    /// <summary>Waits (if it must) for the commit of what <paramref name="received"/> relies on, then answers 200.</summary>
    private ValueTask Acknowledge(HttpContext context, Tenant tenant, Received received, long started)
    {
        if (received.Answered)
            return default;
        if (received.Outcome.WaitLog is { } log)
        {
            ValueTask commit;
            try
            {
                commit = log.WaitForCommitAsync(received.Outcome.WaitForAddress);
                if (!commit.IsCompleted)
                    return AckOperation.Start(this, context, tenant, received, started, commit);
                commit.GetAwaiter().GetResult();
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                return new ValueTask(AnswerFailed(context, tenant, received, ex));
            }
        }
        Answer(context, tenant, received, started);
        return default;
    }

    /// <summary>The 200: counters, ack latency, and the body buffer and its reservation given back.</summary>
    private void Answer(HttpContext context, Tenant tenant, in Received received, long started)
    {
        Release(received.Body, received.Reserved);
        context.Response.StatusCode = StatusCodes.Status200OK;
        if (received.Outcome.Status == IngestStatus.Quarantined)
        {
            tenant.Counters.Request(RequestResult.Quarantined);
        }
        else
        {
            tenant.Counters.Request(RequestResult.Accepted);
            tenant.Counters.Events(received.Outcome.Events, received.Outcome.NewEvents);
        }
        _engine.Metrics.AckLatency.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
    }

    /// <summary>The commit failed (the log's disk): 503 with Retry-After, so Meta retries.</summary>
    private Task AnswerFailed(HttpContext context, Tenant tenant, in Received received, Exception ex)
    {
        Release(received.Body, received.Reserved);
        LogFailure(ex, tenant);
        if (context.Response.HasStarted)
            return Task.CompletedTask;
        tenant.Counters.Request(RequestResult.Unavailable);
        context.Response.Headers.RetryAfter = "5";
        return Reply(context, StatusCodes.Status503ServiceUnavailable, "not recorded; retry");
    }

    private Exception? _lastFailure;

    /// <summary>
    /// Logs a failure (with its stack trace) once: the log's stored failure is thrown to every waiter after it, and
    /// each throw lengthens its trace; the requests that meet it again are counted (503s), not logged.
    /// </summary>
    private void LogFailure(Exception ex, Tenant tenant)
    {
        if (!ReferenceEquals(Interlocked.Exchange(ref _lastFailure, ex), ex))
            IngestLog.Failed(_logger, ex, tenant.Id);
    }

    private void Release(byte[] body, long reserved)
    {
        if (body.Length > 0)
            _bodies.Return(body);
        _budget.Release(reserved);
    }

    /// <summary>
    /// A request's body read, and everything after it, as a pooled <see cref="IValueTaskSource"/>: reads until the body
    /// is complete (each read that is not ready is waited for with a continuation cached on this object, not an async
    /// state machine), then runs <see cref="AfterBody"/> and completes when its answer is done. A request answered
    /// within <see cref="Start"/> never hands this object out: it goes back to the pool at once.
    /// </summary>
    private sealed class BodyOperation : IValueTaskSource
    {
        private readonly Action _onRead;
        private readonly Action _onTail;
        private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = false };
        private WebhookMiddleware? _owner;
        private HttpContext? _context;
        private Tenant? _tenant;
        private PipeReader? _reader;
        private StringValues _signatures;
        private byte[] _body = [];
        private long _reserved;
        private int _length;
        private long _started;
        private bool _handedOver;
        private ValueTask<ReadResult> _read;
        private ValueTask _tail;
        private int _state; // Running, HandedOut or Completed
        private Exception? _syncFailure;
        private const int Running = 0, HandedOut = 1, Completed = 2;

        private BodyOperation()
        {
            _onRead = OnRead;
            _onTail = OnTail;
        }

        public static ValueTask Start(WebhookMiddleware owner, HttpContext context, Tenant tenant, StringValues signatures, byte[] body, long reserved, long started)
        {
            var op = Internal.OperationPool<BodyOperation>.Rent() ?? new BodyOperation();
            op._owner = owner;
            op._context = context;
            op._tenant = tenant;
            op._signatures = signatures;
            op._body = body;
            op._reserved = reserved;
            op._length = 0;
            op._started = started;
            op._handedOver = false;
            op._state = Running;
            op._syncFailure = null;
            var version = op._core.Version;
            try
            {
                op._reader = context.Request.BodyReader;
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                op.Fail(ex);
            }
            if (op._reader is not null)
                op.Pump();
            if (Interlocked.CompareExchange(ref op._state, HandedOut, Running) == Running)
                return new ValueTask(op, version);
            // Answered without waiting for anything: nobody holds this object; back to the pool now.
            var failure = op._syncFailure;
            op.Recycle();
            return failure is null ? default : ValueTask.FromException(failure);
        }

        /// <summary>Reads until a read is not ready (its continuation is registered) or the body is complete.</summary>
        private void Pump()
        {
            while (true)
            {
                ValueTask<ReadResult> read;
                ReadResult result;
                try
                {
                    read = _reader!.ReadAsync(_context!.RequestAborted);
                    if (!read.IsCompleted)
                    {
                        _read = read;
                        read.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onRead);
                        return;
                    }
                    result = read.GetAwaiter().GetResult();
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    Fail(ex);
                    return;
                }
                if (!Consume(result))
                    return;
            }
        }

        private void OnRead()
        {
            ReadResult result;
            try
            {
                result = _read.GetAwaiter().GetResult();
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                _read = default;
                Fail(ex);
                return;
            }
            _read = default;
            if (Consume(result))
                Pump();
        }

        /// <summary>Takes one read's bytes; true to read on, false when the request went on to its answer (or failed).</summary>
        private bool Consume(in ReadResult read)
        {
            var owner = _owner!;
            var context = _context!;
            var buffer = read.Buffer;
            try
            {
                if (_length + buffer.Length > owner._maxBody)
                {
                    _reader!.AdvanceTo(buffer.End);
                    Then(new ValueTask(owner.Reject(context, _tenant!, StatusCodes.Status413PayloadTooLarge, "body exceeds MaxBodyBytes")));
                    return false;
                }
                if (_length + buffer.Length > _body.Length)
                {
                    var size = (int)Math.Min(Math.Max((long)_body.Length * 2, _length + buffer.Length), owner._maxBody + 1L);
                    if (!owner.Reserve(ref _reserved, size))
                    {
                        _reader!.AdvanceTo(buffer.End);
                        Then(new ValueTask(owner.RejectBusy(context, _tenant!)));
                        return false;
                    }
                    owner.Grow(ref _body, _length, size);
                }
                buffer.CopyTo(_body.AsSpan(_length));
                _length += (int)buffer.Length;
                _reader!.AdvanceTo(buffer.End);
                if (!read.IsCompleted)
                    return true;
                Then(owner.AfterBody(context, _tenant!, _signatures, _body, _length, _reserved, _started, ref _handedOver));
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                Fail(ex);
            }
            return false;
        }

        /// <summary>Completes once <paramref name="tail"/> (the answer) is done.</summary>
        private void Then(ValueTask tail)
        {
            if (tail.IsCompleted)
            {
                Finish(tail);
                return;
            }
            _tail = tail;
            tail.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onTail);
        }

        private void OnTail()
        {
            var tail = _tail;
            _tail = default;
            Finish(tail);
        }

        private void Finish(ValueTask tail)
        {
            Exception? failure = null;
            try
            {
                tail.GetAwaiter().GetResult();
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                failure = ex;
            }
            if (!_handedOver)
                _owner!.Release(_body, _reserved);
            Complete(failure);
        }

        /// <summary>
        /// A read or the ingest failed. A client that went away or sent a malformed body goes back to Kestrel as
        /// before; anything else is logged once and answered 503 (Meta retries).
        /// </summary>
        private void Fail(Exception ex)
        {
            if (ex is OperationCanceledException or BadHttpRequestException)
            {
                if (!_handedOver)
                    _owner!.Release(_body, _reserved);
                _handedOver = true;
                Complete(ex);
                return;
            }
            var owner = _owner!;
            owner.LogFailure(ex, _tenant!);
            var context = _context!;
            if (context.Response.HasStarted)
            {
                Finish(default);
                return;
            }
            _tenant!.Counters.Request(RequestResult.Unavailable);
            context.Response.Headers.RetryAfter = "5";
            Then(new ValueTask(Reply(context, StatusCodes.Status503ServiceUnavailable, "not recorded; retry")));
        }

        private void Complete(Exception? failure)
        {
            if (Interlocked.CompareExchange(ref _state, Completed, Running) == Running)
            {
                _syncFailure = failure; // Start returns it
                return;
            }
            if (failure is null)
                _core.SetResult(true);
            else
                _core.SetException(failure);
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
            => _core.OnCompleted(continuation, state, token, flags);

        public void GetResult(short token)
        {
            try
            {
                _core.GetResult(token);
            }
            finally
            {
                Recycle();
            }
        }

        private void Recycle()
        {
            _core.Reset();
            _owner = null;
            _context = null;
            _tenant = null;
            _reader = null;
            _signatures = default;
            _body = [];
            _syncFailure = null;
            Internal.OperationPool<BodyOperation>.Return(this);
        }
    }

    /// <summary>
    /// A request waiting for its group commit: the rest of <see cref="Acknowledge"/> as a pooled
    /// <see cref="IValueTaskSource"/>, resumed by the commit (on the log's commit thread, as the async method was).
    /// </summary>
    private sealed class AckOperation : IValueTaskSource
    {
        private readonly Action _onCommitted;
        private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = false };
        private WebhookMiddleware? _owner;
        private HttpContext? _context;
        private Tenant? _tenant;
        private Received _received;
        private long _started;
        private ValueTask _commit;

        private AckOperation() => _onCommitted = OnCommitted;

        public static ValueTask Start(WebhookMiddleware owner, HttpContext context, Tenant tenant, in Received received, long started, ValueTask commit)
        {
            var op = Internal.OperationPool<AckOperation>.Rent() ?? new AckOperation();
            op._owner = owner;
            op._context = context;
            op._tenant = tenant;
            op._received = received;
            op._started = started;
            op._commit = commit;
            var version = op._core.Version;
            commit.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(op._onCommitted);
            return new ValueTask(op, version);
        }

        /// <summary>
        /// Runs on the commit thread: nothing may escape it (it would end the process). A request that Kestrel has
        /// already given up (the client went away, or the server is shutting down) has nothing left to answer.
        /// </summary>
        private void OnCommitted()
        {
            Exception? failure = null;
            try
            {
                _commit.GetAwaiter().GetResult();
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                failure = ex;
            }
            if (failure is null)
            {
                try
                {
                    _owner!.Answer(_context!, _tenant!, in _received, _started);
                }
                catch (Exception ex) when (ex is ObjectDisposedException or InvalidOperationException)
                {
                }
                _core.SetResult(true);
                return;
            }
            Task answered;
            try
            {
                answered = _owner!.AnswerFailed(_context!, _tenant!, in _received, failure);
            }
            catch (Exception ex) when (ex is ObjectDisposedException or InvalidOperationException)
            {
                answered = Task.CompletedTask;
            }
            answered.ContinueWith(static (_, state) => ((AckOperation)state!)._core.SetResult(true), this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
            => _core.OnCompleted(continuation, state, token, flags);

        public void GetResult(short token)
        {
            try
            {
                _core.GetResult(token);
            }
            finally
            {
                _core.Reset();
                _owner = null;
                _context = null;
                _tenant = null;
                _received = default;
                _commit = default;
                Internal.OperationPool<AckOperation>.Return(this);
            }
        }
    }

    /// <summary>Grows this request's reservation to <paramref name="size"/> bytes; false when MaxInFlightBodyBytes is reached.</summary>
    private bool Reserve(ref long reserved, long size)
    {
        if (size <= reserved)
            return true;
        if (!_budget.TryReserve(size - reserved))
            return false;
        reserved = size;
        return true;
    }

    private Task RejectBusy(HttpContext context, Tenant tenant)
    {
        context.Response.Headers.RetryAfter = "1";
        return Reject(context, tenant, StatusCodes.Status503ServiceUnavailable, "too many webhook bytes in flight (FastIngest:MaxInFlightBodyBytes); retry");
    }

    /// <summary>
    /// The log's memory is full: waits for the commits in progress to land (not a poll) and retries only the append,
    /// with the batch already parsed and hashed, for up to 5 s. Returns the last outcome (still Backpressure when the
    /// log did not make room in time).
    /// </summary>
    private async ValueTask<IngestOutcome> WaitOutBackpressureAsync(Tenant tenant, byte[] body, int length, IngestOutcome outcome, CancellationToken cancellationToken)
    {
        var deadline = Environment.TickCount64 + (long)s_backpressureLimit.TotalMilliseconds;
        var log = _engine.Log;
        while (outcome.Status == IngestStatus.Backpressure)
        {
            var left = deadline - Environment.TickCount64;
            if (left <= 0)
                return outcome;
            var tail = log.TailAddress;
            var progress = log.WaitForCommitAsync(tail - 1);
            if (progress.IsCompleted)
            {
                // Everything appended is committed, yet there is no room: the flush is behind the commit; poll briefly.
                await Task.Delay(1, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                try
                {
                    await progress.AsTask().WaitAsync(TimeSpan.FromMilliseconds(left), cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    return outcome;
                }
                await Task.Yield(); // off the log's commit thread
            }
            outcome = outcome.Pending is { } pending
                ? _pipeline.RetryAppend(tenant, body, length, pending)
                : _pipeline.Accept(tenant, body, length);
        }
        return outcome;
    }

    private static bool IsJson(string contentType)
    {
        var semicolon = contentType.IndexOf(';', StringComparison.Ordinal);
        var media = (semicolon < 0 ? contentType : contentType[..semicolon]).AsSpan().Trim();
        return media.Equals("application/json", StringComparison.OrdinalIgnoreCase);
    }

    private void Grow(ref byte[] body, int used, int size)
    {
        var bigger = _bodies.Rent(size);
        body.AsSpan(0, used).CopyTo(bigger);
        _bodies.Return(body);
        body = bigger;
    }

    private Task Reject(HttpContext context, Tenant tenant, int status, string reason)
    {
        tenant.Counters.Request(status switch
        {
            StatusCodes.Status401Unauthorized => RequestResult.Unauthorized,
            StatusCodes.Status413PayloadTooLarge => RequestResult.TooLarge,
            StatusCodes.Status415UnsupportedMediaType => RequestResult.UnsupportedMediaType,
            _ => RequestResult.Unavailable,
        });
        if (_logger.IsEnabled(LogLevel.Warning) && _rejections.ShouldLog(tenant.Id, status, out var suppressed))
            IngestLog.Rejected(_logger, tenant.Id, status, reason, suppressed);
        return Reply(context, status, reason);
    }

    private static Task Reply(HttpContext context, int status, string text)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(text);
    }
}
