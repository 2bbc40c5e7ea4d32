using FastIngest.Dispatch;
using StackExchange.Redis;

namespace FastIngest.Destinations;

/// <summary>
/// One stream entry per event: <c>XADD {Stream} MAXLEN ~ {MaxLength} * event_id {id} tenant {tenant} kind {kind}
/// payload {Meta-shaped JSON}</c> (no <c>MAXLEN</c> when <c>MaxLength</c> is 0). Consumers read it with a consumer
/// group (<c>XREADGROUP</c>) and <c>XACK</c>. Delivered = Redis answered the <c>XADD</c>; a crash between that answer
/// and our ack adds the event again (same <c>event_id</c>; consumers dedupe by it).
/// </summary>
internal sealed class RedisStreamTarget(RedisConnection redis, string stream, long maxLength, string tenant) : IForwardTarget
{
    public string Describe => $"redis-stream {redis.Describe} {stream}";

    public ValueTask<ForwardResult> SendAsync(ForwardItem item, CancellationToken cancellationToken)
    {
        NameValueEntry[] fields =
        [
            new("event_id", item.EventId),
            new("tenant", tenant),
            new("kind", EventFilter.Name(item.Class)),
            new("payload", item.Payload),
        ];
        return redis.WriteAsync((Stream: stream, Fields: fields, MaxLength: maxLength > 0 ? maxLength : (long?)null),
            static (db, s) => db.StreamAddAsync(s.Stream, s.Fields, maxLength: s.MaxLength, useApproximateMaxLength: true), cancellationToken);
    }

    public void Dispose() => redis.Dispose();
}
