using System.Buffers.Binary;
using System.Text;
using FASTER.core;
using FastIngest.Storage;

namespace FastIngest.Dispatch;

/// <summary>
/// Records of the dead-letter log, little-endian, after the common header <c>[type u8][version u8][reserved u16]</c>
/// (<see cref="LogRecordFormat"/>):
/// <list type="bullet">
/// <item>Dead letter (type 4): <c>[received unix ms i64][dead-lettered unix ms i64][attempts i32]</c>, then tenant,
/// event id and reason as <c>[length u16][utf8]</c>, then <c>[payload length i32][payload]</c>: the exact JSON body
/// that was (or would have been) forwarded to the bot, Meta-shaped with one event.</item>
/// <item>Resolved (type 5): <c>[dead letter address i64][resolution u8]</c> (<see cref="DeadLetterResolution"/>).</item>
/// </list>
/// </summary>
internal static class DeadLetterRecord
{
    public const LogRecordType DeadLetter = (LogRecordType)4;
    public const LogRecordType Resolved = (LogRecordType)5;

    /// <summary>A dead letter to append.</summary>
    /// <remarks>
    /// <c>[received i64][dead-lettered i64][attempts i32][tenant][event id][reason][payload length i32][payload][destination]</c>,
    /// strings as <c>[length u16][utf8]</c>; entries written before destinations existed end after the payload (destination <c>forward</c>).
    /// </remarks>
    public readonly struct Entry(long receivedUnixMs, long deadLetteredUnixMs, int attempts, byte[] tenant, byte[] eventId, byte[] reason, ReadOnlyMemory<byte> payload, byte[] destination) : ILogEnqueueEntry
    {
        public int SerializedLength => LogRecordFormat.HeaderSize + 8 + 8 + 4 + 2 + tenant.Length + 2 + eventId.Length + 2 + reason.Length + 4 + payload.Length + 2 + destination.Length;

        public void SerializeTo(Span<byte> dest)
        {
            var at = LogRecordFormat.WriteHeader(dest, DeadLetter);
            BinaryPrimitives.WriteInt64LittleEndian(dest[at..], receivedUnixMs);
            BinaryPrimitives.WriteInt64LittleEndian(dest[(at + 8)..], deadLetteredUnixMs);
            BinaryPrimitives.WriteInt32LittleEndian(dest[(at + 16)..], attempts);
            at += 20;
            at = LogRecordFormat.WriteString(dest, at, tenant);
            at = LogRecordFormat.WriteString(dest, at, eventId);
            at = LogRecordFormat.WriteString(dest, at, reason);
            BinaryPrimitives.WriteInt32LittleEndian(dest[at..], payload.Length);
            payload.Span.CopyTo(dest[(at + 4)..]);
            LogRecordFormat.WriteString(dest, at + 4 + payload.Length, destination);
        }
    }

    /// <summary>A resolution (replayed or discarded) of the dead letter at an address.</summary>
    public readonly struct Resolution(long address, DeadLetterResolution how) : ILogEnqueueEntry
    {
        public int SerializedLength => LogRecordFormat.HeaderSize + 9;

        public void SerializeTo(Span<byte> dest)
        {
            var at = LogRecordFormat.WriteHeader(dest, Resolved);
            BinaryPrimitives.WriteInt64LittleEndian(dest[at..], address);
            dest[at + 8] = (byte)how;
        }
    }

    /// <summary>Reads a dead letter's fields (not the payload) from <paramref name="record"/>.</summary>
    /// <exception cref="InvalidDataException">The record is truncated.</exception>
    public static DeadLetter ReadEntry(ReadOnlySpan<byte> record, long address)
    {
        var at = LogRecordFormat.HeaderSize;
        var received = BinaryPrimitives.ReadInt64LittleEndian(record[at..]);
        var deadLettered = BinaryPrimitives.ReadInt64LittleEndian(record[(at + 8)..]);
        var attempts = BinaryPrimitives.ReadInt32LittleEndian(record[(at + 16)..]);
        at += 20;
        var tenant = LogRecordFormat.ReadString(record, ref at);
        var eventId = LogRecordFormat.ReadString(record, ref at);
        var reason = LogRecordFormat.ReadString(record, ref at);
        var payloadLength = BinaryPrimitives.ReadInt32LittleEndian(record[at..]);
        if (payloadLength < 0 || at + 4 + payloadLength > record.Length)
            throw new InvalidDataException($"dead letter at {address} is truncated");
        at += 4 + payloadLength;
        var destination = record.Length >= at + 2 ? LogRecordFormat.ReadString(record, ref at) : Destinations.DestinationSpec.ForwardName;
        return new DeadLetter(address, tenant, eventId, received, deadLettered, attempts, reason, payloadLength) { Destination = destination };
    }

    /// <summary>The payload of a dead-letter record.</summary>
    public static ReadOnlySpan<byte> Payload(ReadOnlySpan<byte> record)
    {
        var at = LogRecordFormat.HeaderSize + 20;
        for (var i = 0; i < 3; i++)
            at += 2 + BinaryPrimitives.ReadUInt16LittleEndian(record[at..]);
        var length = BinaryPrimitives.ReadInt32LittleEndian(record[at..]);
        return record.Slice(at + 4, length);
    }

    /// <summary>Reads a resolution record.</summary>
    public static (long Address, DeadLetterResolution How) ReadResolution(ReadOnlySpan<byte> record)
        => (BinaryPrimitives.ReadInt64LittleEndian(record[LogRecordFormat.HeaderSize..]), (DeadLetterResolution)record[LogRecordFormat.HeaderSize + 8]);

}

/// <summary>How a dead letter left the queue.</summary>
public enum DeadLetterResolution : byte
{
    /// <summary>Put back into the event log for delivery.</summary>
    Replayed = 1,
    /// <summary>Dropped by an operator.</summary>
    Discarded = 2,
}

/// <summary>
/// One event in the dead-letter queue: <see cref="Id"/> is its address in the dead-letter log (stable across restarts);
/// times are Unix milliseconds; <see cref="PayloadBytes"/> is the size of the Meta-shaped JSON kept for replay.
/// </summary>
public sealed record DeadLetter(long Id, string Tenant, string EventId, long ReceivedUnixMs, long DeadLetteredUnixMs, int Attempts, string Reason, int PayloadBytes)
{
    /// <summary>The destination that gave up on it (<c>forward</c> for a tenant without <c>Destinations</c>, and for entries written before destinations existed); a replay delivers it there only.</summary>
    public string Destination { get; init; } = Destinations.DestinationSpec.ForwardName;
}
