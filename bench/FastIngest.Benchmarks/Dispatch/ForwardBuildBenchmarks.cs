using BenchmarkDotNet.Attributes;
using FastIngest.Dispatch;
using FastIngest.Internal;
using FastIngest.Parsing;

namespace FastIngest.Benchmarks.Dispatch;

/// <summary>
/// Building every event's forward from one payload of N statuses (parse, then one Meta-shaped single-event body per
/// status), as the dispatcher does for each batch record. Linear: per event the cost stays flat from 1,000 statuses
/// (Meta's largest batch) to 100,000.
/// </summary>
[MemoryDiagnoser]
public class ForwardBuildBenchmarks
{
    private readonly EventBuffer _events = new(1024);
    private readonly PooledBufferWriter _writer = new(16 * 1024);
    private readonly ValueLayout _layout = new();
    private byte[] _body = [];

    /// <summary>Statuses in the payload.</summary>
    [Params(1_000, 100_000)]
    public int Statuses { get; set; }

    [GlobalSetup]
    public void Setup() => _body = BenchPayloads.StatusBatch(Statuses);

    [Benchmark]
    public long BuildAllForwards()
    {
        WebhookParser.Parse(_body, _events);
        _layout.Reset();
        long bytes = 0;
        for (var i = 0; i < _events.Count; i++)
        {
            _writer.Reset();
            ForwardPayloadWriter.Write(_body, _events, i, _writer, _layout);
            bytes += _writer.WrittenCount;
        }
        return bytes;
    }
}
