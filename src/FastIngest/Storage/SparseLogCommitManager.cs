using System.Diagnostics;
using FASTER.core;

namespace FastIngest.Storage;

/// <summary>
/// The event log's commit metadata files, written at most once per <c>interval</c> instead of at every group commit.
/// In FASTER's fast-commit mode each commit's record is in the log itself and recovery scans forward from the last
/// metadata file for the newest one, so that file only says where the scan starts; writing it at each commit cost a
/// file created, a directory synced and a file deleted per group commit (hundreds a second under load, on the
/// writer that every other store shares), and made each commit wait for it. Now a commit only records its metadata;
/// the newest is written in the background once a second, at once when the begin address moved (a truncation, whose
/// segment files are then deleted) or FASTER forces it, and at <see cref="Dispose"/>.
/// </summary>
internal sealed class SparseLogCommitManager(ILogCommitManager inner, TimeSpan interval) : ILogCommitManager, IDisposable
{
    private readonly Lock _gate = new();
    private readonly Lock _writeGate = new();
    private (long Begin, long Until, byte[] Metadata, long CommitNum)? _held;
    private bool _due;
    private bool _writing;
    private long _writtenAt;
    private long _writtenBegin = -1;

    /// <summary>
    /// Keeps the newest metadata and, when one is due (the interval passed, the begin address moved, or FASTER forces
    /// it), writes it on a thread-pool thread: the caller (the log's commit thread) never waits for a file, which
    /// goes through the writer the other stores share and can sit behind a checkpoint's megabytes.
    /// </summary>
    public void Commit(long beginAddress, long untilAddress, byte[] commitMetadata, long commitNum, bool forceWriteMetadata)
    {
        lock (_gate)
        {
            _held = (beginAddress, untilAddress, commitMetadata, commitNum);
            _due |= forceWriteMetadata || beginAddress != _writtenBegin || Stopwatch.GetElapsedTime(_writtenAt) >= interval;
            if (!_due || _writing)
                return;
            _writing = true;
        }
        ThreadPool.UnsafeQueueUserWorkItem(static self => self.WriteDue(), this, preferLocal: false);
    }

    private void WriteDue()
    {
        while (true)
        {
            (long Begin, long Until, byte[] Metadata, long CommitNum) held;
            lock (_gate)
            {
                if (!_due || _held is null)
                {
                    _writing = false;
                    return;
                }
                held = _held.Value;
                _held = null;
                _due = false;
            }
            Write(held);
        }
    }

    private void Write((long Begin, long Until, byte[] Metadata, long CommitNum) held)
    {
        lock (_writeGate)
        {
            try
            {
                inner.Commit(held.Begin, held.Until, held.Metadata, held.CommitNum, true);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException)
            {
                // The log's own commit records still hold it: a missing metadata file only lengthens the next recovery's scan.
                return;
            }
            lock (_gate)
            {
                _writtenAt = Stopwatch.GetTimestamp();
                _writtenBegin = held.Begin;
            }
        }
    }

    /// <summary>Writes the newest metadata held back, if any, and waits for it (a clean close).</summary>
    public void Flush()
    {
        (long Begin, long Until, byte[] Metadata, long CommitNum)? held;
        lock (_gate)
        {
            held = _held;
            _held = null;
            _due = false;
        }
        if (held is { } h)
            Write(h);
        else
        {
            lock (_writeGate)
            {
                // A write in flight finishes before this returns.
            }
        }
    }

    /// <inheritdoc/>
    public byte[] GetCommitMetadata(long commitNum) => inner.GetCommitMetadata(commitNum);

    /// <inheritdoc/>
    public IEnumerable<long> ListCommits() => inner.ListCommits();

    /// <inheritdoc/>
    public void RemoveCommit(long commitNum) => inner.RemoveCommit(commitNum);

    /// <inheritdoc/>
    public void RemoveAllCommits() => inner.RemoveAllCommits();

    /// <inheritdoc/>
    public void OnRecovery(long commitNum) => inner.OnRecovery(commitNum);

    /// <summary>Writes what is held back, then disposes the inner manager.</summary>
    public void Dispose()
    {
        Flush();
        inner.Dispose();
    }
}
