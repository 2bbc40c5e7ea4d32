using System.Security.Cryptography;
using System.Text;
using FastIngest.Ingest;

namespace FastIngest.Tests.Ingest;

public sealed class WebhookSignatureTests
{
    private static readonly byte[] s_secret = "app-secret"u8.ToArray();
    private static readonly byte[] s_body = "{\"object\":\"whatsapp_business_account\",\"entry\":[]}"u8.ToArray();

    private static string Expected() => "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(s_secret, s_body));

    [Fact]
    public void Sign_is_hmac_sha256_of_the_exact_bytes_in_lowercase_hex() => Assert.Equal(Expected(), WebhookSignature.Sign(s_secret, s_body));

    [Fact]
    public void Verify_accepts_the_right_signature_in_either_hex_case()
    {
        Assert.Equal(SignatureCheck.Valid, WebhookSignature.Verify(Expected(), s_secret, s_body));
        Assert.Equal(SignatureCheck.Valid, WebhookSignature.Verify("sha256=" + Expected()[7..].ToUpperInvariant(), s_secret, s_body));
    }

    [Theory]
    [InlineData("", SignatureCheck.Missing)]
    [InlineData("sha256=", SignatureCheck.Malformed)]
    [InlineData("sha1=0123456789abcdef0123456789abcdef01234567", SignatureCheck.Malformed)]
    [InlineData("sha256=zz23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", SignatureCheck.Malformed)]
    [InlineData("sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", SignatureCheck.Mismatch)]
    public void Verify_tells_missing_malformed_and_mismatched_apart(string header, SignatureCheck expected)
        => Assert.Equal(expected, WebhookSignature.Verify(header, s_secret, s_body));

    [Fact]
    public void One_changed_byte_or_another_secret_is_a_mismatch()
    {
        var tampered = (byte[])s_body.Clone();
        tampered[^2] = (byte)' ';
        Assert.Equal(SignatureCheck.Mismatch, WebhookSignature.Verify(Expected(), s_secret, tampered));
        Assert.Equal(SignatureCheck.Mismatch, WebhookSignature.Verify(Expected(), Encoding.UTF8.GetBytes("other"), s_body));
    }

    [Fact]
    public void Verify_allocates_nothing()
    {
        var header = Expected();
        WebhookSignature.Verify(header, s_secret, s_body);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
            WebhookSignature.Verify(header, s_secret, s_body);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void A_reused_keyed_hmac_gives_the_same_answers_and_allocates_nothing()
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, s_secret);
        var header = Expected();
        Assert.Equal(SignatureCheck.Valid, WebhookSignature.Verify(header, hmac, s_body));
        Assert.Equal(SignatureCheck.Mismatch, WebhookSignature.Verify(header, hmac, "{}"u8));
        Assert.Equal(SignatureCheck.Valid, WebhookSignature.Verify(header, hmac, s_body)); // reset after a mismatch
        Assert.Equal(SignatureCheck.Malformed, WebhookSignature.Verify("sha256=00", hmac, s_body));
        Assert.Equal(SignatureCheck.Valid, WebhookSignature.Verify(header, hmac, s_body)); // nothing left half-hashed

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
            WebhookSignature.Verify(header, hmac, s_body);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
