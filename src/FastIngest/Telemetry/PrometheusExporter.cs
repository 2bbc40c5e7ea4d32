using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace FastIngest.Telemetry;

/// <summary>
/// Renders the instruments of one <see cref="Meter"/> in the Prometheus text exposition format 0.0.4 (Prometheus,
/// "Exposition formats"), since the OpenTelemetry Prometheus exporter is not available here. A
/// <see cref="MeterListener"/> feeds each <see cref="Histogram{T}"/> of doubles into fixed cumulative buckets (the
/// callback gets the bucket state directly: no lookup, no allocation per measurement); observable counters and gauges
/// are read when scraped. Instrument names are used as given (they already follow Prometheus conventions: snake
/// case, <c>_total</c> on counters, base units such as <c>_seconds</c>); tags become labels.
/// </summary>
public sealed class PrometheusExporter : IDisposable
{
    /// <summary>The <c>Content-Type</c> of <see cref="Render"/>'s output.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private readonly MeterListener _listener = new();
    private readonly List<Instrument> _instruments = [];
    private readonly Dictionary<Instrument, HistogramState> _histograms = [];
    private readonly Lock _scrape = new();
    private List<(Instrument Instrument, double Value, KeyValuePair<string, object?>[] Tags)>? _observed;

    /// <summary>Listens to <paramref name="meter"/>'s instruments; <paramref name="buckets"/> are the histogram upper bounds.</summary>
    public PrometheusExporter(Meter meter, double[] buckets)
    {
        ArgumentNullException.ThrowIfNull(meter);
        ArgumentNullException.ThrowIfNull(buckets);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter != meter)
                return;
            lock (_instruments)
            {
                _instruments.Add(instrument);
                object? state = null;
                if (instrument is Histogram<double>)
                    state = _histograms[instrument] = new HistogramState(buckets);
                listener.EnableMeasurementEvents(instrument, state);
            }
        };
        _listener.SetMeasurementEventCallback<double>(static (instrument, value, tags, state) =>
        {
            if (state is HistogramState h)
                h.Record(value);
            else
                Observe(instrument, value, tags);
        });
        _listener.SetMeasurementEventCallback<long>(static (instrument, value, tags, state) => Observe(instrument, value, tags));
        _listener.SetMeasurementEventCallback<int>(static (instrument, value, tags, state) => Observe(instrument, value, tags));
        _listener.Start();
    }

    [ThreadStatic]
    private static PrometheusExporter? t_scraping;

    private static void Observe(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        => t_scraping?._observed?.Add((instrument, value, tags.ToArray()));

    /// <summary>Reads every instrument now and writes the exposition text.</summary>
    public string Render()
    {
        lock (_scrape)
        {
            _observed = [];
            t_scraping = this;
            try
            {
                _listener.RecordObservableInstruments();
            }
            finally
            {
                t_scraping = null;
            }
            var text = new StringBuilder(4096);
            Instrument[] instruments;
            lock (_instruments)
                instruments = [.. _instruments];
            foreach (var instrument in instruments)
            {
                var type = instrument switch
                {
                    ObservableCounter<long> or ObservableCounter<double> or Counter<long> => "counter",
                    Histogram<double> => "histogram",
                    _ => "gauge",
                };
                text.Append("# HELP ").Append(instrument.Name).Append(' ').Append(Escape(instrument.Description ?? "", help: true)).Append('\n');
                text.Append("# TYPE ").Append(instrument.Name).Append(' ').Append(type).Append('\n');
                if (_histograms.TryGetValue(instrument, out var histogram))
                {
                    histogram.WriteTo(text, instrument.Name);
                    continue;
                }
                foreach (var (source, value, tags) in _observed)
                {
                    if (source != instrument)
                        continue;
                    text.Append(instrument.Name);
                    Labels(text, tags);
                    text.Append(' ').Append(Format(value)).Append('\n');
                }
            }
            _observed = null;
            return text.ToString();
        }
    }

    private static void Labels(StringBuilder text, KeyValuePair<string, object?>[] tags)
    {
        if (tags.Length == 0)
            return;
        text.Append('{');
        for (var i = 0; i < tags.Length; i++)
        {
            if (i > 0)
                text.Append(',');
            text.Append(tags[i].Key).Append("=\"").Append(Escape(Convert.ToString(tags[i].Value, CultureInfo.InvariantCulture) ?? "", help: false)).Append('"');
        }
        text.Append('}');
    }

    private static string Escape(string value, bool help)
    {
        var escaped = value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
        return help ? escaped : escaped.Replace("\"", "\\\"", StringComparison.Ordinal);
    }

    private static string Format(double value)
        => double.IsPositiveInfinity(value) ? "+Inf" : value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Stops listening.</summary>
    public void Dispose() => _listener.Dispose();

    private sealed class HistogramState(double[] bounds)
    {
        private readonly long[] _counts = new long[bounds.Length + 1];
        private long _sumMicros;

        public void Record(double value)
        {
            var i = Array.BinarySearch(bounds, value);
            Interlocked.Increment(ref _counts[i >= 0 ? i : ~i]);
            Interlocked.Add(ref _sumMicros, (long)(value * 1_000_000));
        }

        public void WriteTo(StringBuilder text, string name)
        {
            long cumulative = 0;
            for (var i = 0; i < _counts.Length; i++)
            {
                cumulative += Interlocked.Read(ref _counts[i]);
                var le = i < bounds.Length ? Format(bounds[i]) : "+Inf";
                text.Append(name).Append("_bucket{le=\"").Append(le).Append("\"} ").Append(cumulative).Append('\n');
            }
            text.Append(name).Append("_sum ").Append(Format(Interlocked.Read(ref _sumMicros) / 1_000_000.0)).Append('\n');
            text.Append(name).Append("_count ").Append(cumulative).Append('\n');
        }
    }
}
