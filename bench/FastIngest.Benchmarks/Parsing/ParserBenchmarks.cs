using BenchmarkDotNet.Attributes;
using FastIngest.Parsing;

namespace FastIngest.Benchmarks.Parsing;

/// <summary>The Utf8JsonReader webhook parser on one small text message, a 20-status batch and a 100 KB payload.</summary>
[MemoryDiagnoser]
public class ParserBenchmarks
{
    private readonly byte[] _text = BenchPayloads.TextMessage(1, 600);
    private readonly byte[] _statuses = BenchPayloads.StatusBatch(20);
    private readonly byte[] _large = BenchPayloads.Large(100 * 1024);
    private readonly EventBuffer _events = new(512);

    [Benchmark]
    public int SmallTextMessage() => Parse(_text);

    [Benchmark]
    public int StatusBatch20() => Parse(_statuses);

    [Benchmark]
    public int Payload100KB() => Parse(_large);

    private int Parse(byte[] body)
    {
        WebhookParser.Parse(body, _events);
        return _events.Count;
    }
}
