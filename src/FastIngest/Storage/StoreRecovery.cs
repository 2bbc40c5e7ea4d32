using Microsoft.Extensions.Logging;

namespace FastIngest.Storage;

/// <summary>
/// Opens a derived store (dedupe, delivery state, customer window: what the event log and Meta's webhooks can
/// rebuild) and, when its files cannot be recovered, moves its directory aside (<c>{dir}.damaged-{unix ms}</c>, kept
/// for examination), starts it empty, logs it as critical and adds it to the <see cref="DamageReport"/>.
/// </summary>
internal static class StoreRecovery
{
    public static T OpenOrReset<T>(string directory, string store, Func<T> open, DamageReport report, TimeProvider time, ILogger logger, string consequence)
    {
        try
        {
            return open();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            var now = time.GetUtcNow();
            var aside = $"{Path.TrimEndingDirectorySeparator(directory)}.damaged-{now.ToUnixTimeMilliseconds()}";
            Directory.Move(directory, aside);
            DirectorySync.FlushParent(directory);
            var detail = $"{store} store: {directory} could not be recovered ({ex.GetType().Name}: {FirstLine(ex.Message)}); moved to {aside} and started empty, {consequence}";
            report.Add(store, detail, now);
            EngineStoreLog.StoreReset(logger, store, detail);
            return open();
        }
    }

    private static string FirstLine(string text) => text.Split('\n', 2)[0].Trim();
}

internal static partial class EngineStoreLog
{
    [LoggerMessage(1010, LogLevel.Critical, "Damage found in the {Store} store: {Detail}. /readyz fails until an operator clears it (POST /admin/damage/clear)")]
    public static partial void StoreReset(ILogger logger, string store, string detail);
}
