using System.Globalization;
using System.Text.RegularExpressions;
using FastIngest.Admin;
using FastIngest.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace FastIngest.Hosting;

/// <summary>
/// Applies a changed configuration to the running engine without a restart: triggered by <c>POST /admin/reload</c>
/// or, when <c>appsettings.json</c> (or another reloading source) changes, by the configuration's reload token.
/// </summary>
/// <remarks>
/// What a reload changes:
/// <list type="bullet">
/// <item>Tenants added (a new <c>Id</c>): their dispatchers start and their webhooks (and sends, with phone numbers) are taken.</item>
/// <item>Tenants removed: webhooks and new sends get 404 at once; what they have in the log is still delivered, then their dispatchers stop.</item>
/// <item>Secrets of a tenant kept: <c>AppSecret</c>/<c>AppSecrets</c>, <c>VerifyToken</c>, <c>Inbound:HeaderValue(s)</c>,
/// <c>Outbound:BotToken(s)</c>, <c>Outbound:AccessToken(s)</c>, <c>Outbound:ApiKey</c>, and the signing keys
/// (<c>Secret</c>, <c>Secrets</c>, <c>SecretKeyId</c>) of <c>Forward</c> and <c>Destinations:{j}</c>; and <c>AdminToken(s)</c>.</item>
/// </list>
/// Anything else that differs from the running configuration (a URL, a rate, a storage size, a tenant's
/// destinations) takes effect only at a restart: the reload is refused naming that key, and so is one whose new
/// configuration fails validation (the same checks as start-up). A refused reload changes nothing.
/// </remarks>
public sealed partial class ConfigReload
{
    private readonly IConfiguration _configuration;
    private readonly FastIngestEngine _engine;
    private readonly AdminTokens _adminTokens;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private Flat _running;

    /// <summary>Takes <paramref name="configuration"/> as it is now as the running configuration.</summary>
    public ConfigReload(IConfiguration configuration, FastIngestEngine engine, AdminTokens adminTokens, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        _configuration = configuration;
        _engine = engine ?? throw new ArgumentNullException(nameof(engine));
        _adminTokens = adminTokens ?? throw new ArgumentNullException(nameof(adminTokens));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _running = Flat.Of(configuration);
    }

    [ThreadStatic]
    private static bool t_reloading;

    /// <summary>
    /// Reads every configuration source again (<c>appsettings.json</c> and the others that can change) and applies
    /// the result (<see cref="Apply"/>): <c>POST /admin/reload</c>.
    /// </summary>
    public ReloadOutcome ReloadNow()
    {
        if (_configuration is IConfigurationRoot root)
        {
            // Reload() fires the change token on this thread: that callback is this reload, not another.
            t_reloading = true;
            try
            {
                root.Reload();
            }
            finally
            {
                t_reloading = false;
            }
        }
        return Apply();
    }

    /// <summary>
    /// Applies each change a source reports by itself (<c>appsettings.json</c> edited: <c>reloadOnChange</c>), until
    /// the returned handle is disposed; a refused one is logged with its key (event 4021).
    /// </summary>
    public IDisposable WatchChanges() => Microsoft.Extensions.Primitives.ChangeToken.OnChange(_configuration.GetReloadToken, () =>
    {
        if (!t_reloading)
            Apply();
    });

    /// <summary>Reloads applied since start.</summary>
    public long Applied => Interlocked.Read(ref _applied);

    /// <summary>Reloads refused since start (<c>fastingest_config_reloads_total{result="refused"}</c>).</summary>
    public long Refused => Interlocked.Read(ref _refused);

    private long _applied;
    private long _refused;

    /// <summary>
    /// Reads the configuration's current values and applies what changed (see the remarks). Thread-safe: reloads run
    /// one at a time. Returns what was done, or why nothing was.
    /// </summary>
    public ReloadOutcome Apply()
    {
        lock (_gate)
        {
            var outcome = ApplyLocked();
            if (outcome.Error is not null)
            {
                Interlocked.Increment(ref _refused);
                ReloadLog.Refused(_logger, outcome.Error);
            }
            else if (outcome.Changed)
            {
                Interlocked.Increment(ref _applied);
                ReloadLog.Applied(_logger, Join(outcome.Added), Join(outcome.Removed), Join(outcome.Rotated));
            }
            return outcome;
        }

        static string Join(IReadOnlyList<string> ids) => ids.Count == 0 ? "none" : string.Join(", ", ids);
    }

    private ReloadOutcome ApplyLocked()
    {
        FastIngestOptions next;
        try
        {
            next = OptionsLoader.Load(_configuration);
        }
        catch (ConfigurationException ex)
        {
            return ReloadOutcome.RefusedFor(ex.Key, ex.Message);
        }
        var flat = Flat.Of(_configuration);
        var running = _running;

        // Settings outside the tenants: only the admin tokens change without a restart.
        if (FirstDifference(running.Global, flat.Global, s_globalReloadable) is { } global)
            return RestartOnly(Section + global);

        var kept = new List<(TenantOptions Options, string Key)>();
        var added = new List<(TenantOptions Options, string Key)>();
        for (var i = 0; i < next.Tenants.Count; i++)
        {
            var t = next.Tenants[i];
            var key = string.Create(CultureInfo.InvariantCulture, $"{Section}Tenants:{i}");
            if (running.Tenants.TryGetValue(t.Id, out var before))
            {
                var now = flat.Tenants[t.Id];
                if (FirstDifference(before.Values, now.Values, s_tenantReloadable) is { } changed)
                    return RestartOnly($"{key}:{changed}");
                if (PassesThrough(before.Values) != PassesThrough(now.Values))
                    return ReloadOutcome.RefusedFor($"{key}:Outbound:AccessToken", $"{key}:Outbound:AccessToken: switching between the tenant's own access token and passing its bot's token through takes effect only at a restart; reload refused, the running configuration is kept");
                kept.Add((t, key));
            }
            else
            {
                if (_engine.IsRetiring(t.Id))
                    return ReloadOutcome.RefusedFor($"{key}:Id", $"{key}:Id: tenant '{t.Id}' was removed by an earlier reload and its backlog is still being delivered; reload again once it is (log event 4016)");
                added.Add((t, key));
            }
        }
        var removed = running.Tenants.Keys.Where(id => !flat.Tenants.ContainsKey(id)).Order(StringComparer.Ordinal).ToList();

        // Everything checked: apply. Removals first, so that a phone number moved to a new tenant is its at once.
        foreach (var id in removed)
            _engine.RemoveTenant(id);
        var rotated = new List<string>();
        foreach (var (options, key) in kept)
        {
            if (FirstDifference(running.Tenants[options.Id].Values, flat.Tenants[options.Id].Values, s_nothing) is null)
                continue;
            if (_engine.Tenants.Find(options.Id.AsSpan()) is { } tenant)
            {
                _engine.RotateTenant(tenant, options, key);
                rotated.Add(options.Id);
            }
        }
        foreach (var (options, key) in added)
            _engine.AddTenant(options, key);
        var adminChanged = FirstDifference(running.Global, flat.Global, s_nothing) is not null;
        if (adminChanged)
            _adminTokens.Replace(next.AdminTokenValues);
        _running = flat;
        return new ReloadOutcome([.. added.Select(a => a.Options.Id)], removed, rotated, adminChanged, null, null);
    }

    private static ReloadOutcome RestartOnly(string key)
        => ReloadOutcome.RefusedFor(key, $"{key}: changed, and takes effect only at a restart (a reload changes tenants and secrets only); reload refused, the running configuration is kept");

    private const string Section = FastIngestOptions.SectionName + ":";

    /// <summary>Whether a tenant passes its bot's token through to Meta (no access token of its own).</summary>
    private static bool PassesThrough(Dictionary<string, string> values)
        => !values.Any(kv => kv.Key == "Outbound:AccessToken" || kv.Key.StartsWith("Outbound:AccessTokens:", StringComparison.Ordinal));

    /// <summary>The first key (sorted) whose value differs between <paramref name="before"/> and <paramref name="after"/>, keys matching <paramref name="ignore"/> aside.</summary>
    private static string? FirstDifference(Dictionary<string, string> before, Dictionary<string, string> after, Regex ignore)
    {
        foreach (var key in before.Keys.Union(after.Keys).Order(StringComparer.Ordinal))
        {
            if (ignore.IsMatch(key))
                continue;
            if (!before.TryGetValue(key, out var a) || !after.TryGetValue(key, out var b) || !string.Equals(a, b, StringComparison.Ordinal))
                return key;
        }
        return null;
    }

    private static readonly Regex s_globalReloadable = GlobalReloadable();
    private static readonly Regex s_tenantReloadable = TenantReloadable();
    private static readonly Regex s_nothing = Nothing();

    [GeneratedRegex(@"^AdminTokens?(:\d+)?$")]
    private static partial Regex GlobalReloadable();

    [GeneratedRegex(@"^(AppSecret|AppSecrets:\d+|VerifyToken|Inbound:HeaderValue|Inbound:HeaderValues:\d+|Outbound:BotToken|Outbound:BotTokens:\d+|Outbound:AccessToken|Outbound:AccessTokens:\d+|Outbound:ApiKey|Forward:Secret|Forward:Secrets:\d+|Forward:SecretKeyId|Destinations:\d+:Secret|Destinations:\d+:Secrets:\d+|Destinations:\d+:SecretKeyId)$")]
    private static partial Regex TenantReloadable();

    [GeneratedRegex("^$")]
    private static partial Regex Nothing();

    /// <summary>The <c>FastIngest</c> section as flat key/value pairs: settings outside the tenants, and each tenant's by its id.</summary>
    private sealed class Flat
    {
        public Dictionary<string, string> Global { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, (int Index, Dictionary<string, string> Values)> Tenants { get; } = new(StringComparer.Ordinal);

        public static Flat Of(IConfiguration configuration)
        {
            var flat = new Flat();
            var byIndex = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
            foreach (var (key, value) in configuration.GetSection(FastIngestOptions.SectionName).AsEnumerable(makePathsRelative: true))
            {
                if (value is null)
                    continue;
                if (key.StartsWith("Tenants:", StringComparison.OrdinalIgnoreCase))
                {
                    var rest = key["Tenants:".Length..];
                    var colon = rest.IndexOf(':', StringComparison.Ordinal);
                    if (colon < 0)
                        continue;
                    var index = rest[..colon];
                    if (!byIndex.TryGetValue(index, out var values))
                        byIndex[index] = values = new Dictionary<string, string>(StringComparer.Ordinal);
                    values[rest[(colon + 1)..]] = value;
                }
                else
                {
                    flat.Global[key] = value;
                }
            }
            foreach (var (index, values) in byIndex)
            {
                if (values.TryGetValue("Id", out var id) && int.TryParse(index, NumberStyles.None, CultureInfo.InvariantCulture, out var i))
                    flat.Tenants[id] = (i, values);
            }
            return flat;
        }
    }
}

/// <summary>
/// What a reload did: tenants <paramref name="Added"/>, <paramref name="Removed"/>, and those whose secrets were
/// <paramref name="Rotated"/>, whether the admin tokens changed; or, when <paramref name="Error"/> is set, why it was
/// refused (the configuration key at fault in <paramref name="Key"/>) and nothing changed.
/// </summary>
public sealed record ReloadOutcome(IReadOnlyList<string> Added, IReadOnlyList<string> Removed, IReadOnlyList<string> Rotated, bool AdminTokensChanged, string? Key, string? Error)
{
    /// <summary>Whether anything was changed.</summary>
    public bool Changed => Error is null && (Added.Count > 0 || Removed.Count > 0 || Rotated.Count > 0 || AdminTokensChanged);

    internal static ReloadOutcome RefusedFor(string key, string error) => new([], [], [], false, key, error);
}

internal static partial class ReloadLog
{
    [LoggerMessage(4020, LogLevel.Information, "Configuration reloaded: tenants added {Added}; removed {Removed} (their backlog is still delivered); secrets rotated {Rotated}")]
    public static partial void Applied(ILogger logger, string added, string removed, string rotated);

    [LoggerMessage(4021, LogLevel.Error, "Configuration reload refused, the running configuration is kept: {Error}")]
    public static partial void Refused(ILogger logger, string error);
}
