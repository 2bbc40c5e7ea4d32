using System.Buffers.Binary;
using FASTER.core;

namespace FastIngest.Storage;

/// <summary>The kinds of record in the event log.</summary>
public enum LogRecordType : byte
{
    /// <summary>An accepted payload and the events in it that were new (see <see cref="BatchRecord"/>).</summary>
    Batch = 1,
    /// <summary>An authentic payload that did not parse (see <see cref="QuarantineRecord"/>); kept in the quarantine log.</summary>
    Quarantine = 2,
    /// <summary>One event delivered to its tenant's bot (see <see cref="AckRecord"/>).</summary>
    Ack = 3,
}

/// <summary>
/// Record layouts, little-endian. Every record starts with <c>[type u8][version u8][reserved u16]</c>.
/// <list type="bullet">
/// <item>Batch: <c>[received unix ms i64][tenant length u16][tenant utf8][event count i32]</c>, per event
/// <c>[index in payload i32][dedupe key 16 bytes]</c>, then <c>[body length i32][body]</c>.</item>
/// <item>Quarantine: <c>[received unix ms i64][tenant length u16][tenant utf8][reason length u16][reason utf8][body length i32][body]</c>.</item>
/// <item>Ack: <c>[batch address i64][event index i32]</c>, then <c>[destination id u32]</c> (absent in acks written
/// before destinations existed: they count for the tenant's first destination), then <c>[tenant hash u32]</c>
/// (FNV-1a 32 of the tenant id; absent in older acks), which lets start-up drop acks below their destination's
/// delivered watermark.</item>
/// <item>A batch replayed from one destination's dead letters ends, after its body, with <c>[destination id u32]</c>:
/// only that destination delivers it.</item>
/// </list>
/// </summary>
public static class LogRecordFormat
{
    /// <summary>The only version written so far.</summary>
    public const byte Version = 1;

    /// <summary>Bytes of the common header.</summary>
    public const int HeaderSize = 4;

    /// <summary>Bytes per event in a batch record: index and key.</summary>
    public const int EventEntrySize = 4 + 16;

    /// <summary>The record type, or 0 for a record too short to have one.</summary>
    public static LogRecordType TypeOf(ReadOnlySpan<byte> record)
        => record.Length >= HeaderSize && record[1] == Version ? (LogRecordType)record[0] : 0;

    /// <summary>Header, received time and tenant: the start of batch and quarantine records. Returns bytes written.</summary>
    internal static int WritePayloadPrefix(Span<byte> destination, LogRecordType type, long receivedUnixMs, ReadOnlySpan<byte> tenant)
    {
        var at = WriteHeader(destination, type);
        BinaryPrimitives.WriteInt64LittleEndian(destination[at..], receivedUnixMs);
        at += 8;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[at..], (ushort)tenant.Length);
        at += 2;
        tenant.CopyTo(destination[at..]);
        return at + tenant.Length;
    }

    /// <summary>Body length and body: the end of batch and quarantine records.</summary>
    internal static void WriteBody(Span<byte> destination, ReadOnlySpan<byte> body)
    {
        BinaryPrimitives.WriteInt32LittleEndian(destination, body.Length);
        body.CopyTo(destination[4..]);
    }

    /// <summary>A string field, <c>[length u16][utf8]</c>, at <paramref name="at"/>; returns the offset after it.</summary>
    internal static int WriteString(Span<byte> destination, int at, ReadOnlySpan<byte> utf8)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(destination[at..], (ushort)utf8.Length);
        utf8.CopyTo(destination[(at + 2)..]);
        return at + 2 + utf8.Length;
    }

    /// <summary>Reads a string field written by <see cref="WriteString"/> and moves <paramref name="at"/> past it ("" when empty).</summary>
    internal static string ReadString(ReadOnlySpan<byte> record, ref int at)
    {
        var length = BinaryPrimitives.ReadUInt16LittleEndian(record[at..]);
        var value = System.Text.Encoding.UTF8.GetString(record.Slice(at + 2, length));
        at += 2 + length;
        return value;
    }

    internal static int WriteHeader(Span<byte> destination, LogRecordType type)
    {
        destination[0] = (byte)type;
        destination[1] = Version;
        destination[2] = 0;
        destination[3] = 0;
        return HeaderSize;
    }
}

/// <summary>
/// A batch record to append: the verified body of one request and the new events in it. A struct over buffers the
/// caller owns, serialized straight into the log's page by FASTER (<see cref="ILogEnqueueEntry"/>), so appending
/// copies the body once and allocates nothing.
/// </summary>
public readonly struct BatchRecord : ILogEnqueueEntry
{
    private readonly byte[] _tenant;
    private readonly long _receivedUnixMs;
    private readonly int[] _indices;
    private readonly DedupeKey[] _keys;
    private readonly int _count;
    private readonly byte[] _body;
    private readonly int _bodyLength;
    private readonly uint _onlyFor;

    /// <summary>
    /// A batch of <paramref name="count"/> events for one destination only (<paramref name="onlyFor"/>, its id; a
    /// replayed dead letter), or for all of the tenant's when it is 0.
    /// </summary>
    public BatchRecord(byte[] tenantUtf8, long receivedUnixMs, int[] indices, DedupeKey[] keys, int count, byte[] body, int bodyLength, uint onlyFor)
        : this(tenantUtf8, receivedUnixMs, indices, keys, count, body, bodyLength) => _onlyFor = onlyFor;

    /// <summary>
    /// A batch of <paramref name="count"/> events: <paramref name="indices"/>[i] is the event's position in the payload,
    /// <paramref name="keys"/>[i] its dedupe key. <paramref name="body"/>[..<paramref name="bodyLength"/>] is the payload.
    /// </summary>
    public BatchRecord(byte[] tenantUtf8, long receivedUnixMs, int[] indices, DedupeKey[] keys, int count, byte[] body, int bodyLength)
    {
        _tenant = tenantUtf8;
        _receivedUnixMs = receivedUnixMs;
        _indices = indices;
        _keys = keys;
        _count = count;
        _body = body;
        _bodyLength = bodyLength;
    }

    /// <inheritdoc/>
    public int SerializedLength => LogRecordFormat.HeaderSize + 8 + 2 + _tenant.Length + 4 + _count * LogRecordFormat.EventEntrySize + 4 + _bodyLength + (_onlyFor != 0 ? 4 : 0);

    /// <inheritdoc/>
    public void SerializeTo(Span<byte> dest)
    {
        var at = LogRecordFormat.WritePayloadPrefix(dest, LogRecordType.Batch, _receivedUnixMs, _tenant);
        BinaryPrimitives.WriteInt32LittleEndian(dest[at..], _count);
        at += 4;
        for (var i = 0; i < _count; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(dest[at..], _indices[i]);
            _keys[i].WriteTo(dest[(at + 4)..]);
            at += LogRecordFormat.EventEntrySize;
        }
        LogRecordFormat.WriteBody(dest[at..], _body.AsSpan(0, _bodyLength));
        if (_onlyFor != 0)
            BinaryPrimitives.WriteUInt32LittleEndian(dest[(at + 4 + _bodyLength)..], _onlyFor);
    }
}

/// <summary>A quarantine record to append: an authentic payload that did not parse, and why.</summary>
public readonly struct QuarantineRecord : ILogEnqueueEntry
{
    private readonly byte[] _tenant;
    private readonly long _receivedUnixMs;
    private readonly byte[] _reason;
    private readonly byte[] _body;
    private readonly int _bodyLength;

    /// <summary>Creates the record; <paramref name="reasonUtf8"/> is cut to 1,024 bytes.</summary>
    public QuarantineRecord(byte[] tenantUtf8, long receivedUnixMs, byte[] reasonUtf8, byte[] body, int bodyLength)
    {
        _tenant = tenantUtf8;
        _receivedUnixMs = receivedUnixMs;
        _reason = reasonUtf8.Length > 1024 ? reasonUtf8[..1024] : reasonUtf8;
        _body = body;
        _bodyLength = bodyLength;
    }

    /// <inheritdoc/>
    public int SerializedLength => LogRecordFormat.HeaderSize + 8 + 2 + _tenant.Length + 2 + _reason.Length + 4 + _bodyLength;

    /// <inheritdoc/>
    public void SerializeTo(Span<byte> dest)
    {
        var at = LogRecordFormat.WritePayloadPrefix(dest, LogRecordType.Quarantine, _receivedUnixMs, _tenant);
        BinaryPrimitives.WriteUInt16LittleEndian(dest[at..], (ushort)_reason.Length);
        at += 2;
        _reason.CopyTo(dest[at..]);
        at += _reason.Length;
        LogRecordFormat.WriteBody(dest[at..], _body.AsSpan(0, _bodyLength));
    }
}

/// <summary>An ack record: event <c>EventIndex</c> of the batch at <c>BatchAddress</c> reached destination <c>Destination</c> (delivered or dead-lettered).</summary>
public readonly struct AckRecord : ILogEnqueueEntry
{
    /// <summary>Size in bytes of an ack without a destination (as written before destinations existed).</summary>
    public const int Size = LogRecordFormat.HeaderSize + 8 + 4;

    /// <summary>The destination's id (see the destination's <c>Id</c>: FNV-1a 32 of its name), or 0 in an ack that names none.</summary>
    public uint Destination { get; }

    /// <summary>The tenant's hash (<see cref="TenantHashOf"/>), or 0 in an ack written before acks carried it.</summary>
    public uint Tenant { get; }

    /// <summary>Creates an ack for destination <paramref name="destination"/> of the tenant whose hash is <paramref name="tenant"/>.</summary>
    public AckRecord(long batchAddress, int eventIndex, uint destination, uint tenant)
        : this(batchAddress, eventIndex)
    {
        Destination = destination;
        Tenant = tenant;
    }

    /// <summary>Address of the batch record.</summary>
    public long BatchAddress { get; }

    /// <summary>Position of the event in the payload.</summary>
    public int EventIndex { get; }

    /// <summary>Creates an ack that names neither destination nor tenant (the format before destinations).</summary>
    public AckRecord(long batchAddress, int eventIndex)
    {
        BatchAddress = batchAddress;
        EventIndex = eventIndex;
    }

    /// <summary>The tenant hash written in acks: FNV-1a 32 of the tenant id's UTF-8 bytes, never 0.</summary>
    public static uint TenantHashOf(ReadOnlySpan<byte> tenantUtf8)
    {
        var hash = Internal.Fnv1a.Hash32(tenantUtf8);
        return hash == 0 ? 1 : hash;
    }

    /// <inheritdoc/>
    public int SerializedLength => Tenant != 0 ? Size + 8 : Destination != 0 ? Size + 4 : Size;

    /// <inheritdoc/>
    public void SerializeTo(Span<byte> dest)
    {
        var at = LogRecordFormat.WriteHeader(dest, LogRecordType.Ack);
        BinaryPrimitives.WriteInt64LittleEndian(dest[at..], BatchAddress);
        BinaryPrimitives.WriteInt32LittleEndian(dest[(at + 8)..], EventIndex);
        if (Destination != 0 || Tenant != 0)
            BinaryPrimitives.WriteUInt32LittleEndian(dest[(at + 12)..], Destination);
        if (Tenant != 0)
            BinaryPrimitives.WriteUInt32LittleEndian(dest[(at + 16)..], Tenant);
    }

    /// <summary>Reads an ack record.</summary>
    /// <exception cref="InvalidDataException">The record is not an ack.</exception>
    public static AckRecord Read(ReadOnlySpan<byte> record)
    {
        if (LogRecordFormat.TypeOf(record) != LogRecordType.Ack || record.Length < Size)
            throw new InvalidDataException("not an ack record");
        var at = LogRecordFormat.HeaderSize;
        var destination = record.Length >= Size + 4 ? BinaryPrimitives.ReadUInt32LittleEndian(record[(at + 12)..]) : 0;
        var tenant = record.Length >= Size + 8 ? BinaryPrimitives.ReadUInt32LittleEndian(record[(at + 16)..]) : 0;
        return new AckRecord(BinaryPrimitives.ReadInt64LittleEndian(record[at..]), BinaryPrimitives.ReadInt32LittleEndian(record[(at + 8)..]), destination, tenant);
    }
}

/// <summary>Reads a batch or quarantine record in place.</summary>
public readonly ref struct StoredPayload
{
    /// <summary>Batch or quarantine.</summary>
    public LogRecordType Type { get; }

    /// <summary>When it was accepted, Unix ms.</summary>
    public long ReceivedUnixMs { get; }

    /// <summary>The tenant id, UTF-8.</summary>
    public ReadOnlySpan<byte> Tenant { get; }

    /// <summary>Batch only: the event table, <see cref="EventCount"/> entries of <see cref="LogRecordFormat.EventEntrySize"/> bytes.</summary>
    public ReadOnlySpan<byte> EventTable { get; }

    /// <summary>Quarantine only: why it did not parse, UTF-8.</summary>
    public ReadOnlySpan<byte> Reason { get; }

    /// <summary>The webhook body exactly as received.</summary>
    public ReadOnlySpan<byte> Body { get; }

    /// <summary>Number of events in <see cref="EventTable"/>.</summary>
    public int EventCount => EventTable.Length / LogRecordFormat.EventEntrySize;

    /// <summary>Batch only: the one destination (its id) that delivers it (a replayed dead letter), or 0 for every destination of the tenant.</summary>
    public uint OnlyFor { get; }

    private StoredPayload(LogRecordType type, long received, ReadOnlySpan<byte> tenant, ReadOnlySpan<byte> table, ReadOnlySpan<byte> reason, ReadOnlySpan<byte> body, uint onlyFor = 0)
    {
        OnlyFor = onlyFor;
        Type = type;
        ReceivedUnixMs = received;
        Tenant = tenant;
        EventTable = table;
        Reason = reason;
        Body = body;
    }

    /// <summary>Position in the payload of table entry <paramref name="i"/>.</summary>
    public int EventIndexAt(int i) => BinaryPrimitives.ReadInt32LittleEndian(EventTable[(i * LogRecordFormat.EventEntrySize)..]);

    /// <summary>Dedupe key of table entry <paramref name="i"/>.</summary>
    public DedupeKey KeyAt(int i) => DedupeKey.FromBytes(EventTable[(i * LogRecordFormat.EventEntrySize + 4)..]);

    /// <summary>Reads a batch or quarantine record.</summary>
    /// <exception cref="InvalidDataException">Truncated, or of another type.</exception>
    public static StoredPayload Read(ReadOnlySpan<byte> record)
    {
        var type = LogRecordFormat.TypeOf(record);
        if (type is not (LogRecordType.Batch or LogRecordType.Quarantine))
            throw new InvalidDataException($"not a payload record (type {type})");
        try
        {
            var at = LogRecordFormat.HeaderSize;
            var received = BinaryPrimitives.ReadInt64LittleEndian(record[at..]);
            at += 8;
            int tenantLength = BinaryPrimitives.ReadUInt16LittleEndian(record[at..]);
            at += 2;
            var tenant = record.Slice(at, tenantLength);
            at += tenantLength;
            ReadOnlySpan<byte> table = default, reason = default;
            if (type == LogRecordType.Batch)
            {
                var count = BinaryPrimitives.ReadInt32LittleEndian(record[at..]);
                at += 4;
                table = record.Slice(at, checked(count * LogRecordFormat.EventEntrySize));
                at += table.Length;
            }
            else
            {
                int reasonLength = BinaryPrimitives.ReadUInt16LittleEndian(record[at..]);
                at += 2;
                reason = record.Slice(at, reasonLength);
                at += reasonLength;
            }
            var bodyLength = BinaryPrimitives.ReadInt32LittleEndian(record[at..]);
            at += 4;
            var body = record.Slice(at, bodyLength);
            at += bodyLength;
            var onlyFor = type == LogRecordType.Batch && record.Length >= at + 4 ? BinaryPrimitives.ReadUInt32LittleEndian(record[at..]) : 0;
            return new StoredPayload(type, received, tenant, table, reason, body, onlyFor);
        }
        catch (ArgumentOutOfRangeException)
        {
            throw new InvalidDataException("truncated payload record");
        }
        catch (OverflowException)
        {
            throw new InvalidDataException("corrupt payload record");
        }
    }
}
