using System.Buffers.Binary;
using System.Text;
using FASTER.core;
using FastIngest.Storage;

namespace FastIngest.Outbound;

/// <summary>
/// Records of the outbound log (<c>DataDir/outbound/</c>), little-endian, after the common header
/// <c>[type u8][version u8][reserved u16]</c> (<see cref="LogRecordFormat"/>); strings are <c>[length u16][utf8]</c>:
/// <list type="bullet">
/// <item>Send (type 6): <c>[queued unix ms i64]</c>, tenant, phone_number_id, idempotency key, to, type,
/// authorization, Graph API version, then <c>[body length i32][body]</c>: the bot's JSON as it came. Its log address is
/// the send's id. The authorization is empty when the tenant has its own token, and <see cref="TokenHeldInMemory"/>
/// when the bot's token was passed through: that token is never written to disk (records of versions before that hold
/// the header itself, and are still read).</item>
/// <item>Step (type 7): <c>[send address i64][status u8][unix ms i64][Meta timestamp i64][error code i32]</c>, wamid,
/// detail.</item>
/// <item>Linked step (type 9, written since the send index): a step record followed by <c>[previous step address
/// i64]</c> (-1 for the send's first step), so that a send's history is read back from its last step alone.</item>
/// <item>Emitted (type 8): <c>[step address i64]</c>: the lifecycle events of every step at or below that address are
/// committed in the event log (those after it are emitted again at start, and deduplicated there by event id).</item>
/// </list>
/// </summary>
internal static class OutboundRecords
{
    public const LogRecordType Send = (LogRecordType)6;
    public const LogRecordType Step = (LogRecordType)7;
    public const LogRecordType Emitted = (LogRecordType)8;
    public const LogRecordType LinkedStep = (LogRecordType)9;

    /// <summary>The authorization field of a send whose bot token was passed through and is held in memory only.</summary>
    public const string TokenHeldInMemory = "(held in memory only)";

    public readonly struct EmittedEntry(long through) : ILogEnqueueEntry
    {
        public int SerializedLength => LogRecordFormat.HeaderSize + 8;

        public void SerializeTo(Span<byte> dest)
        {
            var at = LogRecordFormat.WriteHeader(dest, Emitted);
            BinaryPrimitives.WriteInt64LittleEndian(dest[at..], through);
        }
    }

    public static long ReadEmitted(ReadOnlySpan<byte> record) => BinaryPrimitives.ReadInt64LittleEndian(record[LogRecordFormat.HeaderSize..]);

    public readonly struct SendEntry(long createdUnixMs, byte[][] strings, ReadOnlyMemory<byte> body) : ILogEnqueueEntry
    {
        public int SerializedLength
        {
            get
            {
                var n = LogRecordFormat.HeaderSize + 8 + 4 + body.Length;
                foreach (var s in strings)
                    n += 2 + s.Length;
                return n;
            }
        }

        public void SerializeTo(Span<byte> dest)
        {
            var at = LogRecordFormat.WriteHeader(dest, Send);
            BinaryPrimitives.WriteInt64LittleEndian(dest[at..], createdUnixMs);
            at += 8;
            foreach (var s in strings)
                at = LogRecordFormat.WriteString(dest, at, s);
            BinaryPrimitives.WriteInt32LittleEndian(dest[at..], body.Length);
            body.Span.CopyTo(dest[(at + 4)..]);
        }
    }

    public struct StepEntry(long sendAddress, OutboundStatus status, long atUnixMs, long metaUnixSeconds, int code, byte[] wamid, byte[] detail) : ILogEnqueueEntry
    {
        /// <summary>The address of the send's step before this one, or -1 (set when the append's place is decided).</summary>
        public long Previous { get; set; } = -1;

        public readonly int SerializedLength => LogRecordFormat.HeaderSize + 8 + 1 + 8 + 8 + 4 + 2 + wamid.Length + 2 + detail.Length + 8;

        public readonly void SerializeTo(Span<byte> dest)
        {
            var at = LogRecordFormat.WriteHeader(dest, LinkedStep);
            BinaryPrimitives.WriteInt64LittleEndian(dest[at..], sendAddress);
            dest[at + 8] = (byte)status;
            BinaryPrimitives.WriteInt64LittleEndian(dest[(at + 9)..], atUnixMs);
            BinaryPrimitives.WriteInt64LittleEndian(dest[(at + 17)..], metaUnixSeconds);
            BinaryPrimitives.WriteInt32LittleEndian(dest[(at + 25)..], code);
            at += 29;
            at = LogRecordFormat.WriteString(dest, at, wamid);
            at = LogRecordFormat.WriteString(dest, at, detail);
            BinaryPrimitives.WriteInt64LittleEndian(dest[at..], Previous);
        }
    }

    /// <summary>Bytes of a string field: UTF-8, cut to what a u16 length holds.</summary>
    public static byte[] Field(string? value)
    {
        if (string.IsNullOrEmpty(value))
            return [];
        var bytes = Encoding.UTF8.GetBytes(value);
        return bytes.Length <= ushort.MaxValue ? bytes : bytes[..ushort.MaxValue];
    }


    private static string? ReadOptional(ReadOnlySpan<byte> record, ref int at)
        => LogRecordFormat.ReadString(record, ref at) is { Length: > 0 } value ? value : null;

    public static OutboundMessage ReadSend(ReadOnlySpan<byte> record, long address)
    {
        var at = LogRecordFormat.HeaderSize;
        var created = BinaryPrimitives.ReadInt64LittleEndian(record[at..]);
        at += 8;
        var tenant = LogRecordFormat.ReadString(record, ref at);
        var phone = LogRecordFormat.ReadString(record, ref at);
        var key = LogRecordFormat.ReadString(record, ref at);
        var to = LogRecordFormat.ReadString(record, ref at);
        var type = LogRecordFormat.ReadString(record, ref at);
        var auth = ReadOptional(record, ref at);
        var version = LogRecordFormat.ReadString(record, ref at);
        var length = BinaryPrimitives.ReadInt32LittleEndian(record[at..]);
        var lost = auth == TokenHeldInMemory;
        return new OutboundMessage(address, tenant, phone, key, to, type, lost ? null : auth, version, record.Slice(at + 4, length).ToArray(), created) { TokenLost = lost };
    }

    /// <summary>A step record (type 7 or 9): its send, the step, its wamid, and the send's previous step (-1: none, or not known for type 7).</summary>
    public static (long SendAddress, OutboundStep Step, string? Wamid, long Previous) ReadStep(ReadOnlySpan<byte> record)
    {
        var at = LogRecordFormat.HeaderSize;
        var address = BinaryPrimitives.ReadInt64LittleEndian(record[at..]);
        var status = (OutboundStatus)record[at + 8];
        var atMs = BinaryPrimitives.ReadInt64LittleEndian(record[(at + 9)..]);
        var meta = BinaryPrimitives.ReadInt64LittleEndian(record[(at + 17)..]);
        var code = BinaryPrimitives.ReadInt32LittleEndian(record[(at + 25)..]);
        at += 29;
        var wamid = ReadOptional(record, ref at);
        var detail = ReadOptional(record, ref at);
        var previous = LogRecordFormat.TypeOf(record) == LinkedStep ? BinaryPrimitives.ReadInt64LittleEndian(record[at..]) : -1;
        return (address, new OutboundStep(status, atMs, meta, code, detail), wamid, previous);
    }
}
