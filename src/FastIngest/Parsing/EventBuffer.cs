using System.Buffers;
using System.Runtime.CompilerServices;

namespace FastIngest.Parsing;

/// <summary>
/// The reusable output of <see cref="WebhookParser"/>: events and contacts of one payload, in payload order.
/// Backed by <see cref="ArrayPool{T}"/> arrays that grow on demand and are kept across payloads, so a warm
/// buffer parses without allocating. Not thread-safe: one buffer per concurrent parse.
/// </summary>
public sealed class EventBuffer : IDisposable
{
    private WebhookEvent[] _events;
    private WebhookContact[] _contacts;
    private int _eventCount;
    private int _contactCount;

    /// <summary>Creates a buffer with room for <paramref name="eventCapacity"/> events before it first grows.</summary>
    public EventBuffer(int eventCapacity = 32)
    {
        _events = ArrayPool<WebhookEvent>.Shared.Rent(Math.Max(4, eventCapacity));
        _contacts = ArrayPool<WebhookContact>.Shared.Rent(Math.Max(4, eventCapacity));
    }

    /// <summary>The root <c>object</c> property (<c>"whatsapp_business_account"</c>); absent when the payload had none.</summary>
    public JsonSegment Object { get; internal set; }

    /// <summary>Number of events parsed.</summary>
    public int Count => _eventCount;

    /// <summary>The events, in payload order.</summary>
    public ReadOnlySpan<WebhookEvent> Events => _events.AsSpan(0, _eventCount);

    /// <summary>All contacts of all changes; each event's <see cref="WebhookEvent.ContactsStart"/> indexes here.</summary>
    public ReadOnlySpan<WebhookContact> Contacts => _contacts.AsSpan(0, _contactCount);

    /// <summary>The event at <paramref name="index"/>.</summary>
    public ref readonly WebhookEvent this[int index] => ref _events[index];

    /// <summary>Forgets all events and contacts; keeps the arrays.</summary>
    public void Clear()
    {
        Object = default;
        _eventCount = 0;
        _contactCount = 0;
    }

    internal int ContactCount => _contactCount;

    internal ref WebhookEvent EventAt(int index) => ref _events[index];

    internal ref WebhookContact ContactAt(int index) => ref _contacts[index];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ref WebhookEvent AddEvent()
    {
        if (_eventCount == _events.Length)
            Grow(ref _events, _eventCount);
        ref var e = ref _events[_eventCount++];
        e = default;
        e.MatchedContact = -1;
        return ref e;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ref WebhookContact AddContact()
    {
        if (_contactCount == _contacts.Length)
            Grow(ref _contacts, _contactCount);
        ref var c = ref _contacts[_contactCount++];
        c = default;
        return ref c;
    }

    private static void Grow<T>(ref T[] array, int count)
    {
        var bigger = ArrayPool<T>.Shared.Rent(array.Length * 2);
        array.AsSpan(0, count).CopyTo(bigger);
        ArrayPool<T>.Shared.Return(array);
        array = bigger;
    }

    /// <summary>Returns the arrays to the pool.</summary>
    public void Dispose()
    {
        ArrayPool<WebhookEvent>.Shared.Return(_events);
        ArrayPool<WebhookContact>.Shared.Return(_contacts);
        _events = [];
        _contacts = [];
        _eventCount = 0;
        _contactCount = 0;
    }
}
