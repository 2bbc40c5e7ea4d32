using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using FastIngest.Ingest;

namespace FastIngest.Benchmarks.Ingest;

/// <summary>X-Hub-Signature-256 check of a 1 KB body: HMAC-SHA256, hex decode, constant-time compare.</summary>
[MemoryDiagnoser]
public class SignatureBenchmarks
{
    private readonly byte[] _body = BenchPayloads.TextMessage(1);
    private readonly byte[] _secret = System.Text.Encoding.UTF8.GetBytes(BenchPayloads.Secret);
    private string _header = "";
    private IncrementalHash _hmac = null!;

    [GlobalSetup]
    public void Setup()
    {
        _header = WebhookSignature.Sign(_secret, _body);
        _hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _secret);
    }

    [Benchmark(Baseline = true)]
    public SignatureCheck Verify1KB() => WebhookSignature.Verify(_header, _secret, _body);

    /// <summary>What the ingest path does: the tenant's HMAC context, kept per thread and reused.</summary>
    [Benchmark]
    public SignatureCheck VerifyReusedHmac1KB() => WebhookSignature.Verify(_header, _hmac, _body);
}
