using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Destinations;

/// <summary>
/// What the destination tests share: the webhook payloads to send (the shared corpus's 118 real payloads when it is
/// there, else the project's own fixtures), a tenant configured with <c>Destinations</c>, and the reference every
/// destination is checked against: a Webhook destination to a real HTTP bot, which receives each event once with its
/// <c>X-FastIngest-Event-Id</c> and the Meta-shaped payload.
/// </summary>
internal static class DestinationTest
{
    public const string AppSecret = "app-secret";

    /// <summary>Every payload file to send, in a fixed order.</summary>
    public static IReadOnlyList<string> PayloadFiles()
    {
        var dir = RepoPaths.Corpus ?? RepoPaths.Fixtures;
        return [.. Directory.GetFiles(dir, "*.json").Order(StringComparer.Ordinal)];
    }

    /// <summary>
    /// Settings for tenant <paramref name="tenant"/> (index <paramref name="index"/>) with the given destinations, each a
    /// dictionary of its keys (<c>Name</c>, <c>Kind</c>, ...).
    /// </summary>
    public static Dictionary<string, string?> Tenant(int index, string tenant, params Dictionary<string, string?>[] destinations)
    {
        var p = $"FastIngest:Tenants:{index}:";
        var settings = new Dictionary<string, string?>
        {
            [p + "Id"] = tenant,
            [p + "AppSecret"] = AppSecret,
            [p + "VerifyToken"] = "verify-me",
            [p + "Forward:InitialBackoff"] = "00:00:00.05",
            [p + "Forward:MaxBackoff"] = "00:00:00.2",
            [p + "Forward:Timeout"] = "00:00:10",
        };
        for (var j = 0; j < destinations.Length; j++)
        {
            foreach (var kv in destinations[j])
                settings[$"{p}Destinations:{j}:{kv.Key}"] = kv.Value;
        }
        return settings;
    }

    /// <summary>A Webhook destination named <paramref name="name"/> to <paramref name="url"/>.</summary>
    public static Dictionary<string, string?> Webhook(string name, string url) => new() { ["Name"] = name, ["Kind"] = "Webhook", ["Url"] = url, ["Secret"] = "forward-secret" };

    /// <summary>Starts the server with <paramref name="settings"/> (no tenants of <see cref="IngestServer"/>'s own).</summary>
    public static Task<IngestServer> StartAsync(string dataDir, Dictionary<string, string?> settings) => IngestServer.StartAsync(dataDir, [], settings);

    /// <summary>POSTs every payload file to <c>/webhooks/{tenant}</c>, signed over the exact bytes; all must get 200.</summary>
    public static async Task SendAllAsync(IngestServer server, string tenant)
    {
        foreach (var file in PayloadFiles())
        {
            using var response = await server.PostAsync(tenant, await File.ReadAllBytesAsync(file), AppSecret);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{Path.GetFileName(file)}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
    }

    /// <summary>New events the tenant recorded (<c>fastingest_events_accepted_total</c>).</summary>
    public static async Task<int> AcceptedAsync(IngestServer server, string tenant)
    {
        var prefix = $"fastingest_events_accepted_total{{tenant=\"{tenant}\"}} ";
        var line = (await server.Client.GetStringAsync("/metrics")).Split('\n').Single(l => l.StartsWith(prefix, StringComparison.Ordinal));
        return int.Parse(line[prefix.Length..], CultureInfo.InvariantCulture);
    }

    /// <summary>Events destination <paramref name="destination"/> of <paramref name="tenant"/> finished as delivered (<c>fastingest_events_forwarded_total</c>).</summary>
    public static async Task<long> ForwardedAsync(IngestServer server, string tenant, string destination)
    {
        var prefix = $"fastingest_events_forwarded_total{{tenant=\"{tenant}\",destination=\"{destination}\"}} ";
        var line = (await server.Client.GetStringAsync("/metrics")).Split('\n').SingleOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line[prefix.Length..], CultureInfo.InvariantCulture);
    }

    /// <summary>What the server says of one destination: its metric lines and its open dead letters (for a failing wait).</summary>
    public static async Task<string> DescribeAsync(IngestServer server, string tenant, string destination)
    {
        var metrics = (await server.Client.GetStringAsync("/metrics")).Split('\n').Where(l => l.Contains($"destination=\"{destination}\"", StringComparison.Ordinal));
        var letters = server.Engine.DeadLetters.List(tenant, destination).Select(d => $"dead letter {d.EventId}: {d.Reason}");
        return string.Join('\n', ["", .. metrics, .. letters.Take(10), .. server.Engine.NotReadyReasons()]);
    }

    /// <summary>
    /// Waits until the reference bot has every accepted event, each exactly once, and returns them: event id to
    /// payload (as JSON).
    /// </summary>
    public static async Task<Dictionary<string, JsonNode>> ReferenceAsync(IngestServer server, BotServer bot, string tenant)
    {
        var accepted = await AcceptedAsync(server, tenant);
        Assert.True(accepted > 0);
        var delivered = await bot.WaitForDistinctAsync(accepted, TimeSpan.FromSeconds(60));
        var byId = new Dictionary<string, JsonNode>(StringComparer.Ordinal);
        foreach (var r in bot.Delivered)
            Assert.True(byId.TryAdd(r.EventId!, JsonNode.Parse(r.Body)!), $"the bot got {r.EventId} twice");
        Assert.Equal(accepted, byId.Count);
        return byId;
    }

    /// <summary>Asserts that <paramref name="got"/> (id to JSON text) holds every reference event exactly once, with the same payload.</summary>
    public static void AssertSameEvents(Dictionary<string, JsonNode> reference, IEnumerable<(string EventId, string Json)> got, string where)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (id, json) in got)
        {
            Assert.True(seen.Add(id), $"{where}: {id} arrived twice");
            Assert.True(reference.TryGetValue(id, out var expected), $"{where}: {id} is not an event the bot got");
            Assert.True(JsonNode.DeepEquals(expected, JsonNode.Parse(json)), $"{where}: {id} carries\n{json}\nnot\n{expected!.ToJsonString()}");
        }
        Assert.Equal(reference.Count, seen.Count);
    }
}
