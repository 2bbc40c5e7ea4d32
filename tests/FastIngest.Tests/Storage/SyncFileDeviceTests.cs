using System.Runtime.InteropServices;
using FastIngest.Storage;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Storage;

/// <summary>
/// The device under every FASTER file: writes land where FASTER asked, read back the same, survive reopening, and with
/// write-through the aligned ones really take the O_DIRECT | O_DSYNC handle while unaligned ones fall back to the
/// buffered handle and fsync.
/// </summary>
public sealed unsafe class SyncFileDeviceTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Aligned_and_unaligned_writes_read_back_and_survive_reopen(bool writeThrough)
    {
        using var dir = new TempDir();
        var file = dir.Sub("log");
        var sector = SyncFileDevice.SectorBytes;
        var aligned = Pattern(4 * sector, 1);
        var unaligned = Pattern(100, 2);
        var overwrite = Pattern(sector, 3);

        using (var device = new SyncFileDevice(file, writeThrough))
        {
            Write(device, aligned, 0);
            Write(device, unaligned, (ulong)(8 * sector + 7));
            Write(device, overwrite, (ulong)sector); // direct over a range first written the same way
            Assert.Equal(Expected(), Read(device, 0, 9 * sector).AsSpan(0, 8 * sector + 107).ToArray());
            Assert.Null(device.Failure);
            if (writeThrough && DirectIoAvailable(dir.Path))
                Assert.Equal(2, device.WrittenThrough);
            else
                Assert.Equal(0, device.WrittenThrough);
        }

        using (var reopened = new SyncFileDevice(file, writeThrough))
            Assert.Equal(Expected(), Read(reopened, 0, 9 * sector).AsSpan(0, 8 * sector + 107).ToArray());

        byte[] Expected()
        {
            var all = new byte[8 * sector + 107];
            aligned.CopyTo(all, 0);
            overwrite.CopyTo(all, sector);
            unaligned.CopyTo(all, 8 * sector + 7);
            return all;
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_write_larger_than_a_slice_goes_in_slices_and_reads_back_whole(bool writeThrough)
    {
        // The shared writer issues at most DeviceIo.SharedSliceBytes per pwrite: a checkpoint-sized request is cut
        // into slices at the right offsets, written through or buffered, and reads back byte for byte.
        using var dir = new TempDir();
        var sector = SyncFileDevice.SectorBytes;
        var large = Pattern(2 * DeviceIo.SharedSliceBytes + 3 * sector, 4);
        var offset = (ulong)(5 * sector);
        using (var device = new SyncFileDevice(dir.Sub("log"), writeThrough))
        {
            Write(device, large, offset);
            Assert.Null(device.Failure);
            Assert.Equal(large, Read(device, offset, large.Length));
            Assert.Equal(writeThrough && DirectIoAvailable(dir.Path) ? 1 : 0, device.WrittenThrough);
        }
        using var reopened = new SyncFileDevice(dir.Sub("log"), writeThrough);
        Assert.Equal(large, Read(reopened, offset, large.Length));
        Assert.Equal(new byte[5 * sector], Read(reopened, 0, 5 * sector));
    }

    [Fact]
    public void Write_through_is_on_where_the_platform_has_it()
    {
        using var dir = new TempDir();
        using var device = new SyncFileDevice(dir.Sub("log"), writeThrough: true);
        var expected = OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64;
        Assert.Equal(expected, device.WritesThrough);
        using var buffered = new SyncFileDevice(dir.Sub("other"));
        Assert.False(buffered.WritesThrough);
    }

    private static bool DirectIoAvailable(string directory)
    {
        if (DirectIo.WriteThroughFlags == 0)
            return false;
        using var probe = DirectIo.Open(Path.Combine(directory, "probe"), DirectIo.WriteThroughFlags);
        return probe is not null;
    }

    private static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static void Write(SyncFileDevice device, byte[] data, ulong offset)
    {
        var memory = NativeMemory.AlignedAlloc((nuint)Math.Max(data.Length, SyncFileDevice.SectorBytes), (nuint)SyncFileDevice.SectorBytes);
        try
        {
            data.CopyTo(new Span<byte>(memory, data.Length));
            using var done = new ManualResetEventSlim();
            uint error = 0;
            device.WriteAsync((IntPtr)memory, 0, offset, (uint)data.Length, (e, _, _) => { error = e; done.Set(); }, null!);
            Assert.True(done.Wait(TimeSpan.FromSeconds(10)), "write did not complete");
            Assert.Equal(0u, error);
        }
        finally
        {
            NativeMemory.AlignedFree(memory);
        }
    }

    private static byte[] Read(SyncFileDevice device, ulong offset, int length)
    {
        var memory = NativeMemory.AlignedAlloc((nuint)length, (nuint)SyncFileDevice.SectorBytes);
        try
        {
            using var done = new ManualResetEventSlim();
            uint error = 0;
            device.ReadAsync(0, offset, (IntPtr)memory, (uint)length, (e, _, _) => { error = e; done.Set(); }, null!);
            Assert.True(done.Wait(TimeSpan.FromSeconds(10)), "read did not complete");
            Assert.Equal(0u, error);
            return new Span<byte>(memory, length).ToArray();
        }
        finally
        {
            NativeMemory.AlignedFree(memory);
        }
    }
}
