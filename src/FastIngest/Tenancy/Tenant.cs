using System.Security.Cryptography;
using System.Text;
using FastIngest.Configuration;

namespace FastIngest.Tenancy;

/// <summary>A configured tenant with its secrets pre-encoded for the hot path.</summary>
public sealed class Tenant : IDisposable
{
    /// <summary>This tenant's ingest counters (for <c>/metrics</c>).</summary>
    public Telemetry.TenantCounters Counters { get; }

    /// <summary>Builds the runtime form of <paramref name="options"/>; <paramref name="time"/> starts its inbound-silence clock (default: system).</summary>
    public Tenant(TenantOptions options, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
        Id = options.Id;
        IdUtf8 = Encoding.UTF8.GetBytes(options.Id);
        AppSecrets = [.. new Internal.SecretSet(options.AppSecret, options.AppSecrets).Utf8];
        AppSecret = AppSecrets.Length > 0 ? AppSecrets[0] : [];
        InboundAuth = Enum.TryParse<InboundAuth>(options.Inbound.Auth, out var auth) ? auth : Configuration.InboundAuth.MetaSignature;
        InboundHeaderName = options.Inbound.HeaderName ?? "";
        InboundHeaderValues = new Internal.SecretSet(options.Inbound.HeaderValue, options.Inbound.HeaderValues);
        VerifyToken = Encoding.UTF8.GetBytes(options.VerifyToken);
        ForwardSecret = options.Forward.Secret is { Length: > 0 } s ? Encoding.UTF8.GetBytes(s) : [];
        Silence = new InboundSilence(options, (time ?? TimeProvider.System).GetUtcNow().ToUnixTimeMilliseconds());
        Outage = new BotOutage(options.Outbound.HoldingAfter, !string.IsNullOrEmpty(options.Outbound.HoldingMessage));
        _inboundHmac = [.. AppSecrets.Select(key => new ThreadLocal<IncrementalHash>(() => IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key)))];
        Counters = new Telemetry.TenantCounters(InboundAuth == Configuration.InboundAuth.Header ? InboundHeaderValues.Count : AppSecrets.Length);
    }

    private readonly ThreadLocal<IncrementalHash>[] _inboundHmac;

    /// <summary>
    /// This thread's HMAC-SHA256 keyed with <see cref="AppSecret"/>, kept for reuse (one per thread and tenant).
    /// Use it on this thread only, and finish each hash (<see cref="IncrementalHash.GetHashAndReset(Span{byte})"/>).
    /// </summary>
    public IncrementalHash InboundHmac => _inboundHmac[0].Value!;

    /// <summary>As <see cref="InboundHmac"/>, keyed with <see cref="AppSecrets"/>[<paramref name="index"/>].</summary>
    public IncrementalHash InboundHmacOf(int index) => _inboundHmac[index].Value!;

    /// <summary>
    /// Every accepted app secret, UTF-8: <c>AppSecret</c> (when set) first, then <c>AppSecrets:{n}</c> in order; the
    /// index is the <c>key_index</c> of <c>fastingest_signature_key_used_total</c>.
    /// </summary>
    public byte[][] AppSecrets { get; }

    /// <summary>The tenant id (the <c>{tenant}</c> of <c>/webhooks/{tenant}</c>).</summary>
    public string Id { get; }

    /// <summary><see cref="Id"/> as UTF-8: stored in log records and hashed into dedupe keys.</summary>
    public byte[] IdUtf8 { get; }

    /// <summary>How this tenant's webhooks are authenticated.</summary>
    public InboundAuth InboundAuth { get; }

    /// <summary>The secret header's name (<see cref="Configuration.InboundAuth.Header"/>); "" otherwise.</summary>
    public string InboundHeaderName { get; }

    /// <summary>
    /// The secret header's accepted values (<c>Inbound:HeaderValue</c> first, then <c>HeaderValues:{n}</c>); a request's
    /// value is matched with <see cref="Internal.SecretSet.IndexOf"/>.
    /// </summary>
    internal Internal.SecretSet InboundHeaderValues { get; }

    /// <summary>The first accepted app secret, UTF-8 (see <see cref="AppSecrets"/>).</summary>
    public byte[] AppSecret { get; }

    /// <summary>The <c>hub.verify_token</c>, UTF-8.</summary>
    public byte[] VerifyToken { get; }

    /// <summary>The HMAC key of forwarded requests' <c>X-Hub-Signature-256</c>, UTF-8; empty without a forward URL.</summary>
    public byte[] ForwardSecret { get; }

    /// <summary>The inbound-silence check (when was the last inbound message).</summary>
    public InboundSilence Silence { get; }

    /// <summary>Whether delivery to the bot is failing, and since when (drives the holding message).</summary>
    public BotOutage Outage { get; }

    /// <summary>The options it was built from.</summary>
    public TenantOptions Options { get; }

    /// <summary>Drops the per-thread HMAC contexts (each is released by its finalizer).</summary>
    public void Dispose()
    {
        foreach (var hmac in _inboundHmac)
            hmac.Dispose();
    }
}

/// <summary>Tenants by id, found without allocating from a span of the request path or of a log record.</summary>
public sealed class TenantRegistry : IDisposable
{
    private readonly Dictionary<string, Tenant> _byId;
    private readonly Dictionary<string, Tenant>.AlternateLookup<ReadOnlySpan<char>> _byChars;

    /// <summary>Builds the registry from validated options, on the clock <paramref name="time"/> (default: system).</summary>
    public TenantRegistry(IEnumerable<TenantOptions> tenants, TimeProvider? time = null)
    {
        _byId = tenants.Select(t => new Tenant(t, time)).ToDictionary(t => t.Id, StringComparer.Ordinal);
        _byChars = _byId.GetAlternateLookup<ReadOnlySpan<char>>();
        All = [.. _byId.Values];
    }

    /// <summary>All tenants.</summary>
    public IReadOnlyList<Tenant> All { get; }

    /// <summary>The tenant with id <paramref name="id"/>, or null.</summary>
    public Tenant? Find(ReadOnlySpan<char> id) => _byChars.TryGetValue(id, out var t) ? t : null;

    /// <summary>Disposes every tenant.</summary>
    public void Dispose()
    {
        foreach (var t in All)
            t.Dispose();
    }

    /// <summary>The tenant whose UTF-8 id is <paramref name="idUtf8"/>, or null (ids are ASCII, so this compares bytes).</summary>
    public Tenant? Find(ReadOnlySpan<byte> idUtf8)
    {
        if (idUtf8.Length > 64)
            return null;
        Span<char> chars = stackalloc char[idUtf8.Length];
        for (var i = 0; i < idUtf8.Length; i++)
        {
            if (idUtf8[i] > 0x7F)
                return null;
            chars[i] = (char)idUtf8[i];
        }
        return Find(chars);
    }
}
