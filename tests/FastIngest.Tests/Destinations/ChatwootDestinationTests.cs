using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Destinations;

/// <summary>
/// The Chatwoot destination against a real HTTP server that checks each request as Chatwoot's WhatsApp Cloud channel
/// reads it: the route <c>POST /webhooks/whatsapp/{phone_number}</c> (Chatwoot's <c>config/routes.rb</c>,
/// <c>Webhooks::WhatsappController#process_payload</c>) with the channel's number as <c>Channel::Whatsapp</c> stores it
/// (<c>+</c> and digits), <c>X-Hub-Signature-256</c> under the installation's <c>WHATSAPP_APP_SECRET</c> over the raw
/// body, and a body whose <c>entry[0].changes[0].value</c> holds <c>messages</c> or <c>statuses</c> and the
/// <c>metadata.phone_number_id</c> the job matches the channel by (<c>Webhooks::WhatsappEventsJob</c>).
/// </summary>
public sealed class ChatwootDestinationTests
{
    private const string ChatwootSecret = "chatwoot-whatsapp-app-secret";

    [Fact]
    public async Task Chatwoot_gets_every_message_and_status_on_its_route_signed_and_shaped_as_its_controller_reads_them()
    {
        await using var bot = await BotServer.StartAsync();
        await using var chatwoot = await BotServer.StartAsync();
        using var dir = new TempDir();
        var settings = DestinationTest.Tenant(0, "t1",
            DestinationTest.Webhook("bot", bot.Url),
            new() { ["Name"] = "chatwoot", ["Kind"] = "Chatwoot", ["Url"] = chatwoot.Url, ["Secret"] = ChatwootSecret });
        await using var server = await DestinationTest.StartAsync(dir.Path, settings);

        await DestinationTest.SendAllAsync(server, "t1");
        var reference = await DestinationTest.ReferenceAsync(server, bot, "t1");
        // Chatwoot's default filter: messages and statuses only (it has no use for template or account changes).
        var taken = reference.Where(kv => Value(kv.Value) is { } v && (v["messages"] is not null || v["statuses"] is not null)).ToList();
        Assert.True(taken.Count < reference.Count, "the payloads hold changes other than messages and statuses: the filter must be seen to drop them");
        // Chatwoot finds the channel by the number in the route: an event without a metadata.display_phone_number
        // that holds digits (a documentation sample's "PHONE_NUMBER"; Meta always sends the number) cannot be routed,
        // and is dead-lettered at once, not retried.
        var expected = taken.Where(kv => Value(kv.Value)!["metadata"]?["display_phone_number"] is JsonValue n && n.GetValue<string>().Any(char.IsAsciiDigit)).ToDictionary(kv => kv.Key, kv => kv.Value);
        var unroutable = taken.Where(kv => !expected.ContainsKey(kv.Key)).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
        Assert.NotEmpty(expected);
        await Eventually.TrueAsync(async () => await DestinationTest.ForwardedAsync(server, "t1", "chatwoot") == expected.Count
            && server.Engine.DeadLetters.List("t1", "chatwoot").Count == unroutable.Count, seconds: 60,
            explain: async () => $"expected {expected.Count} delivered and {unroutable.Count} dead letters: {string.Join(", ", unroutable)}; not delivered: {string.Join(", ", expected.Keys.Where(k => !chatwoot.Delivered.Any(r => r.EventId == k)))}; delivered unexpectedly: {string.Join(", ", chatwoot.Delivered.Where(r => !expected.ContainsKey(r.EventId!)).Select(r => r.EventId))}" + await DestinationTest.DescribeAsync(server, "t1", "chatwoot"));
        Assert.Equal(unroutable, server.Engine.DeadLetters.List("t1", "chatwoot").Select(d => d.EventId).Order(StringComparer.Ordinal));
        Assert.All(server.Engine.DeadLetters.List("t1", "chatwoot"), d => Assert.Contains("display_phone_number", d.Reason, StringComparison.Ordinal));

        var got = chatwoot.Delivered.Where(r => r.EventId is not null && expected.ContainsKey(r.EventId)).ToList();
        foreach (var request in chatwoot.Delivered)
        {
            Assert.True(expected.ContainsKey(request.EventId!), $"{request.EventId} is not a message or status but reached Chatwoot");
            var body = JsonNode.Parse(request.Body)!;
            var value = Value(body)!;
            var display = value["metadata"]!["display_phone_number"]!.GetValue<string>();
            Assert.Equal("/bot/webhooks/whatsapp/+" + new string([.. display.Where(char.IsAsciiDigit)]), request.Path);
            Assert.False(string.IsNullOrEmpty(value["metadata"]!["phone_number_id"]?.GetValue<string>()));
            Assert.True(value["messages"] is JsonArray { Count: 1 } || value["statuses"] is JsonArray { Count: 1 });
            Assert.Equal("sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(ChatwootSecret), request.Body)), request.Signature);
        }
        DestinationTest.AssertSameEvents(expected, got.Select(r => (r.EventId!, Encoding.UTF8.GetString(r.Body))), "Chatwoot");
    }

    [Fact]
    public async Task Chatwoots_422_for_an_inactive_number_dead_letters_the_event_for_chatwoot_alone()
    {
        await using var bot = await BotServer.StartAsync();
        await using var chatwoot = await BotServer.StartAsync();
        using var dir = new TempDir();
        var settings = DestinationTest.Tenant(0, "t1",
            DestinationTest.Webhook("bot", bot.Url),
            new() { ["Name"] = "chatwoot", ["Kind"] = "Chatwoot", ["Url"] = chatwoot.Url, ["Secret"] = ChatwootSecret, ["MaxAttempts"] = "50" });
        await using var server = await DestinationTest.StartAsync(dir.Path, settings);
        var refused = "wamid.INACTIVE";
        chatwoot.Respond = id => id is not null && id.EndsWith(refused, StringComparison.Ordinal) ? 422 : 200;

        (await server.PostAsync("t1", Payloads.Text(refused), DestinationTest.AppSecret)).EnsureSuccessStatusCode();
        (await server.PostAsync("t1", Payloads.Text("wamid.SENTINEL"), DestinationTest.AppSecret)).EnsureSuccessStatusCode();
        await bot.WaitForDeliveredAsync(2);
        await Eventually.TrueAsync(() => Task.FromResult(server.Engine.DeadLetters.List("t1", "chatwoot").Count == 1));
        await Eventually.TrueAsync(() => Task.FromResult(chatwoot.Delivered.Any(r => r.EventId!.EndsWith("wamid.SENTINEL", StringComparison.Ordinal))));

        var letter = Assert.Single(server.Engine.DeadLetters.List("t1"));
        Assert.Equal("chatwoot", letter.Destination);
        Assert.Equal(1, letter.Attempts); // permanent: not retried
        Assert.Single(chatwoot.Requests, r => r.AnsweredStatus == 422);
        Assert.Equal(2, bot.Delivered.Count);
    }

    private static JsonNode? Value(JsonNode payload) => payload["entry"]?[0]?["changes"]?[0]?["value"];
}
