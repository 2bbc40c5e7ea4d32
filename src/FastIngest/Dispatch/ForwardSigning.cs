using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace FastIngest.Dispatch;

/// <summary>
/// The key a Webhook or Chatwoot destination signs with: <c>X-Hub-Signature-256</c> is <c>sha256=</c> and the hex
/// HMAC-SHA256 of the body under <see cref="Key"/> (Meta's "Validating Payloads"), and <c>X-FastIngest-Signature-Key</c>
/// is <see cref="KeyId"/>. Immutable: a reload replaces it whole.
/// </summary>
internal sealed class ForwardSigning
{
    /// <summary>The header naming the key that signed: <c>X-FastIngest-Signature-Key</c>.</summary>
    public const string KeyIdHeader = "X-FastIngest-Signature-Key";

    private ForwardSigning(byte[] key, string keyId)
    {
        Key = key;
        KeyId = keyId;
    }

    /// <summary>The signing secret, UTF-8.</summary>
    public byte[] Key { get; }

    /// <summary>The configured <c>SecretKeyId</c>, or <c>sha256:</c> and 8 hex digits of SHA-256 over the secret.</summary>
    public string KeyId { get; }

    /// <summary>
    /// The signing key of <paramref name="options"/> (<c>Secret</c>, else <c>Secrets:0</c>) for a destination that signs
    /// (<paramref name="signs"/>), or null.
    /// </summary>
    public static ForwardSigning? Of(Configuration.ForwardOptions options, bool signs)
    {
        ArgumentNullException.ThrowIfNull(options);
        var secrets = Internal.SecretSet.Values(options.Secret, options.Secrets);
        if (!signs || secrets.Length == 0)
            return null;
        var key = Encoding.UTF8.GetBytes(secrets[0]);
        return new ForwardSigning(key, options.SecretKeyId is { Length: > 0 } id ? id : FingerprintOf(key));
    }

    /// <summary><c>sha256:</c> and the first 8 hex digits (32 bits) of SHA-256 over <paramref name="key"/>.</summary>
    public static string FingerprintOf(ReadOnlySpan<byte> key)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(key, hash);
        return "sha256:" + Convert.ToHexStringLower(hash[..4]);
    }

    /// <summary>Whether <paramref name="other"/> signs with the same key under the same id.</summary>
    public bool SameAs(ForwardSigning? other)
        => other is not null && string.Equals(KeyId, other.KeyId, StringComparison.Ordinal) && Key.AsSpan().SequenceEqual(other.Key);

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"key {KeyId}");
}
