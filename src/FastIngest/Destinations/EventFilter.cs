using System.Text;
using FastIngest.Parsing;

namespace FastIngest.Destinations;

/// <summary>What a destination sees an event as: the <c>{kind}</c> of job names and routing keys, and the <c>kinds=</c> of filters.</summary>
public enum EventClass : byte
{
    /// <summary>An inbound message (<c>value.messages[]</c>).</summary>
    Message = 1,

    /// <summary>A status of a sent message (<c>value.statuses[]</c>).</summary>
    Status = 2,

    /// <summary>Any other change (template updates, account updates, calls, ...).</summary>
    Change = 3,

    /// <summary>A step of a send through FastIngest (the <c>fastingest_outbound</c> change).</summary>
    Lifecycle = 4,
}

/// <summary>
/// Which events go to a destination: <c>Destinations:{j}:Filter</c>, clauses separated by <c>;</c>, each
/// <c>name=v1,v2</c>:
/// <list type="bullet">
/// <item><c>kinds=</c> <c>message</c>, <c>status</c>, <c>change</c>, <c>lifecycle</c>;</item>
/// <item><c>fields=</c> the change's <c>field</c> (<c>messages</c>, <c>message_template_status_update</c>, ...);</item>
/// <item><c>types=</c> a message's <c>type</c> (<c>text</c>, <c>image</c>, <c>interactive</c>, ...): applies to messages only;</item>
/// <item><c>statuses=</c> a status's value (<c>sent</c>, <c>delivered</c>, <c>read</c>, <c>failed</c>): applies to statuses only.</item>
/// </list>
/// An event goes when it passes every clause given. Empty: every event. Example:
/// <c>kinds=message,status;statuses=delivered,read,failed</c>.
/// </summary>
public sealed class EventFilter
{
    private readonly HashSet<EventClass>? _kinds;
    private readonly byte[][]? _fields;
    private readonly byte[][]? _types;
    private readonly byte[][]? _statuses;

    /// <summary>Every event.</summary>
    public static EventFilter All { get; } = new(null, null, null, null, "");

    private EventFilter(HashSet<EventClass>? kinds, byte[][]? fields, byte[][]? types, byte[][]? statuses, string text)
    {
        _kinds = kinds;
        _fields = fields;
        _types = types;
        _statuses = statuses;
        Text = text;
    }

    /// <summary>The filter as configured.</summary>
    public string Text { get; }

    /// <summary>Whether this filter lets every event through.</summary>
    public bool IsAll => _kinds is null && _fields is null && _types is null && _statuses is null;

    /// <summary>Parses <paramref name="text"/> (see the class summary).</summary>
    /// <exception cref="FormatException">An unknown clause, an unknown kind, or an empty list; the message says which.</exception>
    public static EventFilter Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
            return All;
        HashSet<EventClass>? kinds = null;
        byte[][]? fields = null, types = null, statuses = null;
        foreach (var clause in text.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = clause.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
                throw new FormatException($"'{clause}' is not name=value,value (clauses: kinds, fields, types, statuses)");
            var name = clause[..eq].Trim().ToLowerInvariant();
            var values = clause[(eq + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (values.Length == 0)
                throw new FormatException($"'{name}=' lists no value");
            switch (name)
            {
                case "kinds":
                    kinds = [];
                    foreach (var v in values)
                        kinds.Add(ParseClass(v) ?? throw new FormatException($"'{v}' is not a kind (message, status, change, lifecycle)"));
                    break;
                case "fields":
                    fields = [.. values.Select(Encoding.UTF8.GetBytes)];
                    break;
                case "types":
                    types = [.. values.Select(Encoding.UTF8.GetBytes)];
                    break;
                case "statuses":
                    statuses = [.. values.Select(v => Encoding.UTF8.GetBytes(v.ToLowerInvariant()))];
                    break;
                default:
                    throw new FormatException($"'{name}' is not a clause (kinds, fields, types, statuses)");
            }
        }
        return new EventFilter(kinds, fields, types, statuses, text.Trim());
    }

    /// <summary>The class named <paramref name="name"/> (case-insensitive), or null.</summary>
    public static EventClass? ParseClass(string name) => name.ToLowerInvariant() switch
    {
        "message" => EventClass.Message,
        "status" => EventClass.Status,
        "change" => EventClass.Change,
        "lifecycle" => EventClass.Lifecycle,
        _ => null,
    };

    /// <summary>The lower-case name of <paramref name="c"/> (<c>message</c>, <c>status</c>, <c>change</c>, <c>lifecycle</c>).</summary>
    public static string Name(EventClass c) => c switch
    {
        EventClass.Message => "message",
        EventClass.Status => "status",
        EventClass.Lifecycle => "lifecycle",
        _ => "change",
    };

    /// <summary>What <paramref name="e"/> is, read from <paramref name="body"/>.</summary>
    public static EventClass ClassOf(ReadOnlySpan<byte> body, in WebhookEvent e) => e.Kind switch
    {
        WebhookEventKind.Message => EventClass.Message,
        WebhookEventKind.Status => EventClass.Status,
        _ when e.Field.RawValue(body).SequenceEqual(Outbound.LifecycleEvent.FieldUtf8) => EventClass.Lifecycle,
        _ => EventClass.Change,
    };

    /// <summary>Whether event <paramref name="e"/> of <paramref name="body"/> goes to the destination.</summary>
    public bool Matches(ReadOnlySpan<byte> body, in WebhookEvent e)
    {
        if (IsAll)
            return true;
        var c = ClassOf(body, in e);
        if (_kinds is not null && !_kinds.Contains(c))
            return false;
        if (_fields is not null && !AnyEqual(_fields, e.Field.RawValue(body)))
            return false;
        if (_types is not null && c == EventClass.Message && !AnyEqual(_types, e.Type.RawValue(body)))
            return false;
        if (_statuses is not null && c == EventClass.Status && !AnyEqual(_statuses, e.Status.RawValue(body)))
            return false;
        return true;
    }

    private static bool AnyEqual(byte[][] values, ReadOnlySpan<byte> value)
    {
        foreach (var v in values)
        {
            if (value.SequenceEqual(v))
                return true;
        }
        return false;
    }
}
