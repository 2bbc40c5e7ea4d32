namespace FastIngest.Internal;

/// <summary>
/// A loop that must not die silently (a dispatcher's reader or worker, the send scheduler): it runs until its token
/// stops it, and an unexpected exception is handed to the owner's fault handler (log, count, <c>/readyz</c>) and the
/// loop starts again after a delay on the owner's clock.
/// </summary>
internal static class Supervised
{
    /// <summary>
    /// Runs <paramref name="loop"/> until <paramref name="ct"/> is cancelled; after an exception other than that
    /// cancellation (and <see cref="OutOfMemoryException"/>), calls <paramref name="onFault"/> and starts it again
    /// after <paramref name="restartDelay"/>.
    /// </summary>
    public static async Task RunAsync(Func<CancellationToken, Task> loop, Action<Exception> onFault, TimeSpan restartDelay, TimeProvider time, CancellationToken ct)
    {
        while (true)
        {
            try
            {
                await loop(ct).ConfigureAwait(false);
                return;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                onFault(ex);
            }
            try
            {
                await Task.Delay(restartDelay, time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
