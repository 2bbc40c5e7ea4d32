using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;

namespace FastIngest.Dispatch;

/// <summary>
/// How far each stage behind the event log has durably got, kept in <c>DataDir/positions</c> and written at every
/// checkpoint, before the log is truncated:
/// <list type="bullet">
/// <item>per destination (tenant id, destination name) its delivered watermark: the log address below which every
/// event of the tenant that the destination takes was delivered, dead-lettered or dropped (the dispatcher's
/// <see cref="DestinationDispatcher.LowWater"/> at the checkpoint);</item>
/// <item>the projections' applied address, below which every status and message was applied to the delivery-state,
/// window and send stores that the same checkpoint wrote.</item>
/// </list>
/// At start a destination's reader starts at its watermark and the projections at their address, instead of the
/// log's begin, and only acks at or above the watermarks are kept in memory (<see cref="AckSet"/>): start-up time
/// and memory depend on what is outstanding, not on what the log retains because another destination is behind.
/// </summary>
/// <remarks>
/// Format (text, UTF-8, one entry a line): <c>fastingest-positions 1</c>, <c>projections {address}</c>, then
/// <c>destination {tenant} {name} {address}</c> per destination (tenant ids and destination names hold no spaces).
/// Written to <c>positions.tmp</c>, fsynced, renamed over <c>positions</c>, and the directory fsynced, so a crash
/// leaves the old file or the new one. A missing or unreadable file means "from the log's begin": correct, only
/// slower (every retained record is read again, as before positions existed).
/// </remarks>
internal sealed class DeliveryPositions
{
    /// <summary>The file's name under <c>DataDir</c>.</summary>
    public const string FileName = "positions";

    private const string Magic = "fastingest-positions 1";

    private readonly Dictionary<(string Tenant, string Destination), long> _watermarks;

    private DeliveryPositions(long projections, Dictionary<(string, string), long> watermarks)
    {
        Projections = projections;
        _watermarks = watermarks;
    }

    /// <summary>No positions: every stage starts at the log's begin.</summary>
    public static DeliveryPositions None { get; } = new(0, []);

    /// <summary>The projections' applied address (0: none recorded).</summary>
    public long Projections { get; }

    /// <summary>How many destinations have a watermark.</summary>
    public int Count => _watermarks.Count;

    /// <summary>The delivered watermark of <paramref name="destination"/> of <paramref name="tenant"/>, or null if none was recorded.</summary>
    public long? WatermarkOf(string tenant, string destination)
        => _watermarks.TryGetValue((tenant, destination), out var address) ? address : null;

    /// <summary>Reads <c>{dataDir}/positions</c>; <see cref="None"/> when it is missing, or (logged) unreadable.</summary>
    public static DeliveryPositions Load(string dataDir, ILogger logger)
    {
        var path = Path.Combine(dataDir, FileName);
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path, Encoding.UTF8);
        }
        catch (FileNotFoundException)
        {
            return None;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            PositionsLog.Unreadable(logger, path, ex.Message);
            return None;
        }
        if (lines.Length == 0 || lines[0] != Magic)
        {
            PositionsLog.Unreadable(logger, path, "not a positions file (first line)");
            return None;
        }
        long projections = 0;
        var watermarks = new Dictionary<(string, string), long>();
        for (var i = 1; i < lines.Length; i++)
        {
            var parts = lines[i].Split(' ');
            if (parts is ["projections", var p] && TryAddress(p, out var applied))
            {
                projections = applied;
            }
            else if (parts is ["destination", var tenant, var name, var a] && TryAddress(a, out var address))
            {
                watermarks[(tenant, name)] = address;
            }
            else
            {
                PositionsLog.Unreadable(logger, path, $"line {i + 1} is not an entry");
                return None;
            }
        }
        return new DeliveryPositions(projections, watermarks);
    }

    private static bool TryAddress(string text, out long address)
        => long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out address);

    /// <summary>
    /// Writes the positions durably (temporary file, fsync, rename, directory fsync).
    /// </summary>
    /// <exception cref="IOException">The file cannot be written; the previous one, if any, stays.</exception>
    public static void Save(string dataDir, long projections, IEnumerable<(string Tenant, string Destination, long Address)> watermarks)
    {
        var text = new StringBuilder(Magic).Append('\n');
        text.Append("projections ").Append(projections.ToString(CultureInfo.InvariantCulture)).Append('\n');
        foreach (var (tenant, destination, address) in watermarks)
            text.Append("destination ").Append(tenant).Append(' ').Append(destination).Append(' ').Append(address.ToString(CultureInfo.InvariantCulture)).Append('\n');
        var path = Path.Combine(dataDir, FileName);
        var temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(Encoding.UTF8.GetBytes(text.ToString()));
            file.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
        Storage.DirectorySync.Flush(dataDir);
    }
}

internal static partial class PositionsLog
{
    [LoggerMessage(3101, LogLevel.Warning, "{Path} cannot be used ({Reason}): every destination and the projections read the event log from its begin this time (correct, only slower)")]
    public static partial void Unreadable(ILogger logger, string path, string reason);

    [LoggerMessage(3102, LogLevel.Error, "Positions could not be saved; the previous ones stay (a restart reads more of the log again)")]
    public static partial void SaveFailed(ILogger logger, Exception exception);
}
