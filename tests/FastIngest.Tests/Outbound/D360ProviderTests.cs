using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using FastIngest.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace FastIngest.Tests.Outbound;

/// <summary>
/// A tenant whose number is hosted at 360dialog (<c>Outbound:Provider=360dialog</c>): the bot calls FastIngest's
/// Graph-compatible route exactly as for Meta, and FastIngest sends to a real HTTP server playing 360dialog:
/// <c>POST {BaseUrl}/messages</c> (no version or phone number id in the path), <c>D360-API-KEY</c>, the bot's body as it
/// was, and reads 360dialog's answers, which have Meta's shapes (360dialog docs, "The Basics").
/// </summary>
public sealed class D360ProviderTests
{
    private const string ApiKey = "d360-api-key-for-the-number";
    private const string BotToken = "bot-token-0123456789";
    private const string Undeliverable = "15550000002";

    private sealed record D360Request(string Path, string? ApiKey, string? Authorization, string Body);

    [Fact]
    public async Task Sends_of_a_360dialog_number_go_to_its_messages_route_with_its_api_key_and_answers_are_read_as_Metas()
    {
        var received = new ConcurrentQueue<D360Request>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        await using var d360 = builder.Build();
        var wamids = 0;
        d360.Run(async context =>
        {
            using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
            var body = await reader.ReadToEndAsync();
            received.Enqueue(new D360Request(context.Request.Path, context.Request.Headers["D360-API-KEY"].ToString(), context.Request.Headers.Authorization.ToString(), body));
            context.Response.ContentType = "application/json";
            if (context.Request.Path != "/messages" || context.Request.Headers["D360-API-KEY"] != ApiKey)
            {
                context.Response.StatusCode = 401;
                await context.Response.WriteAsync("""{"error":{"message":"Invalid API key","type":"OAuthException","code":190}}""");
                return;
            }
            var to = JsonDocument.Parse(body).RootElement.GetProperty("to").GetString()!;
            if (to == Undeliverable)
            {
                context.Response.StatusCode = 400;
                await context.Response.WriteAsync("""{"error":{"message":"Message Undeliverable.","type":"OAuthException","code":131026,"error_data":{"messaging_product":"whatsapp","details":"Message Undeliverable."}}}""");
                return;
            }
            var wamid = $"wamid.D360{Interlocked.Increment(ref wamids)}";
            await context.Response.WriteAsync($$$"""{"messaging_product":"whatsapp","contacts":[{"input":"{{{to}}}","wa_id":"{{{to}}}"}],"messages":[{"id":"{{{wamid}}}"}]}""");
        });
        await d360.StartAsync();

        using var dir = new TempDir();
        await using var server = await IngestServer.StartAsync(dir.Path, [new TestTenant("t1")], new Dictionary<string, string?>
        {
            ["FastIngest:Outbound:GraphUrl"] = "http://127.0.0.1:9", // Meta's: must not be used
            ["FastIngest:Outbound:InitialBackoff"] = "00:00:00.05",
            ["FastIngest:Tenants:0:Outbound:PhoneNumberIds:0"] = Payloads.PhoneNumberId,
            ["FastIngest:Tenants:0:Outbound:Provider"] = "360dialog",
            ["FastIngest:Tenants:0:Outbound:BaseUrl"] = d360.Urls.First(),
            ["FastIngest:Tenants:0:Outbound:ApiKey"] = ApiKey,
            ["FastIngest:Tenants:0:Outbound:BotToken"] = BotToken,
        });

        var text = OutboundTests.Template("15550000001"); // a template: outside the 24-hour window, as for Meta
        var (status, answer) = await SendAsync(server, text);
        Assert.True(status == HttpStatusCode.OK, $"{(int)status} {answer}");
        Assert.Equal("wamid.D3601", answer.GetProperty("messages")[0].GetProperty("id").GetString());
        var sent = Assert.Single(received);
        Assert.Equal("/messages", sent.Path);
        Assert.Equal(ApiKey, sent.ApiKey);
        Assert.Equal("", sent.Authorization); // the bot's token goes nowhere
        Assert.Equal(Encoding.UTF8.GetString(text), sent.Body);

        // 360dialog's error answers have Meta's shape, and are classified the same way: 131026 fails the send at once.
        (status, answer) = await SendAsync(server, OutboundTests.Template(Undeliverable));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(131026, answer.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Equal(2, received.Count);
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(IngestServer server, byte[] body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/graph/v23.0/{Payloads.PhoneNumberId}/messages") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", BotToken);
        request.Headers.Add("Prefer", "wait=10");
        using var response = await server.Client.SendAsync(request);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }
}
