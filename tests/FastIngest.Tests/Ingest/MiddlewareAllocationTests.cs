using System.Buffers;
using System.IO.Pipelines;
using FastIngest.Ingest;
using FastIngest.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastIngest.Tests.Ingest;

/// <summary>
/// The allocation gate for the whole webhook middleware (headers, body read from the request's PipeReader, signature,
/// ingest, wait for the group commit, 200), in process, with the real engine. The request contexts and their bodies are
/// built before measuring, as Kestrel pools its own; what is measured is every byte the process allocates while the
/// requests run, on every thread (the commit thread resumes them), divided by the requests.
/// </summary>
[Collection(nameof(RunsAlone))]
public sealed class MiddlewareAllocationTests : IAsyncDisposable
{
    private readonly TempDir _dir = new();
    private IngestServer? _server;

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync();
        _dir.Dispose();
    }

    /// <summary>A PipeReader over one array, allocation-free (a stand-in for Kestrel's pooled request body reader).</summary>
    private sealed class ArrayPipeReader(byte[] body) : PipeReader, IRequestBodyPipeFeature
    {
        private bool _done;

        public PipeReader Reader => this;

        public override bool TryRead(out ReadResult result)
        {
            result = new ReadResult(_done ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(body), isCanceled: false, isCompleted: true);
            return true;
        }

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            TryRead(out var result);
            return new ValueTask<ReadResult>(result);
        }

        public override void AdvanceTo(SequencePosition consumed) => _done = true;

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => _done = true;

        public override void CancelPendingRead()
        {
        }

        public override void Complete(Exception? exception = null)
        {
        }
    }

    /// <summary>
    /// A body that arrives in two reads, the second one pending until <see cref="Arrive"/> (as a body that comes in a
    /// second packet): the request's receive step suspends there, which is what this reader is for.
    /// </summary>
    private sealed class SplitPipeReader(byte[] body) : PipeReader, IRequestBodyPipeFeature, System.Threading.Tasks.Sources.IValueTaskSource<ReadResult>
    {
        private System.Threading.Tasks.Sources.ManualResetValueTaskSourceCore<ReadResult> _core;
        private int _reads;

        public PipeReader Reader => this;

        /// <summary>Completes the pending second read with the rest of the body.</summary>
        public void Arrive() => _core.SetResult(new ReadResult(new ReadOnlySequence<byte>(body, body.Length / 2, body.Length - body.Length / 2), isCanceled: false, isCompleted: true));

        public override bool TryRead(out ReadResult result) => throw new NotSupportedException();

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
            => ++_reads == 1
                ? new ValueTask<ReadResult>(new ReadResult(new ReadOnlySequence<byte>(body, 0, body.Length / 2), isCanceled: false, isCompleted: false))
                : new ValueTask<ReadResult>(this, _core.Version);

        public ReadResult GetResult(short token) => _core.GetResult(token);

        public System.Threading.Tasks.Sources.ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, System.Threading.Tasks.Sources.ValueTaskSourceOnCompletedFlags flags)
            => _core.OnCompleted(continuation, state, token, flags);

        public override void AdvanceTo(SequencePosition consumed)
        {
        }

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
        }

        public override void CancelPendingRead()
        {
        }

        public override void Complete(Exception? exception = null)
        {
        }
    }

    private static DefaultHttpContext Request(byte[] body, string signature, PipeReader? reader = null)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "POST";
        context.Request.Path = "/webhooks/t1";
        context.Request.ContentType = "application/json";
        context.Request.ContentLength = body.Length;
        context.Request.Headers[WebhookSignature.HeaderName] = signature;
        context.Features.Set((IRequestBodyPipeFeature)(reader ?? new ArrayPipeReader(body)));
        _ = context.Request.BodyReader;
        _ = context.RequestAborted; // DefaultHttpContext makes its lifetime feature on first use; Kestrel's is pooled
        _ = context.Response.StatusCode;
        _ = context.Request.BodyReader; // again: the lifetime feature's first use changed the feature collection
        return context;
    }

    /// <summary>A never-completing IValueTaskSource: to measure the one Task object a waiting request costs.</summary>
    private sealed class Pending : System.Threading.Tasks.Sources.IValueTaskSource
    {
        public System.Threading.Tasks.Sources.ValueTaskSourceStatus GetStatus(short token) => System.Threading.Tasks.Sources.ValueTaskSourceStatus.Pending;

        public void OnCompleted(Action<object?> continuation, object? state, short token, System.Threading.Tasks.Sources.ValueTaskSourceOnCompletedFlags flags)
        {
        }

        public void GetResult(short token)
        {
        }
    }

    /// <summary>Bytes of the Task that Kestrel's RequestDelegate contract needs from a request that cannot answer at once.</summary>
    private static long TaskContractBytes()
    {
        var source = new Pending();
        _ = new ValueTask(source, 0).AsTask();
        var before = GC.GetAllocatedBytesForCurrentThread();
        _ = new ValueTask(source, 0).AsTask();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    private static DefaultHttpContext[] Batch(int count, Func<int, byte[]> body) => [.. Enumerable.Range(0, count).Select(i =>
    {
        var b = body(i);
        return Request(b, WebhookSignature.Sign("app-secret", b));
    })];

    /// <summary>
    /// Runs each window of batches on one thread of its own (after <paramref name="warmUp"/> on the same thread, so its
    /// thread-static scratch is made before measuring) and returns the bytes allocated per request in each window:
    /// each request's part up to its commit wait runs there, the rest on the log's commit thread, which counts what
    /// those continuations allocate. The wait for them spins (no allocation). -1 for a window where a request did not
    /// get its 200.
    /// </summary>
    private List<long> Measure(WebhookMiddleware middleware, DefaultHttpContext[][] warmUp, params DefaultHttpContext[][][] windows)
    {
        var log = _server!.Engine.Log;
        var results = new List<long>();
        var tasks = new Task[warmUp[0].Length];
        long Run(DefaultHttpContext[][] batches)
        {
            var bad = 0;
            var before = GC.GetAllocatedBytesForCurrentThread();
            var continuationsBefore = log.ContinuationAllocatedBytes;
            foreach (var batch in batches)
            {
                for (var i = 0; i < batch.Length; i++)
                    tasks[i] = middleware.InvokeAsync(batch[i]);
                for (var i = 0; i < batch.Length; i++)
                    (batch[i].Features.Get<IRequestBodyPipeFeature>() as SplitPipeReader)?.Arrive(); // the rest of a split body, on this thread
                for (var i = 0; i < tasks.Length; i++)
                {
                    while (!tasks[i].IsCompleted)
                        Thread.Yield();
                }
                for (var i = 0; i < batch.Length; i++)
                    bad += batch[i].Response.StatusCode == 200 ? 0 : 1;
            }
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before + (log.ContinuationAllocatedBytes - continuationsBefore);
            return bad > 0 ? -1 : allocated / (batches.Length * batches[0].Length);
        }
        var thread = new Thread(() =>
        {
            Run(warmUp);
            foreach (var window in windows)
                results.Add(Run(window));
        });
        thread.Start();
        thread.Join();
        return results;
    }

    [Fact]
    public async Task The_whole_middleware_path_allocates_only_the_Task_Kestrel_asks_for()
    {
        _server = await IngestServer.StartAsync(_dir.Path, [new TestTenant("t1")],
            new Dictionary<string, string?> { ["FastIngest:CheckpointInterval"] = "01:00:00", ["FastIngest:Storage:LogMemoryBytes"] = (128 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture) });
        var middleware = new WebhookMiddleware(_ => Task.CompletedTask, _server.Engine, NullLoggerFactory.Instance);
        const int Concurrency = 32, Rounds = 40;
        var n = 0;
        byte[] NewEvent(int _) => Payloads.Messages(($"wamid.MW{Interlocked.Increment(ref n):D8}", "16505551234", new string('x', 700)));
        DefaultHttpContext[][] Batches(int rounds, Func<int, byte[]> body) => [.. Enumerable.Range(0, rounds).Select(_ => Batch(Concurrency, body))];
        DefaultHttpContext[][] SplitBatches(int rounds, Func<int, byte[]> body) => [.. Enumerable.Range(0, rounds).Select(_ => Enumerable.Range(0, Concurrency).Select(i =>
        {
            var b = body(i);
            return Request(b, WebhookSignature.Sign("app-secret", b), new SplitPipeReader(b));
        }).ToArray())];

        // New events wait for their group commit: per request, the one Task of Kestrel's contract and nothing else. A
        // FASTER page turn (a new 4 MiB page the first time the log reaches it) may spoil one window; a per-request
        // allocation spoils all of them.
        var task = TaskContractBytes();
        var seen = Measure(middleware, Batches(10, NewEvent), [.. Enumerable.Range(0, 5).Select(_ => Batches(Rounds, NewEvent))]);
        Assert.DoesNotContain(-1L, seen); // every request got its 200
        Assert.True(seen.Min() <= task, $"bytes allocated per waiting request, in each window: {string.Join(", ", seen)} (the Task alone: {task})");

        // A body that arrives in two reads: the receive step suspends for the second, and its state machine comes
        // from a pool instead of a new box per request.
        var split = Measure(middleware, Batches(10, NewEvent), [.. Enumerable.Range(0, 5).Select(_ => SplitBatches(Rounds, NewEvent))]);
        Assert.DoesNotContain(-1L, split);
        Assert.True(split.Min() <= task, $"bytes allocated per waiting request whose body came in two reads, in each window: {string.Join(", ", split)} (the Task alone: {task})");

        // Meta's repeats of events already on disk answer without waiting: nothing at all.
        var repeat = Payloads.Messages(("wamid.MW00000001", "16505551234", new string('x', 700)));
        var repeats = Measure(middleware, Batches(10, _ => repeat), Batches(Rounds, _ => repeat), Batches(Rounds, _ => repeat));
        Assert.Equal(0, repeats.Min());
    }
}
