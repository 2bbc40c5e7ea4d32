using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace FastIngest.Load;

/// <summary>One RSS sample of the server: seconds since start, MiB.</summary>
internal sealed record RssSample(double Seconds, double MiB);

/// <summary>What a run measured; printed as a table and written as JSON.</summary>
internal sealed class LoadReport
{
    public string Model { get; init; } = "";
    public string Destination { get; init; } = "webhook";
    public int Tenants { get; init; }
    public double DurationSeconds { get; init; }
    public long Sent { get; init; }
    public long Repeats { get; init; }
    public long Acknowledged { get; init; }
    public Dictionary<string, long> Failed { get; init; } = [];
    public long EventsAcknowledged { get; init; }
    public long Forwarded { get; init; }
    public long Lost { get; init; }
    public long Doubled { get; init; }
    public long BotRequests { get; init; }
    public double RequestsPerSecond { get; init; }
    public double AckedRequestsPerSecond { get; init; }
    public double ForwardedEventsPerSecond { get; init; }
    public long MeanBodyBytes { get; init; }
    public Dictionary<string, double> AckLatencyMs { get; init; } = [];
    public Dictionary<string, double> ForwardLagMs { get; init; } = [];
    public List<RssSample> ServerRssMiB { get; init; } = [];

    private static readonly string[] s_ackKeys = ["p50", "p90", "p99", "p99.9", "max"];
    private static readonly string[] s_lagKeys = ["p50", "p99", "max"];

    private static readonly JsonSerializerOptions s_json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    public string ToJson() => JsonSerializer.Serialize(this, s_json);

    public string ToTable()
    {
        var inv = CultureInfo.InvariantCulture;
        var rows = new List<(string, string)>
        {
            ("model", Model),
            ("tenants", Tenants.ToString(inv)),
            ("destination", Destination),
            ("duration (s)", DurationSeconds.ToString("0.0", inv)),
            ("sent (requests)", $"{Sent} ({Repeats} repeats of earlier deliveries)"),
            ("acknowledged (200)", Acknowledged.ToString(inv)),
            ("failed", Failed.Count == 0 ? "0" : string.Join(", ", Failed.Select(kv => $"{kv.Key}: {kv.Value}"))),
            ("events acknowledged", EventsAcknowledged.ToString(inv)),
            ("delivered", Forwarded.ToString(inv)),
            ("lost (acked, never delivered)", Lost.ToString(inv)),
            ("doubled (delivered twice)", Doubled.ToString(inv)),
            ("requests/s", RequestsPerSecond.ToString("0.0", inv)),
            ("delivered events/s", ForwardedEventsPerSecond.ToString("0.0", inv)),
            ("mean body (bytes)", MeanBodyBytes.ToString(inv)),
            ("ack latency p50/p90/p99/p99.9/max (ms)", string.Join(" / ", s_ackKeys.Select(k => AckLatencyMs[k].ToString("0.00", inv)))),
            ("delivery lag (200 to arrival) p50/p99/max (ms)", string.Join(" / ", s_lagKeys.Select(k => ForwardLagMs[k].ToString("0.0", inv)))),
        };
        if (ServerRssMiB.Count > 0)
        {
            rows.Add(("server RSS first/min/max/last (MiB)",
                $"{ServerRssMiB[0].MiB:0.0} / {ServerRssMiB.Min(s => s.MiB):0.0} / {ServerRssMiB.Max(s => s.MiB):0.0} / {ServerRssMiB[^1].MiB:0.0}"));
        }
        var width = rows.Max(r => r.Item1.Length);
        var sb = new StringBuilder();
        foreach (var (k, v) in rows)
            sb.Append("| ").Append(k.PadRight(width)).Append(" | ").Append(v).AppendLine(" |");
        return sb.ToString();
    }
}
