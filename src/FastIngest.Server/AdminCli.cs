using System.Globalization;
using System.Net.Http.Headers;

namespace FastIngest.Server;

/// <summary>
/// <c>fastingest deadletters ...</c> and <c>fastingest quarantine ...</c>: the dead-letter queue and the quarantine
/// of a running server, through its admin API.
/// <code>
/// fastingest deadletters|quarantine list    [--tenant T] [--destination D]
/// fastingest deadletters|quarantine show    ID
/// fastingest deadletters|quarantine replay  [--tenant T [--destination D] | --id ID]     (no filter: all)
/// fastingest deadletters|quarantine discard ID
/// fastingest damage list|clear                                     (damage start-up found; clear once handled)
///   --url URL      the server (default http://localhost:5000, or FASTINGEST_URL)
///   --token TOKEN  FastIngest:AdminToken (default: FASTINGEST_ADMIN_TOKEN)
/// </code>
/// Prints the API's JSON. Exit codes: 0 done, 1 the server answered an error (404: no such entry), 2 bad usage or
/// server unreachable.
/// </summary>
public static class AdminCli
{
    /// <summary>The first argument that selects the dead-letter command line.</summary>
    public const string Command = "deadletters";

    /// <summary>The first argument that selects the quarantine command line.</summary>
    public const string QuarantineCommand = "quarantine";

    /// <summary>The first argument that selects the damage report: <c>fastingest damage list|clear</c>.</summary>
    public const string DamageCommand = "damage";

    private const string Usage = "usage: fastingest deadletters|quarantine list [--tenant T] [--destination D] | show ID | replay [--tenant T [--destination D] | --id ID] | discard ID; fastingest damage list | clear  [--url URL] [--token TOKEN]";

    /// <summary>Runs one dead-letter command; writes the JSON answer to <paramref name="output"/>.</summary>
    public static Task<int> RunAsync(string[] args, TextWriter output, TextWriter error) => RunAsync(Command, args, output, error);

    /// <summary>
    /// Runs one command on <paramref name="resource"/> (<see cref="Command"/> or <see cref="QuarantineCommand"/>);
    /// writes the JSON answer to <paramref name="output"/>.
    /// </summary>
    public static async Task<int> RunAsync(string resource, string[] args, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(resource);
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        var positional = new List<string>();
        var named = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                if (i + 1 >= args.Length)
                    return Fail(error, $"{args[i]} needs a value");
                named[args[i]] = args[++i];
            }
            else
            {
                positional.Add(args[i]);
            }
        }
        var url = named.GetValueOrDefault("--url") ?? Environment.GetEnvironmentVariable("FASTINGEST_URL") ?? "http://localhost:5000";
        var token = named.GetValueOrDefault("--token") ?? Environment.GetEnvironmentVariable("FASTINGEST_ADMIN_TOKEN");
        if (string.IsNullOrEmpty(token))
            return Fail(error, "an admin token is needed: --token or FASTINGEST_ADMIN_TOKEN");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var baseUri))
            return Fail(error, $"--url '{url}' is not an absolute URL");

        var tenant = named.GetValueOrDefault("--tenant");
        // --destination: one destination's dead letters (its name under Tenants:{i}:Destinations; "forward" for a tenant without them).
        var destination = named.GetValueOrDefault("--destination");
        if (destination is not null && resource != Command)
            return Fail(error, "--destination applies to deadletters only");
        var filters = new List<string>(2);
        if (tenant is not null)
            filters.Add("tenant=" + Uri.EscapeDataString(tenant));
        if (destination is not null)
            filters.Add("destination=" + Uri.EscapeDataString(destination));
        var query = filters.Count == 0 ? "" : "?" + string.Join('&', filters);
        HttpMethod method;
        string path;
        switch (positional.FirstOrDefault())
        {
            case "list" when positional.Count == 1:
                (method, path) = (HttpMethod.Get, $"/admin/{resource}" + query);
                break;
            case "clear" when positional.Count == 1 && resource == DamageCommand:
                (method, path) = (HttpMethod.Post, "/admin/damage/clear");
                break;
            case not "list" when resource == DamageCommand:
                return Fail(error, "damage takes list or clear");
            case "show" when positional.Count == 2 && IsId(positional[1]):
                (method, path) = (HttpMethod.Get, $"/admin/{resource}/" + positional[1]);
                break;
            case "discard" when positional.Count == 2 && IsId(positional[1]):
                (method, path) = (HttpMethod.Delete, $"/admin/{resource}/" + positional[1]);
                break;
            case "replay" when positional.Count == 1:
                if (named.TryGetValue("--id", out var id))
                {
                    if (!IsId(id) || tenant is not null || destination is not null)
                        return Fail(error, "replay takes --tenant (and --destination) or one numeric --id, not both");
                    query = "?id=" + id;
                }
                (method, path) = (HttpMethod.Post, $"/admin/{resource}/replay" + query);
                break;
            default:
                return Fail(error, "unknown or incomplete command");
        }

        using var http = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromMinutes(5) };
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        try
        {
            using var response = await http.SendAsync(request).ConfigureAwait(false);
            var body = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
            await output.WriteLineAsync(body).ConfigureAwait(false);
            return response.IsSuccessStatusCode ? 0 : 1;
        }
        catch (HttpRequestException ex)
        {
            await error.WriteLineAsync($"fastingest: cannot reach {baseUri}: {ex.Message}").ConfigureAwait(false);
            return 2;
        }
    }

    private static bool IsId(string value) => long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out _);

    private static int Fail(TextWriter error, string message)
    {
        error.WriteLine($"fastingest: {message}");
        error.WriteLine(Usage);
        return 2;
    }
}
