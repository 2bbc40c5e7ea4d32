using System.Globalization;
using System.Text;

namespace FastIngest.Load;

/// <summary>One webhook delivery as Meta would send it: the exact bytes, their signature, and the event ids inside.</summary>
internal sealed record Delivery(int Tenant, byte[] Body, string Signature, string[] EventIds, bool IsRepeat);

/// <summary>
/// Meta-like webhook traffic for one tenant: customers writing in (text, media, interactive replies) and status
/// batches (sent, delivered, read) for the business's outbound messages, some statuses out of order, and a share of
/// deliveries repeated verbatim, as Meta does when it retries. Thread-safe; deterministic for a seed.
/// </summary>
internal sealed class TrafficGenerator
{
    private readonly int _tenant;
    private readonly byte[] _secret;
    private readonly double _repeatShare;
    private readonly double _outOfOrderShare;
    private readonly Random _random;
    private readonly Delivery?[] _recent = new Delivery?[4096];
    private readonly Queue<(string Wamid, string Customer, int Next)> _outbound = new();
    private readonly string _prefix;
    private long _sequence;
    private long _recentCount;

    public TrafficGenerator(int tenant, string secret, double repeatShare, double outOfOrderShare, int seed)
    {
        _tenant = tenant;
        _secret = Encoding.UTF8.GetBytes(secret);
        _repeatShare = repeatShare;
        _outOfOrderShare = outOfOrderShare;
        _random = new Random(seed);
        _prefix = "wamid.HBgL" + seed.ToString("x8", CultureInfo.InvariantCulture) + tenant.ToString("x4", CultureInfo.InvariantCulture);
    }

    public Delivery Next()
    {
        lock (_random)
        {
            if (_recentCount > 0 && _random.NextDouble() < _repeatShare)
            {
                var old = _recent[_random.Next((int)Math.Min(_recentCount, _recent.Length))]!;
                return old with { IsRepeat = true };
            }
            var roll = _random.NextDouble();
            var (body, ids) = roll switch
            {
                < 0.30 => Text(),
                < 0.40 => Media(),
                < 0.50 => Interactive(),
                _ => Statuses(),
            };
            var delivery = new Delivery(_tenant, body, FastIngest.Ingest.WebhookSignature.Sign(_secret, body), ids, false);
            _recent[_recentCount++ % _recent.Length] = delivery;
            return delivery;
        }
    }

    /// <summary>A text message whose body makes the payload between <paramref name="minBytes"/> and <paramref name="maxBytes"/> bytes.</summary>
    public Delivery SizedText(int minBytes, int maxBytes)
    {
        lock (_random)
        {
            var wamid = NewWamid();
            var customer = Customer();
            var target = _random.Next(minBytes, maxBytes + 1);
            var words = new StringBuilder();
            byte[] body;
            do
            {
                words.Append(s_words[_random.Next(s_words.Length)]).Append(' ');
                body = Message(customer, $$$"""{"from":"{{{customer}}}","id":"{{{wamid}}}","timestamp":"{{{Now()}}}","type":"text","text":{"body":"{{{words}}}"}}""");
            }
            while (body.Length < target);
            return new Delivery(_tenant, body, FastIngest.Ingest.WebhookSignature.Sign(_secret, body), [$"msg:{wamid}"], false);
        }
    }

    private string NewWamid() => _prefix + (_sequence++).ToString("D12", CultureInfo.InvariantCulture) + "AAA=";

    private string Customer() => "1650555" + _random.Next(0, 100_000).ToString("D5", CultureInfo.InvariantCulture);

    private (byte[], string[]) Text()
    {
        var wamid = NewWamid();
        var customer = Customer();
        var words = string.Join(' ', Enumerable.Range(0, _random.Next(5, 60)).Select(_ => s_words[_random.Next(s_words.Length)]));
        return (Message(customer, $$$"""{"from":"{{{customer}}}","id":"{{{wamid}}}","timestamp":"{{{Now()}}}","type":"text","text":{"body":"{{{words}}}"}}"""), [$"msg:{wamid}"]);
    }

    private (byte[], string[]) Media()
    {
        var wamid = NewWamid();
        var customer = Customer();
        var kind = _random.Next(2) == 0 ? "image" : "document";
        var media = kind == "image"
            ? $$$"""{"caption":"photo of the receipt","mime_type":"image/jpeg","sha256":"bG9uZ2hhc2g0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OTA=","id":"{{{_random.NextInt64(1_000_000_000_000, 9_999_999_999_999)}}}"}"""
            : $$$"""{"filename":"invoice-{{{_sequence}}}.pdf","mime_type":"application/pdf","sha256":"bG9uZ2hhc2g0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OTA=","id":"{{{_random.NextInt64(1_000_000_000_000, 9_999_999_999_999)}}}"}""";
        return (Message(customer, $$$"""{"from":"{{{customer}}}","id":"{{{wamid}}}","timestamp":"{{{Now()}}}","type":"{{{kind}}}","{{{kind}}}":{{{media}}}}"""), [$"msg:{wamid}"]);
    }

    private (byte[], string[]) Interactive()
    {
        var wamid = NewWamid();
        var customer = Customer();
        var context = NewWamid();
        var reply = _random.Next(2) == 0
            ? """{"type":"button_reply","button_reply":{"id":"confirm-order","title":"Confirm"}}"""
            : """{"type":"list_reply","list_reply":{"id":"slot-14","title":"Tuesday 14:00","description":"Downtown branch"}}""";
        return (Message(customer, $$$"""{"context":{"from":"15550783881","id":"{{{context}}}"},"from":"{{{customer}}}","id":"{{{wamid}}}","timestamp":"{{{Now()}}}","type":"interactive","interactive":{{{reply}}}}"""), [$"msg:{wamid}"]);
    }

    private (byte[], string[]) Statuses()
    {
        string[] states = ["sent", "delivered", "read"];
        var count = _random.Next(1, 21);
        var items = new List<(string Wamid, string Customer, string State)>(count);
        for (var i = 0; i < count; i++)
        {
            if (_outbound.Count < 64 || _random.Next(4) == 0)
                _outbound.Enqueue((NewWamid(), Customer(), 0));
            var (wamid, customer, next) = _outbound.Dequeue();
            items.Add((wamid, customer, states[next]));
            if (next + 1 < states.Length)
                _outbound.Enqueue((wamid, customer, next + 1));
        }
        if (_random.NextDouble() < _outOfOrderShare)
            items.Reverse(); // a later status of a wamid may now come before an earlier one
        var json = string.Join(",", items.Select(s =>
            $$$"""{"id":"{{{s.Wamid}}}","status":"{{{s.State}}}","timestamp":"{{{Now()}}}","recipient_id":"{{{s.Customer}}}","conversation":{"id":"{{{s.Wamid[10..30]}}}","origin":{"type":"marketing"}},"pricing":{"billable":true,"pricing_model":"CBP","category":"marketing"}}"""));
        var body = Envelope($$$"""{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"statuses":[{{{json}}}]}""");
        return (body, items.Select(s => $"status:{s.Wamid}:{s.State}").Distinct().ToArray());
    }

    private static byte[] Message(string customer, string message)
    {
        return Envelope($$$"""{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Customer {{{customer[^4..]}}}"},"wa_id":"{{{customer}}}"}],"messages":[{{{message}}}]}""");
    }

    private static byte[] Envelope(string value)
        => Encoding.UTF8.GetBytes($$$"""{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{{{value}}},"field":"messages"}]}]}""");

    private static string Now() => DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);

    private static readonly string[] s_words =
        ["hello", "order", "status", "please", "thanks", "where", "is", "my", "package", "delivery", "tomorrow", "price", "discount", "can", "you", "help", "refund", "size", "color", "available", "store", "open", "today", "olá", "obrigado", "¿dónde", "está", "mi", "pedido?", "🙏", "👍"];
}
