using System.Buffers.Binary;
using System.Runtime.InteropServices;
using FASTER.core;

namespace FastIngest.Storage;

/// <summary>A 128-bit dedupe key: the leading 16 bytes of a SHA-256 over tenant and event id (see <see cref="Ingest.EventIdentity.Key"/>).</summary>
[StructLayout(LayoutKind.Sequential, Size = 16)]
public readonly struct DedupeKey : IEquatable<DedupeKey>
{
    /// <summary>Bytes 0..7, little-endian.</summary>
    public readonly ulong Low;

    /// <summary>Bytes 8..15, little-endian.</summary>
    public readonly ulong High;

    /// <summary>Creates a key from its two halves.</summary>
    public DedupeKey(ulong low, ulong high)
    {
        Low = low;
        High = high;
    }

    /// <summary>Reads the first 16 bytes of <paramref name="bytes"/>.</summary>
    public static DedupeKey FromBytes(ReadOnlySpan<byte> bytes)
        => new(BinaryPrimitives.ReadUInt64LittleEndian(bytes), BinaryPrimitives.ReadUInt64LittleEndian(bytes[8..]));

    /// <summary>Writes the 16 bytes into <paramref name="destination"/>.</summary>
    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, Low);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], High);
    }

    /// <inheritdoc/>
    public bool Equals(DedupeKey other) => Low == other.Low && High == other.High;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is DedupeKey k && Equals(k);

    /// <inheritdoc/>
    public override int GetHashCode() => (int)Low;

    /// <summary>Key equality.</summary>
    public static bool operator ==(DedupeKey left, DedupeKey right) => left.Equals(right);

    /// <summary>Key inequality.</summary>
    public static bool operator !=(DedupeKey left, DedupeKey right) => !left.Equals(right);

    /// <inheritdoc/>
    public override string ToString() => $"{High:x16}{Low:x16}";
}

/// <summary>FASTER's comparer for <see cref="DedupeKey"/>: the key is already a uniform hash, so its low half is the hash.</summary>
internal sealed class DedupeKeyComparer : IFasterEqualityComparer<DedupeKey>
{
    public static readonly DedupeKeyComparer Instance = new();

    public bool Equals(ref DedupeKey k1, ref DedupeKey k2) => k1.Low == k2.Low && k1.High == k2.High;

    public long GetHashCode64(ref DedupeKey k) => (long)k.Low;
}

/// <summary>
/// What the dedupe store remembers of an accepted event: when it was first accepted, where in the event log it lies,
/// and in which process start (boot) it was marked.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct DedupeEntry
{
    /// <summary>First acceptance, Unix ms.</summary>
    public long SeenUnixMs;

    /// <summary>Event log address of the record that holds the event.</summary>
    public long LogAddress;

    /// <summary>The boot (see <see cref="BootCounter"/>) that marked it.</summary>
    public int Boot;

    /// <summary>Unused; keeps the struct 8-byte aligned.</summary>
    public int Reserved;
}
