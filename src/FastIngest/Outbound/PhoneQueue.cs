namespace FastIngest.Outbound;

/// <summary>
/// The queued sends of one business phone number, one FIFO per customer (their order is kept: one send per customer in
/// flight at a time, a retry goes back to the front of its customer's FIFO). Customers take turns in the order they
/// became ready; a customer whose head may not go yet (a backoff, the pair limit) waits on a timer and never blocks the
/// others, so a thousand sends held back for one customer delay nobody else's reply. Not thread-safe: the owning
/// lane's lock guards it.
/// </summary>
internal sealed class PhoneQueue(string phoneNumberId, ThroughputBucket bucket)
{
    private readonly Dictionary<string, Customer> _customers = new(StringComparer.Ordinal);
    private readonly Queue<Customer> _ready = new();
    private readonly PriorityQueue<Customer, long> _waiting = new();

    /// <summary>The phone_number_id.</summary>
    public string PhoneNumberId { get; } = phoneNumberId;

    /// <summary>The number's token bucket (its rate, cut by Meta's throttling answers).</summary>
    public ThroughputBucket Bucket { get; } = bucket;

    /// <summary>Sends queued (not in flight).</summary>
    public int Count { get; private set; }

    /// <summary>True when some customer's head may be looked at now (after <see cref="Promote"/>).</summary>
    public bool HasReady => _ready.Count > 0;

    /// <summary>Unix ms of the earliest timer of a waiting customer, or <see cref="long.MaxValue"/>.</summary>
    public long NextWakeUnixMs => _waiting.TryPeek(out _, out var at) ? at : long.MaxValue;

    /// <summary>Queues <paramref name="message"/> behind its customer's sends (<paramref name="front"/>: ahead of them, a retry).</summary>
    public void Add(OutboundMessage message, bool front = false)
    {
        if (!_customers.TryGetValue(message.To, out var c))
            _customers[message.To] = c = new Customer(message.To);
        if (front)
            c.Sends.AddFirst(message);
        else
            c.Sends.AddLast(message);
        Count++;
        if (c.State == CustomerState.Idle)
            MakeReady(c);
    }

    /// <summary>Customers whose timer is due become ready.</summary>
    public void Promote(long nowUnixMs)
    {
        while (_waiting.TryPeek(out var c, out var at) && at <= nowUnixMs)
        {
            _waiting.Dequeue();
            c.State = CustomerState.Idle;
            if (c.Sends.Count > 0)
                MakeReady(c);
            else
                _customers.Remove(c.To);
        }
    }

    /// <summary>
    /// The next ready customer's head send, which <paramref name="check"/> decides on: <see cref="Verdict.Go"/> takes it
    /// (the customer is then in flight until <see cref="Done"/>), <see cref="Verdict.Drop"/> removes it and looks at the
    /// customer's next, <see cref="Verdict.WaitUntil"/> parks the customer until the time it returns (Unix ms). Null
    /// when no ready customer has a send that may go.
    /// </summary>
    public OutboundMessage? Take(Func<OutboundMessage, (Verdict, long)> check)
    {
        while (_ready.TryDequeue(out var c))
        {
            while (c.Sends.First is { } node)
            {
                var (verdict, until) = check(node.Value);
                if (verdict == Verdict.Drop)
                {
                    c.Sends.RemoveFirst();
                    Count--;
                    continue;
                }
                if (verdict == Verdict.WaitUntil)
                {
                    c.State = CustomerState.Waiting;
                    _waiting.Enqueue(c, until);
                    break;
                }
                c.Sends.RemoveFirst();
                Count--;
                c.State = CustomerState.InFlight;
                return node.Value;
            }
            if (c.Sends.Count == 0 && c.State == CustomerState.Ready)
            {
                c.State = CustomerState.Idle;
                _customers.Remove(c.To);
            }
        }
        return null;
    }

    /// <summary>The customer's send in flight ended; <paramref name="retry"/> goes back to the front of its FIFO (not before its <see cref="OutboundMessage.NotBeforeUnixMs"/>).</summary>
    public void Done(string customer, OutboundMessage? retry, long nowUnixMs)
    {
        if (!_customers.TryGetValue(customer, out var c))
            _customers[customer] = c = new Customer(customer);
        if (retry is not null)
        {
            c.Sends.AddFirst(retry);
            Count++;
        }
        c.State = CustomerState.Idle;
        if (c.Sends.Count == 0)
        {
            _customers.Remove(customer);
            return;
        }
        var head = c.Sends.First!.Value;
        if (head.NotBeforeUnixMs > nowUnixMs)
        {
            c.State = CustomerState.Waiting;
            _waiting.Enqueue(c, head.NotBeforeUnixMs);
        }
        else
            MakeReady(c);
    }

    private void MakeReady(Customer c)
    {
        c.State = CustomerState.Ready;
        _ready.Enqueue(c);
    }

    /// <summary>What <see cref="Take"/>'s check decides about a customer's head send.</summary>
    public enum Verdict
    {
        /// <summary>It goes now.</summary>
        Go,
        /// <summary>It left the queue (failed past its age); look at the customer's next.</summary>
        Drop,
        /// <summary>Not yet: the customer waits until the given time.</summary>
        WaitUntil,
    }

    private enum CustomerState
    {
        Idle,
        Ready,
        Waiting,
        InFlight,
    }

    private sealed class Customer(string to)
    {
        public string To { get; } = to;
        public LinkedList<OutboundMessage> Sends { get; } = new();
        public CustomerState State { get; set; }
    }
}
