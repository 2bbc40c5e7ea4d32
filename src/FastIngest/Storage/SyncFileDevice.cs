using System.Collections.Concurrent;
using FASTER.core;
using Microsoft.Win32.SafeHandles;

namespace FastIngest.Storage;

/// <summary>
/// A FASTER storage device (segment files <c>{name}.{n}</c>) whose I/O never touches the thread pool. All devices
/// share two dedicated threads (<see cref="DeviceIo"/>): a writer that takes every queued write, writes each with
/// <c>pwrite</c>, makes them durable with one <c>fsync</c> per file touched, then completes them; and a reader.
/// With <c>writeThrough</c> (Linux, x64 and arm64), sector-aligned writes go through a second handle opened with
/// <c>O_DIRECT | O_DSYNC</c>: durable when <c>pwrite</c> returns, with no copy into the page cache and no
/// <c>fsync</c>; reads and any unaligned write keep the buffered handle (and its <c>fsync</c>).
/// </summary>
/// <remarks>
/// FASTER's managed device hops through the thread pool several times per write (write, flush, callback). Under load
/// that made a group commit take ~4 ms on a disk whose synced write takes ~0.2 ms, and, worse, it can deadlock: FASTER
/// runs checkpoint steps (which wait for such writes) on the threads that call it, and request threads that wait on
/// those (dedupe stripe locks, page loads) fill the pool, so the writes they wait for never get a thread.
/// </remarks>
public sealed class SyncFileDevice : StorageDeviceBase
{
    private readonly ConcurrentDictionary<int, SafeFileHandle> _handles = new();
    private readonly ConcurrentDictionary<int, SafeFileHandle> _direct = new();
    private readonly int _directFlags;
    private bool _directRefused;
    private readonly ManualResetEventSlim _idle = new(true);
    private volatile Exception? _failure;
    private int _pending;
    private int _disposed;

    /// <summary>
    /// Creates the device over <paramref name="fileName"/> (segment files get <c>.0</c>, <c>.1</c>, ...).
    /// <paramref name="writeThrough"/> asks for <c>O_DIRECT | O_DSYNC</c> writes where the platform has them.
    /// </summary>
    public SyncFileDevice(string fileName, bool writeThrough = false)
        : this(fileName, writeThrough, null)
    {
    }

    /// <summary>
    /// As the public constructor, with the device's own writer (<paramref name="io"/>; null: the shared one): the
    /// event log's group commits then never queue behind the other stores' page flushes and checkpoints.
    /// </summary>
    internal SyncFileDevice(string fileName, bool writeThrough, DeviceIo? io)
        : base(fileName, SectorBytes, Devices.CAPACITY_UNSPECIFIED)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(fileName))!);
        _directFlags = writeThrough ? DirectIo.WriteThroughFlags : 0;
        _io = io ?? DeviceIo.Shared;
    }

    private readonly DeviceIo _io;

    /// <summary>The sector size FASTER aligns this device's I/O to, in bytes; also the alignment O_DIRECT needs.</summary>
    public const int SectorBytes = 512;

    /// <summary>Whether aligned writes are asked to go through an O_DIRECT | O_DSYNC handle on this platform.</summary>
    public bool WritesThrough => _directFlags != 0;

    private long _writtenThrough;

    /// <summary>Writes that went through the O_DIRECT | O_DSYNC handle so far (the rest were buffered and fsynced).</summary>
    public long WrittenThrough => Interlocked.Read(ref _writtenThrough);

    /// <summary>Called on the writer thread after a batch holding writes of this device is durable and completed.</summary>
    public Action? BatchCompleted { get; set; }

    /// <summary>The first write or flush error, if any; FASTER also gets it through the completion's error code.</summary>
    public Exception? Failure => _failure;

    /// <inheritdoc/>
    public override void WriteAsync(IntPtr sourceAddress, int segmentId, ulong destinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context)
    {
        Begin();
        _io.Write(new DeviceIo.Request(this, sourceAddress, segmentId, destinationAddress, numBytesToWrite, callback, context));
    }

    /// <inheritdoc/>
    public override void ReadAsync(int segmentId, ulong sourceAddress, IntPtr destinationAddress, uint readLength, DeviceIOCompletionCallback callback, object context)
    {
        Begin();
        DeviceIo.Shared.Read(new DeviceIo.Request(this, destinationAddress, segmentId, sourceAddress, readLength, callback, context));
    }

    private void Begin()
    {
        if (Interlocked.Increment(ref _pending) == 1)
            _idle.Reset();
    }

    internal void End()
    {
        if (Interlocked.Decrement(ref _pending) == 0)
            _idle.Set();
    }

    internal void Fail(Exception ex) => _failure ??= ex;

    /// <summary>Whether <see cref="Dispose"/> has begun: its writes are no longer retried (nobody waits for them).</summary>
    internal bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    private readonly ManualResetEventSlim _thawed = new(true);

    /// <summary>Fault injection (tests): every write to this device blocks, as on a frozen disk, until <see cref="Thaw"/>.</summary>
    internal void Freeze() => _thawed.Reset();

    /// <summary>Ends <see cref="Freeze"/>.</summary>
    internal void Thaw() => _thawed.Set();

    /// <summary>
    /// Writes one request; true when it is already durable (written through), false when it needs <see cref="Flush"/>.
    /// A request larger than <paramref name="sliceBytes"/> (0: no limit) goes as consecutive <c>pwrite</c>s of at
    /// most that many bytes. Written through, each slice is durable before the next is issued, so the disk's queue
    /// never holds more than one slice of it; buffered, no single call copies more than one slice into the page cache.
    /// Either way another writer's small commit waits behind one slice, not the whole request: a fold-over checkpoint
    /// written in one buffered piece held the one server core in the kernel for ~80 ms (perf, RESULTS session 10).
    /// </summary>
    internal unsafe bool WriteFully(in DeviceIo.Request w, int sliceBytes = 0)
    {
        _thawed.Wait();
        var data = new ReadOnlySpan<byte>((void*)w.Memory, (int)w.Length);
        if (_directFlags != 0 && ((long)w.Memory | (long)w.Offset | w.Length) % SectorBytes == 0
            && DirectHandle(w.Segment) is { } direct)
        {
            WriteSliced(direct, data, (long)w.Offset, sliceBytes);
            Interlocked.Increment(ref _writtenThrough);
            return true;
        }
        // Buffered (tmpfs, an unaligned write): slices too, so that one call never copies megabytes into the page
        // cache in the kernel while the process's one core is wanted by its commit thread.
        WriteSliced(Handle(w.Segment), data, (long)w.Offset, sliceBytes);
        return false;
    }

    private static void WriteSliced(SafeFileHandle handle, ReadOnlySpan<byte> data, long offset, int sliceBytes)
    {
        while (sliceBytes > 0 && data.Length > sliceBytes)
        {
            RandomAccess.Write(handle, data[..sliceBytes], offset);
            data = data[sliceBytes..];
            offset += sliceBytes;
        }
        RandomAccess.Write(handle, data, offset);
    }

    /// <summary>The segment's O_DIRECT | O_DSYNC handle; null once the file system refused it. Writer thread only.</summary>
    private SafeFileHandle? DirectHandle(int segment)
    {
        if (_direct.TryGetValue(segment, out var handle))
            return handle;
        if (_directRefused)
            return null;
        var path = GetSegmentFilename(FileName, segment);
        var existed = File.Exists(path);
        handle = DirectIo.Open(path, _directFlags);
        if (handle is not null && !existed)
            DirectorySync.FlushParent(path); // a new segment's directory entry, durable before anything relies on it
        if (handle is null)
        {
            _directRefused = true; // tmpfs, some overlays: buffered writes and fsync from now on, without asking again
            return null;
        }
        _direct[segment] = handle;
        return handle;
    }

    internal void Flush(int segment) => RandomAccess.FlushToDisk(Handle(segment));

    internal unsafe uint ReadFully(in DeviceIo.Request r)
    {
        var handle = Handle(r.Segment);
        var span = new Span<byte>((void*)r.Memory, (int)r.Length);
        var total = 0;
        while (total < span.Length)
        {
            var n = RandomAccess.Read(handle, span[total..], (long)r.Offset + total);
            if (n == 0)
            {
                span[total..].Clear(); // past the end of the file: FASTER reads whole sectors
                break;
            }
            total += n;
        }
        return r.Length;
    }

    private SafeFileHandle Handle(int segment)
        => _handles.TryGetValue(segment, out var handle) ? handle : _handles.GetOrAdd(segment, OpenSegment);

    /// <summary>Opens (creating) a segment file; a new one's directory entry is made durable before it is used.</summary>
    private SafeFileHandle OpenSegment(int segment)
    {
        var path = GetSegmentFilename(FileName, segment);
        var existed = File.Exists(path);
        var handle = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        if (!existed)
            DirectorySync.FlushParent(path);
        return handle;
    }

    /// <inheritdoc/>
    public override void RemoveSegment(int segment)
    {
        if (_handles.TryRemove(segment, out var handle))
            handle.Dispose();
        if (_direct.TryRemove(segment, out var direct))
            direct.Dispose();
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

    /// <summary>Waits (up to 30 s) for this device's queued I/O, then closes its files. Idempotent.</summary>
    public override void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return; // FasterKVSettings disposes its LogDevice too
        _idle.Wait(TimeSpan.FromSeconds(30));
        foreach (var h in _handles.Values)
            h.Dispose();
        foreach (var h in _direct.Values)
            h.Dispose();
        _handles.Clear();
        _direct.Clear();
    }
}

/// <summary>
/// The I/O threads of <see cref="SyncFileDevice"/>s: <see cref="Shared"/> serves every device that has no writer of
/// its own with one writer (batched writes, one fsync per file touched per batch) and one reader; a device given its
/// own instance (the event log) has its own writer, and a write issued on that instance's <see cref="InlineThread"/>
/// (the log's commit thread) is done right there, with no hop to another thread. Background threads, started on
/// first use. Stalls and abandoned directories are seen across all instances.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification = "Process-wide, lives as long as the process.")]
internal sealed class DeviceIo
{
    private static readonly List<DeviceIo> s_all = [];
    private static volatile string[] s_abandoned = [];

    /// <summary>
    /// Largest single <c>pwrite</c> of <see cref="Shared"/>'s written-through requests, in bytes: 256 KB (a multiple of
    /// every sector size). The stores' page flushes and index checkpoints (up to 32 MB a request) go in slices of this,
    /// so the event log's commits, on their own writer to the same disk, never queue behind more than one slice.
    /// </summary>
    public const int SharedSliceBytes = 256 * 1024;

    /// <summary>The writer and reader of every device without one of its own (after <see cref="s_all"/>: it registers there).</summary>
    public static DeviceIo Shared { get; } = new("fastingest-io", reader: true, sliceBytes: SharedSliceBytes);

    private readonly BlockingCollection<Request> _writes = new(new ConcurrentQueue<Request>());
    private readonly BlockingCollection<Request>? _reads;
    private readonly Batch _queued = new();
    private readonly Batch _inline = new();
    private bool _inlineBusy; // InlineThread only

    public readonly record struct Request(SyncFileDevice Device, IntPtr Memory, int Segment, ulong Offset, uint Length, DeviceIOCompletionCallback Callback, object Context);

    /// <summary>One batch's working sets (the writer thread has one, inline writes another).</summary>
    private sealed class Batch
    {
        public readonly List<Request> Requests = new(64);
        public readonly HashSet<(SyncFileDevice, int)> Touched = [];
        public readonly HashSet<SyncFileDevice> Devices = [];
        public readonly Dictionary<SyncFileDevice, uint> Failed = [];
    }

    private readonly int _sliceBytes;

    /// <summary>
    /// Starts a writer named <c>{name}-write</c> (and, with <paramref name="reader"/>, a reader <c>{name}-read</c>);
    /// <paramref name="sliceBytes"/> bounds each <c>pwrite</c> of a written-through request (0: none; see
    /// <see cref="SyncFileDevice.WriteFully"/>).
    /// </summary>
    public DeviceIo(string name, bool reader = false, int sliceBytes = 0)
    {
        _sliceBytes = sliceBytes;
        lock (s_all)
            s_all.Add(this);
        new Thread(WriteLoop) { IsBackground = true, Name = name + "-write" }.Start();
        if (reader)
        {
            _reads = new BlockingCollection<Request>(new ConcurrentQueue<Request>());
            new Thread(ReadLoop) { IsBackground = true, Name = name + "-read" }.Start();
        }
    }

    /// <summary>
    /// Stops this writer once the writes queued are done (its devices are disposed first); never for <see cref="Shared"/>.
    /// </summary>
    public void Stop()
    {
        if (this == Shared)
            return;
        _writes.CompleteAdding();
        lock (s_all)
            s_all.Remove(this);
    }

    /// <summary>
    /// The thread whose writes are done where they are issued (the owner's commit thread, which waits for them
    /// anyway); null: every write goes to the writer thread.
    /// </summary>
    public Thread? InlineThread { get; set; }

    public void Write(in Request r)
    {
        // A write issued from a completion callback of an inline batch (the same thread, the batch still running)
        // goes to the writer thread instead.
        if (InlineThread == Thread.CurrentThread && !_inlineBusy)
        {
            _inlineBusy = true;
            try
            {
                _inline.Requests.Add(r);
                Run(_inline);
            }
            finally
            {
                _inlineBusy = false;
            }
            return;
        }
        _writes.Add(r);
    }

    public void Read(in Request r) => (_reads ?? Shared._reads!).Add(r);

    private long _stalledSince;
    private volatile string? _stallReason;
    private static long s_stalls;

    /// <summary>
    /// <see cref="System.Diagnostics.Stopwatch"/> timestamp of the first failed attempt of the writes being retried
    /// now by any writer, or 0 while writes go through.
    /// </summary>
    public static long StalledSince
    {
        get
        {
            long since = 0;
            lock (s_all)
            {
                foreach (var io in s_all)
                {
                    var at = Interlocked.Read(ref io._stalledSince);
                    if (at != 0 && (since == 0 || at < since))
                        since = at;
                }
            }
            return since;
        }
    }

    /// <summary>While <see cref="StalledSince"/> is set: the file and the error of a failed attempt.</summary>
    public static string? StallReason
    {
        get
        {
            lock (s_all)
                return s_all.Select(io => io._stallReason).FirstOrDefault(r => r is not null);
        }
    }

    /// <summary>Stalls since start (write failures that were then retried), all writers.</summary>
    public static long Stalls => Interlocked.Read(ref s_stalls);

    /// <summary>
    /// From now on a write under <paramref name="directory"/> that fails is completed with its error instead of being
    /// retried (the shutdown of the server that owns it: what cannot be written now is not waited for). Writes
    /// already being retried fail at the next attempt; writes elsewhere keep being retried.
    /// </summary>
    public static void Abandon(string directory)
    {
        var prefix = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)) + Path.DirectorySeparatorChar;
        lock (s_all)
            s_abandoned = [.. s_abandoned, prefix];
    }

    /// <summary>Whether the writes under <paramref name="directory"/> are <see cref="Abandon"/>ed.</summary>
    public static bool IsAbandoned(string directory) => Abandoned(Path.GetFullPath(directory) + Path.DirectorySeparatorChar);

    private static bool Abandoned(string fileName)
    {
        foreach (var prefix in s_abandoned)
        {
            if (fileName.StartsWith(prefix, StringComparison.Ordinal))
                return true;
        }
        return false;
    }

    private void WriteLoop()
    {
        foreach (var first in _writes.GetConsumingEnumerable())
        {
            _queued.Requests.Add(first);
            while (_queued.Requests.Count < 256 && _writes.TryTake(out var more))
                _queued.Requests.Add(more);
            Run(_queued);
        }
    }

    /// <summary>Writes <paramref name="batch"/>, makes it durable, completes it, and clears it.</summary>
    private void Run(Batch batch)
    {
        // Write everything, then make each touched file durable once. A write or flush that fails (disk full,
        // read-only, an I/O error) is retried, the whole batch with it, until it goes through: FASTER never sees
        // the error (its logs would refuse every later write), the writes behind wait, and what waits for them
        // (commits, so webhooks) sees a stall that ends by itself once the disk takes writes again.
        var failed = batch.Failed;
        var backoff = 50;
        while (true)
        {
            Exception? error = null;
            string? where = null;
            foreach (var w in batch.Requests)
            {
                try
                {
                    if (!w.Device.WriteFully(w, _sliceBytes))
                        batch.Touched.Add((w.Device, w.Segment));
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
                {
                    if (ex is ObjectDisposedException || w.Device.IsDisposed || Abandoned(w.Device.FileName))
                    {
                        w.Device.Fail(ex);
                        failed[w.Device] = ErrorCode(ex);
                    }
                    else
                    {
                        error ??= ex;
                        where ??= w.Device.FileName;
                    }
                }
            }
            foreach (var (device, segment) in batch.Touched)
            {
                try
                {
                    device.Flush(segment);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
                {
                    if (ex is ObjectDisposedException || device.IsDisposed || Abandoned(device.FileName))
                    {
                        device.Fail(ex);
                        failed[device] = ErrorCode(ex);
                    }
                    else
                    {
                        error ??= ex;
                        where ??= device.FileName;
                    }
                }
            }
            if (error is null)
                break;
            // Again from the start: after a failed fsync the kernel may have dropped the dirty pages, so every
            // write of the batch is written again before the next fsync.
            batch.Touched.Clear();
            _stallReason = $"{where}: {error.Message}";
            if (Interlocked.CompareExchange(ref _stalledSince, System.Diagnostics.Stopwatch.GetTimestamp(), 0) == 0)
                Interlocked.Increment(ref s_stalls);
            Thread.Sleep(backoff);
            backoff = Math.Min(backoff * 2, 1000);
        }
        if (Interlocked.Exchange(ref _stalledSince, 0) != 0)
            _stallReason = null;
        batch.Touched.Clear();
        foreach (var w in batch.Requests)
        {
            var error = failed.GetValueOrDefault(w.Device);
            w.Callback(error, error == 0 ? w.Length : 0, w.Context);
            batch.Devices.Add(w.Device);
            w.Device.End();
        }
        batch.Requests.Clear();
        failed.Clear();
        foreach (var d in batch.Devices)
            d.BatchCompleted?.Invoke();
        batch.Devices.Clear();
    }

    private void ReadLoop()
    {
        foreach (var r in _reads!.GetConsumingEnumerable())
        {
            uint error = 0, read = 0;
            try
            {
                read = r.Device.ReadFully(r);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
            {
                error = ErrorCode(ex);
            }
            r.Callback(error, read, r.Context);
            r.Device.End();
        }
    }

    private static uint ErrorCode(Exception ex) => (ex.HResult & 0xFFFF) != 0 ? (uint)(ex.HResult & 0xFFFF) : uint.MaxValue;
}

/// <summary>
/// <c>open(2)</c> with <c>O_DIRECT | O_DSYNC</c>, which .NET's <see cref="File.OpenHandle"/> cannot ask for. The flag
/// values differ by architecture, so only the ones known here are used; elsewhere the device stays buffered.
/// </summary>
internal static partial class DirectIo
{
    private const int ReadWrite = 0x2, Create = 0x40, DataSync = 0x1000, CloseOnExec = 0x80000;

    /// <summary>The open flags for a write-through handle on this platform, or 0 when it has none.</summary>
    public static int WriteThroughFlags { get; } = !OperatingSystem.IsLinux() ? 0 : System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => ReadWrite | Create | DataSync | CloseOnExec | 0x4000,
        System.Runtime.InteropServices.Architecture.Arm64 => ReadWrite | Create | DataSync | CloseOnExec | 0x10000,
        _ => 0,
    };

    /// <summary>Opens <paramref name="path"/> with <paramref name="flags"/>; null when the file system refuses (EINVAL).</summary>
    /// <exception cref="IOException">Any other failure to open.</exception>
    public static SafeFileHandle? Open(string path, int flags)
    {
        var fd = SysOpen(path, flags, 0x1A4 /* 0644 */);
        if (fd >= 0)
            return new SafeFileHandle(fd, ownsHandle: true);
        var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        if (errno == 22 /* EINVAL */)
            return null;
        throw new IOException($"cannot open '{path}' for write-through (errno {errno})", errno);
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8)]
    private static partial int SysOpen(string path, int flags, int mode);
}

/// <summary>
/// FASTER's local checkpoint and commit file layout (<see cref="LocalStorageNamedDeviceFactory"/>: listing, naming,
/// deletion), with every file opened as a <see cref="SyncFileDevice"/>, so checkpoint writes never wait for the
/// thread pool either.
/// </summary>
public sealed class SyncFileDeviceFactory : INamedDeviceFactory
{
    private readonly LocalStorageNamedDeviceFactory _layout = new();
    private string _baseName = "";

    /// <inheritdoc/>
    public void Initialize(string baseName)
    {
        _baseName = baseName;
        _layout.Initialize(baseName);
    }

    /// <inheritdoc/>
    /// <remarks>Written through (<c>O_DIRECT | O_DSYNC</c> where the file system takes it): see <see cref="SyncFileDevice.WriteFully"/>.</remarks>
    public IDevice Get(FileDescriptor fileInfo)
    {
        return new SyncFileDevice(Path.Combine(_baseName, fileInfo.directoryName ?? "", fileInfo.fileName ?? ""), writeThrough: true);
    }

    /// <inheritdoc/>
    public IEnumerable<FileDescriptor> ListContents(string path) => _layout.ListContents(path);

    /// <inheritdoc/>
    public void Delete(FileDescriptor fileInfo) => _layout.Delete(fileInfo);
}
