using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace FastIngest.Configuration;

/// <summary>A configuration value that stops start-up; <see cref="Exception.Message"/> is one line naming the key.</summary>
public sealed class ConfigurationException : Exception
{
    /// <summary>Creates the error for <paramref name="key"/> (full path, e.g. <c>FastIngest:Tenants:0:AppSecret</c>).</summary>
    public ConfigurationException(string key, string problem)
        : base($"{key}: {problem}") => Key = key;

    /// <summary>The full configuration key at fault.</summary>
    public string Key { get; } = "";

    /// <summary>Required by the exception pattern.</summary>
    public ConfigurationException() { }

    /// <summary>Required by the exception pattern.</summary>
    public ConfigurationException(string message) : base(message) { }

    /// <summary>Required by the exception pattern.</summary>
    public ConfigurationException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>Binds and checks the <c>FastIngest</c> section.</summary>
public static class OptionsLoader
{
    /// <summary>
    /// Binds <see cref="FastIngestOptions"/> from <paramref name="configuration"/> and validates it.
    /// Unknown keys under the section are errors too (a misspelt key would otherwise be silently ignored).
    /// </summary>
    /// <exception cref="ConfigurationException">The first bad or missing setting.</exception>
    public static FastIngestOptions Load(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection(FastIngestOptions.SectionName);
        FastIngestOptions options;
        try
        {
            options = section.Get<FastIngestOptions>(o => o.ErrorOnUnknownConfiguration = true) ?? new FastIngestOptions();
        }
        catch (InvalidOperationException ex)
        {
            // The binder's own message may name no key ("'ErrorOnUnknownConfiguration' was set and binding has
            // failed"); the conversion failure under it does ("... value 'ten' at 'FastIngest:...:Timeout' ...").
            for (Exception? e = ex; e is not null; e = e.InnerException)
            {
                if (KeyFromBinderMessage(e) is { } key)
                    throw new ConfigurationException(key, FirstLine(e));
            }
            throw new ConfigurationException(FastIngestOptions.SectionName, FirstLine(ex));
        }
        Validate(options);
        return options;
    }

    /// <summary>Checks values that binding alone cannot.</summary>
    /// <exception cref="ConfigurationException">The first bad or missing setting.</exception>
    public static void Validate(FastIngestOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        const string s = FastIngestOptions.SectionName;
        if (string.IsNullOrWhiteSpace(options.DataDir))
            throw new ConfigurationException($"{s}:DataDir", "must not be empty");
        if (options.AdminToken is { Length: > 0 and < 16 })
            throw new ConfigurationException($"{s}:AdminToken", "must be at least 16 characters");
        for (var i = 0; i < options.AdminTokens.Count; i++)
        {
            if (options.AdminTokens[i] is not { Length: >= 16 })
                throw new ConfigurationException(string.Create(CultureInfo.InvariantCulture, $"{s}:AdminTokens:{i}"), "must be at least 16 characters");
        }
        if (options.MaxBodyBytes is < 1024 or > 64 * 1024 * 1024)
            throw new ConfigurationException($"{s}:MaxBodyBytes", "must be between 1024 and 67108864 bytes");
        if (options.MaxInFlightBodyBytes < options.MaxBodyBytes)
            throw new ConfigurationException($"{s}:MaxInFlightBodyBytes", "must be at least MaxBodyBytes");
        if (options.MaxConnections < 0)
            throw new ConfigurationException($"{s}:MaxConnections", "must be 0 (no limit) or more");
        if (options.MaxEventsPerPayload < 1)
            throw new ConfigurationException($"{s}:MaxEventsPerPayload", "must be at least 1");
        Duration(options.DedupeTtl, $"{s}:DedupeTtl", Millis(1), Days(365));
        Duration(options.CheckpointInterval, $"{s}:CheckpointInterval", TimeSpan.FromMilliseconds(100), Days(1));
        if (options.ShutdownTimeout < TimeSpan.FromMilliseconds(100) || options.ShutdownTimeout > TimeSpan.FromHours(1))
            throw new ConfigurationException($"{s}:ShutdownTimeout", "must be between 00:00:00.1 and 01:00:00");
        if (options.Storage.DedupeIndexBytes < 1 << 12 || !IsPowerOfTwo(options.Storage.DedupeIndexBytes))
            throw new ConfigurationException($"{s}:Storage:DedupeIndexBytes", "must be a power of two of at least 4096");
        if (options.Storage.DedupeMemoryBytes < 1 << 18)
            throw new ConfigurationException($"{s}:Storage:DedupeMemoryBytes", "must be at least 262144");
        if (options.Storage.StateIndexBytes < 1 << 12 || !IsPowerOfTwo(options.Storage.StateIndexBytes))
            throw new ConfigurationException($"{s}:Storage:StateIndexBytes", "must be a power of two of at least 4096");
        if (options.Storage.StateMemoryBytes < 1 << 18)
            throw new ConfigurationException($"{s}:Storage:StateMemoryBytes", "must be at least 262144");
        Duration(options.DeliveryStateTtl, $"{s}:DeliveryStateTtl", Millis(1), Days(365));
        if (options.Storage.LogMemoryBytes < 1 << 20)
            throw new ConfigurationException($"{s}:Storage:LogMemoryBytes", "must be at least 1048576");
        if (options.Storage.StallThreshold < TimeSpan.FromMilliseconds(100) || options.Storage.StallThreshold > TimeSpan.FromMinutes(10))
            throw new ConfigurationException($"{s}:Storage:StallThreshold", "must be between 00:00:00.1 and 00:10:00");
        if (options.Storage.MaxDiskBytes < 0)
            throw new ConfigurationException($"{s}:Storage:MaxDiskBytes", "must be 0 (no quota) or more");
        if (options.Storage.MaxDiskBytes > 0 && options.Storage.MaxDiskBytes < Storage.StorageFootprint.FixedDiskBytes(options.Storage))
            throw new ConfigurationException($"{s}:Storage:MaxDiskBytes", string.Create(CultureInfo.InvariantCulture,
                $"must be at least {Storage.StorageFootprint.FixedDiskBytes(options.Storage)} bytes with these sizes: two checkpoints of the hash indexes (2 x (Storage:DedupeIndexBytes + Storage:StateIndexBytes + Storage:WindowIndexBytes + Storage:SendIndexBytes + 1 MiB) = {2 * Storage.StorageFootprint.CheckpointBytes(options.Storage)}) and twice Storage:LogMemoryBytes ({Storage.StorageFootprint.LogReserveBytes(options.Storage)}); raise it or lower those (README, Sizing)"));
        if (options.Storage.WindowIndexBytes < 1 << 12 || !IsPowerOfTwo(options.Storage.WindowIndexBytes))
            throw new ConfigurationException($"{s}:Storage:WindowIndexBytes", "must be a power of two of at least 4096");
        if (options.Storage.WindowMemoryBytes < 1 << 18)
            throw new ConfigurationException($"{s}:Storage:WindowMemoryBytes", "must be at least 262144");
        if (options.Storage.SendIndexBytes < 1 << 12 || !IsPowerOfTwo(options.Storage.SendIndexBytes))
            throw new ConfigurationException($"{s}:Storage:SendIndexBytes", "must be a power of two of at least 4096");
        if (options.Storage.SendMemoryBytes < 1 << 18)
            throw new ConfigurationException($"{s}:Storage:SendMemoryBytes", "must be at least 262144");
        ValidateOutbound(options.Outbound, $"{s}:Outbound");
        if (options.Tenants.Count == 0)
            throw new ConfigurationException($"{s}:Tenants", "at least one tenant is required (Id, AppSecret, VerifyToken)");

        var ids = new HashSet<string>(StringComparer.Ordinal);
        var phoneNumbers = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < options.Tenants.Count; i++)
        {
            var t = options.Tenants[i];
            var k = string.Create(CultureInfo.InvariantCulture, $"{s}:Tenants:{i}");
            if (string.IsNullOrEmpty(t.Id))
                throw new ConfigurationException($"{k}:Id", "is required");
            if (t.Id.Length > 64 || !t.Id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
                throw new ConfigurationException($"{k}:Id", "must be 1-64 of letters, digits, '-', '_', '.'");
            if (!ids.Add(t.Id))
                throw new ConfigurationException($"{k}:Id", $"'{t.Id}' is used by another tenant");
            if (!Enum.TryParse<InboundAuth>(t.Inbound.Auth, ignoreCase: false, out var auth) || !Enum.IsDefined(auth))
                throw new ConfigurationException($"{k}:Inbound:Auth", t.Inbound.Auth == "D360Signature"
                    ? "D360Signature is not supported (README, Behind a BSP): use Header with a custom webhook header"
                    : $"'{t.Inbound.Auth}' is not one of MetaSignature, Header");
            if (auth == InboundAuth.Header)
            {
                if (string.IsNullOrWhiteSpace(t.Inbound.HeaderName) || !t.Inbound.HeaderName.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
                    throw new ConfigurationException($"{k}:Inbound:HeaderName", "is required with Inbound:Auth Header (a header name: letters, digits, '-', '_')");
                if (t.Inbound.HeaderValue is null && t.Inbound.HeaderValues.Count == 0)
                    throw new ConfigurationException($"{k}:Inbound:HeaderValue", "is required with Inbound:Auth Header (or HeaderValues:0)");
                if (t.Inbound.HeaderValue is { } one && one.Length < 16)
                    throw new ConfigurationException($"{k}:Inbound:HeaderValue", "must be at least 16 characters");
                for (var j = 0; j < t.Inbound.HeaderValues.Count; j++)
                {
                    if (t.Inbound.HeaderValues[j] is not { Length: >= 16 })
                        throw new ConfigurationException(string.Create(CultureInfo.InvariantCulture, $"{k}:Inbound:HeaderValues:{j}"), "must be at least 16 characters");
                }
            }
            else if (string.IsNullOrEmpty(t.AppSecret) && t.AppSecrets.Count == 0)
            {
                throw new ConfigurationException($"{k}:AppSecret", "is required (or AppSecrets:0)");
            }
            for (var j = 0; j < t.AppSecrets.Count; j++)
            {
                if (string.IsNullOrEmpty(t.AppSecrets[j]))
                    throw new ConfigurationException(string.Create(CultureInfo.InvariantCulture, $"{k}:AppSecrets:{j}"), "is empty");
            }
            SecretList(t.AppSecrets, $"{k}:AppSecrets", string.IsNullOrEmpty(t.AppSecret) ? 0 : 1);
            SecretList(t.Inbound.HeaderValues, $"{k}:Inbound:HeaderValues", string.IsNullOrEmpty(t.Inbound.HeaderValue) ? 0 : 1);
            if (string.IsNullOrEmpty(t.VerifyToken) && auth == InboundAuth.MetaSignature)
                throw new ConfigurationException($"{k}:VerifyToken", "is required");
            Duration(t.InboundSilence, $"{k}:InboundSilence", TimeSpan.Zero, Days(30));
            try
            {
                Tenancy.InboundSilence.ParseActiveHours(t.ActiveHours);
            }
            catch (FormatException ex)
            {
                throw new ConfigurationException($"{k}:ActiveHours", ex.Message);
            }
            if (!TimeZoneInfo.TryFindSystemTimeZoneById(t.TimeZone ?? "", out _))
                throw new ConfigurationException($"{k}:TimeZone", $"'{t.TimeZone}' is not a time zone id of this system (e.g. UTC, Europe/Berlin)");
            var f = t.Forward;
            if (!string.IsNullOrEmpty(f.Url))
            {
                if (!Uri.TryCreate(f.Url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
                    throw new ConfigurationException($"{k}:Forward:Url", "must be an absolute http or https URL");
                if (string.IsNullOrEmpty(f.Secret) && f.Secrets.Count == 0)
                    throw new ConfigurationException($"{k}:Forward:Secret", "is required when Forward:Url is set (or Forward:Secrets:0)");
            }
            ValidatePolicy(f, $"{k}:Forward");
            foreach (var d in Destinations.DestinationSpec.Resolve(t, k, options.DataDir))
                ValidatePolicy(d.Policy, d.ConfigKey);
            ValidateTenantOutbound(t.Outbound, $"{k}:Outbound", phoneNumbers);
            Duration(t.Outbound.DefaultWait, $"{k}:Outbound:DefaultWait", TimeSpan.Zero, options.Outbound.MaxWait);
        }
    }

    /// <summary>The delivery keys of <c>Forward</c> or of one destination (<paramref name="k"/> is its section).</summary>
    /// <summary>At most <see cref="MaxKeys"/> values in all (<paramref name="single"/> of them given as the single key), none empty.</summary>
    internal static void SecretList(List<string> values, string k, int single)
    {
        for (var j = 0; j < values.Count; j++)
        {
            if (string.IsNullOrEmpty(values[j]))
                throw new ConfigurationException(string.Create(CultureInfo.InvariantCulture, $"{k}:{j}"), "is empty");
        }
        if (values.Count + single > MaxKeys)
            throw new ConfigurationException(string.Create(CultureInfo.InvariantCulture, $"{k}:{MaxKeys - single}"), $"too many: at most {MaxKeys} values of one secret are accepted at once");
    }

    /// <summary>The most values of one secret accepted at once (a rotation needs two): 8.</summary>
    public const int MaxKeys = 8;

    private static void ValidatePolicy(ForwardOptions f, string k)
    {
        SecretList(f.Secrets, $"{k}:Secrets", string.IsNullOrEmpty(f.Secret) ? 0 : 1);
        if (f.SecretKeyId is not null && (f.SecretKeyId.Length is 0 or > 64 || !f.SecretKeyId.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or ':')))
            throw new ConfigurationException($"{k}:SecretKeyId", "must be 1-64 of letters, digits, '.', '_', '-', ':'");
        if (f.Concurrency is < 1 or > 256)
            throw new ConfigurationException($"{k}:Concurrency", "must be between 1 and 256");
        if (f.QueueCapacity is < 1 or > 1_000_000)
            throw new ConfigurationException($"{k}:QueueCapacity", "must be between 1 and 1000000");
        Duration(f.Timeout, $"{k}:Timeout", Millis(1), Hours(1));
        Duration(f.InitialBackoff, $"{k}:InitialBackoff", Millis(1), Hours(1));
        Duration(f.MaxBackoff, $"{k}:MaxBackoff", Millis(1), Days(1));
        if (f.MaxBackoff < f.InitialBackoff)
            throw new ConfigurationException($"{k}:MaxBackoff", "must be at least InitialBackoff");
        if (f.MaxAttempts < 0)
            throw new ConfigurationException($"{k}:MaxAttempts", "must be 0 (no limit) or more");
        Duration(f.MaxAge, $"{k}:MaxAge", Millis(1), Days(30));
        if (f.BreakerFailures is < 0 or > 1_000_000)
            throw new ConfigurationException($"{k}:BreakerFailures", "must be 0 (no breaker) to 1000000");
        if (!Enum.TryParse<StaleStatusHandling>(f.StaleStatuses, ignoreCase: true, out var stale) || !Enum.IsDefined(stale) || int.TryParse(f.StaleStatuses, out _))
            throw new ConfigurationException($"{k}:StaleStatuses", "must be Forward or Drop");
        Duration(f.BreakDuration, $"{k}:BreakDuration", Millis(1), Hours(1));
        Duration(f.MaxBacklogAge, $"{k}:MaxBacklogAge", Millis(1), Days(30));
    }

    private static void ValidateOutbound(OutboundOptions o, string k)
    {
        if (!Uri.TryCreate(o.GraphUrl, UriKind.Absolute, out var graph) || (graph.Scheme != Uri.UriSchemeHttp && graph.Scheme != Uri.UriSchemeHttps))
            throw new ConfigurationException($"{k}:GraphUrl", "must be an absolute http or https URL");
        if (!Outbound.GraphVersions.IsValid(o.GraphVersion))
            throw new ConfigurationException($"{k}:GraphVersion", "must be a Graph API version like v23.0");
        Duration(o.Timeout, $"{k}:Timeout", Millis(1), Minutes(10));
        if (o.MaxInFlight is < 1 or > 10_000)
            throw new ConfigurationException($"{k}:MaxInFlight", "must be between 1 and 10000");
        if (o.MaxBodyBytes is < 1024 or > 1024 * 1024)
            throw new ConfigurationException($"{k}:MaxBodyBytes", "must be between 1024 and 1048576 bytes");
        Duration(o.InitialBackoff, $"{k}:InitialBackoff", Millis(1), Hours(1));
        Duration(o.MaxBackoff, $"{k}:MaxBackoff", Millis(1), Days(1));
        if (o.MaxBackoff < o.InitialBackoff)
            throw new ConfigurationException($"{k}:MaxBackoff", "must be at least Outbound:InitialBackoff");
        if (o.MaxAttempts < 1)
            throw new ConfigurationException($"{k}:MaxAttempts", "must be at least 1");
        Duration(o.MaxAge, $"{k}:MaxAge", Millis(1), Days(30));
        Duration(o.Retention, $"{k}:Retention", Millis(1), Days(365));
        if (o.Retention < o.MaxAge)
            throw new ConfigurationException($"{k}:Retention", "must be at least Outbound:MaxAge");
        Duration(o.RateRecoveryInterval, $"{k}:RateRecoveryInterval", Millis(1), Days(1));
        Duration(o.PausedRetryInterval, $"{k}:PausedRetryInterval", Millis(1), Days(1));
        Duration(o.MaxWait, $"{k}:MaxWait", TimeSpan.Zero, Minutes(10));
    }

    private static void ValidateTenantOutbound(TenantOutboundOptions o, string k, HashSet<string> phoneNumbers)
    {
        for (var i = 0; i < o.PhoneNumberIds.Count; i++)
        {
            var id = o.PhoneNumberIds[i];
            if (string.IsNullOrEmpty(id) || id.Length > 32 || !id.All(char.IsAsciiDigit))
                throw new ConfigurationException(string.Create(CultureInfo.InvariantCulture, $"{k}:PhoneNumberIds:{i}"), "must be a phone_number_id (1-32 digits)");
            if (!phoneNumbers.Add(id))
                throw new ConfigurationException(string.Create(CultureInfo.InvariantCulture, $"{k}:PhoneNumberIds:{i}"), $"{id} is listed by another tenant");
        }
        if (o.Provider is not ("Meta" or "360dialog"))
            throw new ConfigurationException($"{k}:Provider", $"'{o.Provider}' is not one of Meta, 360dialog");
        if (o.Provider == "360dialog")
        {
            if (string.IsNullOrEmpty(o.ApiKey))
                throw new ConfigurationException($"{k}:ApiKey", "is required with Outbound:Provider 360dialog (the number's D360-API-KEY)");
            if (!Uri.TryCreate(o.BaseUrl, UriKind.Absolute, out var d360) || d360.Scheme is not ("http" or "https"))
                throw new ConfigurationException($"{k}:BaseUrl", $"'{o.BaseUrl}' is not an absolute http(s) URL");
            if (o.PhoneNumberIds.Count > 0 && o.BotToken is not { Length: >= 16 } && o.BotTokens.Count == 0)
                throw new ConfigurationException($"{k}:BotToken", "is required with Outbound:Provider 360dialog (at least 16 characters)");
        }
        SecretList(o.AccessTokens, $"{k}:AccessTokens", string.IsNullOrEmpty(o.AccessToken) ? 0 : 1);
        if ((!string.IsNullOrEmpty(o.AccessToken) || o.AccessTokens.Count > 0) && o.BotToken is not { Length: >= 16 } && o.BotTokens.Count == 0)
            throw new ConfigurationException($"{k}:BotToken", "is required with Outbound:AccessToken (at least 16 characters)");
        if (o.PhoneNumberIds.Count > 0 && o.BotToken is not { Length: >= 16 } && o.BotTokens.Count == 0)
            throw new ConfigurationException($"{k}:BotToken", "is required for a tenant that sends (Outbound:PhoneNumberIds): the credential its bot presents, at least 16 characters");
        if (!string.IsNullOrEmpty(o.BotToken) && o.BotToken.Length < 16)
            throw new ConfigurationException($"{k}:BotToken", "must be at least 16 characters");
        for (var i = 0; i < o.BotTokens.Count; i++)
        {
            if (o.BotTokens[i] is not { Length: >= 16 })
                throw new ConfigurationException(string.Create(CultureInfo.InvariantCulture, $"{k}:BotTokens:{i}"), "must be at least 16 characters");
        }
        if (o.PhoneNumberRate is <= 0 or > 100_000 || double.IsNaN(o.PhoneNumberRate))
            throw new ConfigurationException($"{k}:PhoneNumberRate", "must be a positive messages/s up to 100000");
        if (o.Rate is < 0 or > 100_000 || double.IsNaN(o.Rate))
            throw new ConfigurationException($"{k}:Rate", "must be 0 (no quota) or a positive messages/s up to 100000");
        Duration(o.PairInterval, $"{k}:PairInterval", Millis(1), Days(1));
        if (o.PairBurst is < 1 or > 10_000)
            throw new ConfigurationException($"{k}:PairBurst", "must be between 1 and 10000");
        Duration(o.HoldingAfter, $"{k}:HoldingAfter", TimeSpan.Zero, Days(1));
        if (!string.IsNullOrEmpty(o.HoldingMessage) && o.PhoneNumberIds.Count == 0)
            throw new ConfigurationException($"{k}:HoldingMessage", "needs Outbound:PhoneNumberIds (and a way to send: AccessToken)");
        if (!string.IsNullOrEmpty(o.HoldingMessage) && string.IsNullOrEmpty(o.AccessToken) && o.AccessTokens.Count == 0)
            throw new ConfigurationException($"{k}:HoldingMessage", "needs Outbound:AccessToken (there is no bot request to take a token from)");
        if (o.HoldingMessage is { Length: > 4096 })
            throw new ConfigurationException($"{k}:HoldingMessage", "must be at most 4096 characters (Meta's text limit)");
    }

    /// <summary>
    /// Every duration has a range: past ~49.7 days (uint.MaxValue ms) .NET's timers refuse it, and a value that only
    /// fails when a timer is first armed would stop a dispatcher or the sends of a running server, not its start.
    /// </summary>
    private static void Duration(TimeSpan value, string key, TimeSpan min, TimeSpan max)
    {
        if (value < min || value > max)
            throw new ConfigurationException(key, string.Create(CultureInfo.InvariantCulture, $"must be between {min:c} and {max:c} (it is {value:c})"));
    }

    private static TimeSpan Millis(int n) => TimeSpan.FromMilliseconds(n);

    private static TimeSpan Minutes(int n) => TimeSpan.FromMinutes(n);

    private static TimeSpan Hours(int n) => TimeSpan.FromHours(n);

    private static TimeSpan Days(int n) => TimeSpan.FromDays(n);

    private static bool IsPowerOfTwo(long v) => v > 0 && (v & (v - 1)) == 0;

    private static string FirstLine(Exception ex)
    {
        var message = ex.Message;
        var nl = message.IndexOfAny(['\r', '\n']);
        return nl < 0 ? message : message[..nl];
    }

    /// <summary>The binder names the key in quotes: "... at 'FastIngest:DedupeTtl' ..." or "... 'Foo' ... on type ...".</summary>
    private static string? KeyFromBinderMessage(Exception ex)
    {
        var m = System.Text.RegularExpressions.Regex.Match(ex.Message, "'(FastIngest:[^']+)'");
        if (m.Success)
            return m.Groups[1].Value;
        return null;
    }
}
