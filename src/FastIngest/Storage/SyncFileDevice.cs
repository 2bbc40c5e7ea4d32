using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using FASTER.core;
using Microsoft.Win32.SafeHandles;

namespace FastIngest.Storage;

/// <summary>
/// A FASTER storage device (segment files <c>{name}.{n}</c>) whose writes run on one dedicated thread: each batch of
/// queued writes is written with <c>pwrite</c>, made durable with one <c>fsync</c> per file touched, and then
/// completed. FASTER's own managed device hops through the thread pool several times per write (write, then flush,
/// then callback) and waits behind request work there; under load that made a group commit take ~4 ms on a disk
/// whose synced write takes ~0.2 ms. Reads (scans of records no longer in memory, recovery) run on a second
/// dedicated thread: FASTER's scan iterators block while a page loads, so reads queued behind those very blocked
/// threads on the thread pool would starve it.
/// </summary>
public sealed class SyncFileDevice : StorageDeviceBase
{
    private readonly ConcurrentDictionary<int, SafeFileHandle> _handles = new();
    private readonly BlockingCollection<Write> _writes = new(new ConcurrentQueue<Write>());
    private readonly BlockingCollection<Read> _reads = new(new ConcurrentQueue<Read>());
    private readonly Thread _writer;
    private readonly Thread _reader;
    private readonly List<Write> _batch = new(64);
    private readonly HashSet<int> _touched = [];
    private volatile Exception? _failure;
    private int _disposed;

    private readonly record struct Write(IntPtr Source, int Segment, ulong Offset, uint Length, DeviceIOCompletionCallback Callback, object Context);

    private readonly record struct Read(int Segment, ulong Offset, IntPtr Destination, uint Length, DeviceIOCompletionCallback Callback, object Context);

    /// <summary>Creates the device over <paramref name="fileName"/> (segment files get <c>.0</c>, <c>.1</c>, ...).</summary>
    public SyncFileDevice(string fileName)
        : base(fileName, 512, Devices.CAPACITY_UNSPECIFIED)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(fileName))!);
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "fastingest-io-" + Path.GetFileName(fileName) };
        _writer.Start();
        _reader = new Thread(ReadLoop) { IsBackground = true, Name = "fastingest-read-" + Path.GetFileName(fileName) };
        _reader.Start();
    }

    /// <summary>Called on the writer thread after each batch of writes is durable and completed.</summary>
    public Action? BatchCompleted { get; set; }

    /// <summary>The first write or flush error, if any; FASTER also gets it through the completion's error code.</summary>
    public Exception? Failure => _failure;

    /// <inheritdoc/>
    public override void WriteAsync(IntPtr sourceAddress, int segmentId, ulong destinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context)
        => _writes.Add(new Write(sourceAddress, segmentId, destinationAddress, numBytesToWrite, callback, context));

    /// <inheritdoc/>
    public override void ReadAsync(int segmentId, ulong sourceAddress, IntPtr destinationAddress, uint readLength, DeviceIOCompletionCallback callback, object context)
        => _reads.Add(new Read(segmentId, sourceAddress, destinationAddress, readLength, callback, context));

    private void ReadLoop()
    {
        foreach (var r in _reads.GetConsumingEnumerable())
        {
            uint error = 0, read = 0;
            try
            {
                read = (uint)ReadFully(Handle(r.Segment), r.Offset, r.Destination, r.Length);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                error = ErrorCode(ex);
            }
            r.Callback(error, read, r.Context);
        }
    }

    private static unsafe int ReadFully(SafeFileHandle handle, ulong offset, IntPtr destination, uint length)
    {
        var span = new Span<byte>((void*)destination, (int)length);
        var total = 0;
        while (total < span.Length)
        {
            var n = RandomAccess.Read(handle, span[total..], (long)offset + total);
            if (n == 0)
            {
                span[total..].Clear(); // past the end of the file: FASTER reads whole sectors
                break;
            }
            total += n;
        }
        return (int)length;
    }

    private void WriteLoop()
    {
        foreach (var first in _writes.GetConsumingEnumerable())
        {
            _batch.Add(first);
            while (_batch.Count < 256 && _writes.TryTake(out var more))
                _batch.Add(more);

            uint error = 0;
            try
            {
                foreach (var w in _batch)
                {
                    WriteFully(Handle(w.Segment), w);
                    _touched.Add(w.Segment);
                }
                foreach (var segment in _touched)
                    RandomAccess.FlushToDisk(Handle(segment));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                _failure ??= ex;
                error = ErrorCode(ex);
            }
            foreach (var w in _batch)
                w.Callback(error, error == 0 ? w.Length : 0, w.Context);
            BatchCompleted?.Invoke();
            _batch.Clear();
            _touched.Clear();
        }
    }

    private static unsafe void WriteFully(SafeFileHandle handle, in Write w)
        => RandomAccess.Write(handle, new ReadOnlySpan<byte>((void*)w.Source, (int)w.Length), (long)w.Offset);

    private static uint ErrorCode(Exception ex) => ex.HResult is var h && (h & 0xFFFF) != 0 ? (uint)(h & 0xFFFF) : uint.MaxValue;

    private SafeFileHandle Handle(int segment)
        => _handles.GetOrAdd(segment, s => File.OpenHandle(GetSegmentFilename(FileName, s), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete));

    /// <inheritdoc/>
    public override void RemoveSegment(int segment)
    {
        if (_handles.TryRemove(segment, out var handle))
            handle.Dispose();
        try
        {
            File.Delete(GetSegmentFilename(FileName, segment));
        }
        catch (IOException)
        {
        }
    }

    /// <inheritdoc/>
    public override void RemoveSegmentAsync(int segment, AsyncCallback callback, IAsyncResult result)
    {
        RemoveSegment(segment);
        callback(result);
    }

    /// <inheritdoc/>
    public override long GetFileSize(int segment)
    {
        var path = GetSegmentFilename(FileName, segment);
        return File.Exists(path) ? new FileInfo(path).Length : 0;
    }

    /// <summary>Finishes queued writes, stops the writer thread and closes the files.</summary>
    public override void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return; // FasterKVSettings disposes its LogDevice too

        _writes.CompleteAdding();
        _reads.CompleteAdding();
        _writer.Join();
        _reader.Join();
        foreach (var h in _handles.Values)
            h.Dispose();
        _handles.Clear();
        _writes.Dispose();
        _reads.Dispose();
    }
}
