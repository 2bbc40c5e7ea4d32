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

    public async ValueTask<ForwardResult> SendAsync(ForwardItem item, CancellationToken cancellationToken)
    {
        NameValueEntry[] fields =
        [
            new("event_id", item.EventId),
            new("tenant", tenant),
            new("kind", EventFilter.Name(item.Class)),
            new("payload", item.Payload),
        ];
        try
        {
            var db = await redis.DatabaseAsync(cancellationToken).ConfigureAwait(false);
            await db.StreamAddAsync(stream, fields, maxLength: maxLength > 0 ? maxLength : null, useApproximateMaxLength: true).WaitAsync(cancellationToken).ConfigureAwait(false);
            return ForwardResult.Ok;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return RedisConnection.Failure(ex);
        }
    }

    public void Dispose() => redis.Dispose();
}
