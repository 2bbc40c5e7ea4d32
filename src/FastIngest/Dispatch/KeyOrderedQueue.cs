namespace FastIngest.Dispatch;

/// <summary>
/// The events of one tenant waiting for delivery, in one FIFO line per ordering key (<see cref="ForwardItem.OrderKey"/>:
/// the customer's wa_id). Workers take the head of any line that is free; while a line's head is out or waiting for
/// its retry, the rest of that line waits and every other line keeps flowing. So an event the bot refuses delays only
/// the later events of its own customer, and an event without a customer (key 0) is a line of its own, ordered
/// behind nothing.
/// </summary>
/// <remarks>
/// Lines are served round robin (a line that still has events after its head is done goes to the back), so one busy
/// customer does not starve the others. <see cref="Capacity"/> bounds the events held, over all lines: past it
/// <see cref="WaitForRoomAsync"/> makes the log reader wait (backpressure). Retries are timers on the
/// <see cref="TimeProvider"/>, so a line that waits holds no worker. Thread-safe; every operation is O(1) under one
/// short lock.
/// </remarks>
internal sealed class KeyOrderedQueue(int capacity, TimeProvider time) : IDisposable
{
    private readonly object _gate = new();
    private readonly Dictionary<ulong, Line> _lines = [];
    private readonly Queue<Line> _ready = new();
    private readonly SemaphoreSlim _readyCount = new(0);
    private readonly HashSet<Line> _waiting = [];
    private TaskCompletionSource? _room;
    private int _count;
    private bool _disposed;

    /// <summary>Most events held before <see cref="WaitForRoomAsync"/> waits.</summary>
    public int Capacity { get; } = capacity;

    /// <summary>Events held now (queued, out, or waiting for a retry).</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Adds an event at the end of its key's line (a line of its own for key 0). Never blocks.</summary>
    public void Add(ForwardItem item)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _count++;
            if (item.OrderKey != 0 && _lines.TryGetValue(item.OrderKey, out var line))
            {
                // A line with events is either ready, out with a worker, or waiting: it is scheduled already.
                line.Items.Enqueue(item);
                return;
            }
            line = new Line(item.OrderKey);
            line.Items.Enqueue(item);
            if (item.OrderKey != 0)
                _lines.Add(item.OrderKey, line);
            MakeReady(line);
        }
    }

    /// <summary>Completes once fewer than <see cref="Capacity"/> events are held.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Task WaitForRoomAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_count < Capacity)
                return Task.CompletedTask;
            _room ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _room.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>
    /// Waits for a line whose head may go out, and hands it to the caller: the line stays out (its later events wait)
    /// until the caller reports <see cref="Done"/> or <see cref="RetryAfter"/>.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async ValueTask<Line> TakeAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            await _readyCount.WaitAsync(cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                if (_ready.TryDequeue(out var line))
                    return line;
            }
        }
    }

    /// <summary>The line's head is delivered or dead-lettered: the next event of the line (if any) may go out.</summary>
    public void Done(Line line)
    {
        lock (_gate)
        {
            line.Items.Dequeue();
            _count--;
            if (_room is { } room && _count < Capacity)
            {
                _room = null;
                room.TrySetResult();
            }
            if (line.Items.Count > 0)
                MakeReady(line);
            else if (line.Key != 0)
                _lines.Remove(line.Key);
        }
    }

    /// <summary>The line's head failed: it goes out again after <paramref name="delay"/>; the line waits until then.</summary>
    public void RetryAfter(Line line, TimeSpan delay)
    {
        lock (_gate)
        {
            if (_disposed)
                return;
            _waiting.Add(line);
            line.Timer = time.CreateTimer(static state =>
            {
                var (queue, l) = ((KeyOrderedQueue, Line))state!;
                queue.Wake(l);
            }, (this, line), delay, Timeout.InfiniteTimeSpan);
        }
    }

    private void Wake(Line line)
    {
        lock (_gate)
        {
            if (_disposed || !_waiting.Remove(line))
                return;
            line.Timer?.Dispose();
            line.Timer = null;
            MakeReady(line);
        }
    }

    private void MakeReady(Line line)
    {
        _ready.Enqueue(line);
        _readyCount.Release();
    }

    /// <summary>Every event still held (for releasing their buffers at shutdown); empties the queue.</summary>
    public List<ForwardItem> Drain()
    {
        lock (_gate)
        {
            var items = new List<ForwardItem>(_count);
            foreach (var line in _waiting)
                line.Timer?.Dispose();
            var seen = new HashSet<Line>(_lines.Values);
            seen.UnionWith(_ready);
            seen.UnionWith(_waiting);
            foreach (var line in seen)
            {
                items.AddRange(line.Items);
                line.Items.Clear();
            }
            _lines.Clear();
            _ready.Clear();
            _waiting.Clear();
            _count = 0;
            return items;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            foreach (var line in _waiting)
                line.Timer?.Dispose();
            _waiting.Clear();
        }
        _readyCount.Dispose();
    }

    /// <summary>One key's events, oldest first; <see cref="Head"/> is the one to send.</summary>
    internal sealed class Line(ulong key)
    {
        public ulong Key { get; } = key;

        public Queue<ForwardItem> Items { get; } = new();

        public ITimer? Timer { get; set; }

        public ForwardItem Head => Items.Peek();
    }
}
