namespace FastIngest.Internal;

/// <summary>
/// Faults a test switches on in a real server process (where it cannot reach an object to break) through the
/// environment variable <c>FASTINGEST_FAULTS</c>, a comma-separated list of the names below, read once at start.
/// Not configuration: never set it in production.
/// <list type="bullet">
/// <item><c>hold-lifecycle-events</c>: the send tier's lifecycle events are never written to the event log, as if the
/// process always died between a lifecycle step and its event.</item>
/// </list>
/// </summary>
internal static class FaultInjection
{
    private static readonly string[] s_faults =
        (Environment.GetEnvironmentVariable("FASTINGEST_FAULTS") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary><c>hold-lifecycle-events</c> is set.</summary>
    public static bool HoldLifecycleEvents { get; } = s_faults.Contains("hold-lifecycle-events", StringComparer.Ordinal);
}
