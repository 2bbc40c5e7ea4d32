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
        _options = options;
        Id = options.Id;
        IdUtf8 = Encoding.UTF8.GetBytes(options.Id);
        InboundAuth = Enum.TryParse<InboundAuth>(options.Inbound.Auth, out var auth) ? auth : Configuration.InboundAuth.MetaSignature;
        InboundHeaderName = options.Inbound.HeaderName ?? "";
        _credentials = new InboundCredentials(options);
        Silence = new InboundSilence(options, (time ?? TimeProvider.System).GetUtcNow().ToUnixTimeMilliseconds());
        Outage = new BotOutage(options.Outbound.HoldingAfter, !string.IsNullOrEmpty(options.Outbound.HoldingMessage));
        Counters = new Telemetry.TenantCounters(OptionsLoader.MaxKeys);
    }

    private volatile InboundCredentials _credentials;
    private volatile TenantOptions _options;

    /// <summary>
    /// The inbound credentials now (app secrets with their HMACs, header values, <c>hub.verify_token</c>): read once
    /// per request, since a reload (<see cref="Rotate"/>) replaces them whole.
    /// </summary>
    public InboundCredentials Credentials => _credentials;

    /// <summary>
    /// Takes the secrets of <paramref name="next"/> (a configuration reload that changed nothing else of this tenant):
    /// requests that start from now on are checked against them; a request already checked is not affected.
    /// </summary>
    public void Rotate(TenantOptions next)
    {
        ArgumentNullException.ThrowIfNull(next);
        _credentials = new InboundCredentials(next);
        _options = next;
    }

    /// <summary>This thread's HMAC-SHA256 keyed with <see cref="AppSecret"/> (see <see cref="InboundCredentials.HmacOf"/>).</summary>
    public IncrementalHash InboundHmac => _credentials.HmacOf(0);

    /// <summary>As <see cref="InboundHmac"/>, keyed with <see cref="AppSecrets"/>[<paramref name="index"/>].</summary>
    public IncrementalHash InboundHmacOf(int index) => _credentials.HmacOf(index);

    /// <summary>Every accepted app secret now (see <see cref="InboundCredentials.AppSecrets"/>).</summary>
    public byte[][] AppSecrets => _credentials.AppSecrets;

    /// <summary>How many secrets are accepted now (app secrets, or header values with <c>Inbound:Auth=Header</c>): the <c>key_index</c> values in use.</summary>
    public int KeyCount => InboundAuth == Configuration.InboundAuth.Header ? _credentials.HeaderValues.Count : _credentials.AppSecrets.Length;

    /// <summary>The tenant id (the <c>{tenant}</c> of <c>/webhooks/{tenant}</c>).</summary>
    public string Id { get; }

    /// <summary><see cref="Id"/> as UTF-8: stored in log records and hashed into dedupe keys.</summary>
    public byte[] IdUtf8 { get; }

    /// <summary>How this tenant's webhooks are authenticated.</summary>
    public InboundAuth InboundAuth { get; }

    /// <summary>The secret header's name (<see cref="Configuration.InboundAuth.Header"/>); "" otherwise.</summary>
    public string InboundHeaderName { get; }

    /// <summary>The secret header's accepted values now (see <see cref="InboundCredentials.HeaderValues"/>).</summary>
    internal Internal.SecretSet InboundHeaderValues => _credentials.HeaderValues;

    /// <summary>The first accepted app secret, UTF-8 (see <see cref="AppSecrets"/>).</summary>
    public byte[] AppSecret => _credentials.AppSecrets is { Length: > 0 } all ? all[0] : [];

    /// <summary>The <c>hub.verify_token</c>, UTF-8.</summary>
    public byte[] VerifyToken => _credentials.VerifyToken;

    /// <summary>The inbound-silence check (when was the last inbound message).</summary>
    public InboundSilence Silence { get; }

    /// <summary>Whether delivery to the bot is failing, and since when (drives the holding message).</summary>
    public BotOutage Outage { get; }

    /// <summary>The options it was built from (the last reload's, after <see cref="Rotate"/>).</summary>
    public TenantOptions Options => _options;

    /// <summary>Drops the per-thread HMAC contexts of the credentials in use (replaced ones are released by their finalizers).</summary>
    public void Dispose() => _credentials.Dispose();
}

/// <summary>
/// One tenant's inbound credentials at one time, UTF-8, immutable: the app secrets that key <c>X-Hub-Signature-256</c>
/// with a per-thread HMAC each, the BSP header's values, and the <c>hub.verify_token</c>.
/// </summary>
public sealed class InboundCredentials : IDisposable
{
    private readonly ThreadLocal<IncrementalHash>[] _hmacs;

    internal InboundCredentials(TenantOptions options)
    {
        AppSecrets = [.. new Internal.SecretSet(options.AppSecret, options.AppSecrets).Utf8];
        HeaderValues = new Internal.SecretSet(options.Inbound.HeaderValue, options.Inbound.HeaderValues);
        VerifyToken = Encoding.UTF8.GetBytes(options.VerifyToken);
        _hmacs = [.. AppSecrets.Select(key => new ThreadLocal<IncrementalHash>(() => IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key)))];
    }

    /// <summary>
    /// Every accepted app secret: <c>AppSecret</c> (when set) first, then <c>AppSecrets:{n}</c> in order; the index is
    /// the <c>key_index</c> of <c>fastingest_signature_key_used_total</c>.
    /// </summary>
    public byte[][] AppSecrets { get; }

    /// <summary>The secret header's accepted values (<c>Inbound:HeaderValue</c> first, then <c>HeaderValues:{n}</c>).</summary>
    internal Internal.SecretSet HeaderValues { get; }

    /// <summary>The <c>hub.verify_token</c>.</summary>
    public byte[] VerifyToken { get; }

    /// <summary>
    /// This thread's HMAC-SHA256 keyed with <see cref="AppSecrets"/>[<paramref name="index"/>], kept for reuse (one
    /// per thread). Use it on this thread only, and finish each hash (<see cref="IncrementalHash.GetHashAndReset(Span{byte})"/>).
    /// </summary>
    public IncrementalHash HmacOf(int index) => _hmacs[index].Value!;

    /// <summary>Drops the per-thread HMAC contexts.</summary>
    public void Dispose()
    {
        foreach (var hmac in _hmacs)
            hmac.Dispose();
    }
}

/// <summary>
/// Tenants by id, found without allocating from a span of the request path or of a log record. A reload adds and
/// removes tenants by replacing the whole snapshot, so a lookup never takes a lock.
/// </summary>
public sealed class TenantRegistry : IDisposable
{
    private volatile Snapshot _now;

    /// <summary>Builds the registry from validated options, on the clock <paramref name="time"/> (default: system).</summary>
    public TenantRegistry(IEnumerable<TenantOptions> tenants, TimeProvider? time = null)
        => _now = new Snapshot([.. tenants.Select(t => new Tenant(t, time))]);

    /// <summary>All tenants configured now.</summary>
    public IReadOnlyList<Tenant> All => _now.All;

    /// <summary>The tenant with id <paramref name="id"/>, or null.</summary>
    public Tenant? Find(ReadOnlySpan<char> id) => _now.ByChars.TryGetValue(id, out var t) ? t : null;

    /// <summary>Adds <paramref name="tenant"/> (a reload); its webhooks are taken from now on.</summary>
    /// <exception cref="InvalidOperationException">A tenant with its id is configured.</exception>
    public void Add(Tenant tenant)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        lock (this)
        {
            if (_now.ById.ContainsKey(tenant.Id))
                throw new InvalidOperationException($"tenant '{tenant.Id}' is configured already");
            _now = new Snapshot([.. _now.All, tenant]);
        }
    }

    /// <summary>Removes the tenant <paramref name="id"/> (a reload): its webhooks get 404 from now on. Returns it, or null.</summary>
    public Tenant? Remove(string id)
    {
        lock (this)
        {
            var tenant = _now.ById.GetValueOrDefault(id);
            if (tenant is not null)
                _now = new Snapshot([.. _now.All.Where(t => t != tenant)]);
            return tenant;
        }
    }

    /// <summary>Disposes every tenant.</summary>
    public void Dispose()
    {
        foreach (var t in All)
            t.Dispose();
    }

    private sealed class Snapshot
    {
        public Snapshot(Tenant[] all)
        {
            All = all;
            ById = all.ToDictionary(t => t.Id, StringComparer.Ordinal);
            ByChars = ById.GetAlternateLookup<ReadOnlySpan<char>>();
        }

        public Tenant[] All { get; }
        public Dictionary<string, Tenant> ById { get; }
        public Dictionary<string, Tenant>.AlternateLookup<ReadOnlySpan<char>> ByChars { get; }
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
