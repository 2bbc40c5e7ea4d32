using FastIngest.Dispatch;

namespace FastIngest.Destinations;

/// <summary>
/// The File destination (and the default when a tenant has neither <c>Destinations</c> nor <c>Forward:Url</c>): appends
/// each event's Meta-shaped payload as one line to its file (<c>DataDir/out/{tenant}.jsonl</c> by default) and flushes
/// it to disk before the event counts as delivered.
/// </summary>
internal sealed class FileTarget : IForwardTarget
{
    private readonly FileStream _file;
    private readonly SemaphoreSlim _gate = new(1, 1);

    public FileTarget(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Path_ = path;
        _file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 1 << 16, FileOptions.Asynchronous);
    }

    private string Path_ { get; }

    public string Describe => Path_;

    public async ValueTask<ForwardResult> SendAsync(ForwardItem item, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _file.WriteAsync(item.Payload, cancellationToken).ConfigureAwait(false);
            _file.WriteByte((byte)'\n');
            _file.Flush(flushToDisk: true);
            return ForwardResult.Ok;
        }
        catch (IOException ex)
        {
            return new ForwardResult(false, ex.Message);
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose()
    {
        _file.Dispose();
        _gate.Dispose();
    }
}
