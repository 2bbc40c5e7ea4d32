using System.Net;
using System.Text.Json;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Delivery;

/// <summary>
/// Status webhooks out of order through the running server: the delivery state only moves forward, <c>GET
/// /v1/messages/{wamid}</c> shows it and its history, stale statuses are forwarded marked (or dropped, per tenant),
/// and all of it survives a restart without a status being applied or forwarded twice.
/// </summary>
public sealed class MessageStateApiTests : IAsyncLifetime
{
    private const string Token = "admin-token-0123456789";
    private readonly TempDir _dir = new();
    private BotServer _bot = null!;

    public async Task InitializeAsync() => _bot = await BotServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _bot.DisposeAsync();
        _dir.Dispose();
    }

    private Task<IngestServer> Start() => IngestServer.StartAsync(_dir.Path,
        [new TestTenant("fwd", "secret-fwd", ForwardUrl: _bot.Url), new TestTenant("drop", "secret-drop", ForwardUrl: _bot.Url)],
        new Dictionary<string, string?>
        {
            ["FastIngest:AdminToken"] = Token,
            ["FastIngest:Tenants:1:Forward:StaleStatuses"] = "Drop",
        });

    private static Task<(HttpStatusCode Status, JsonElement Body)> Get(IngestServer server, string path)
        => server.AdminAsync(HttpMethod.Get, path, Token);

    private static async Task Send(IngestServer server, string tenant, string secret, string wamid, string status, long ts)
    {
        using var response = await server.PostAsync(tenant, Payloads.Status(wamid, status, ts), secret);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private static string History(JsonElement body)
        => string.Join(",", body.GetProperty("history").EnumerateArray().Select(h => h.GetProperty("status").GetString() + (h.GetProperty("stale").GetBoolean() ? "(stale)" : "")));

    [Fact]
    public async Task Out_of_order_statuses_never_move_a_message_back_and_stale_ones_are_marked_or_dropped()
    {
        await using (var server = await Start())
        {
            foreach (var (tenant, secret) in new[] { ("fwd", "secret-fwd"), ("drop", "secret-drop") })
            {
                var wamid = $"wamid.OUT-{tenant}";
                await Send(server, tenant, secret, wamid, "read", 1749416402);
                await Send(server, tenant, secret, wamid, "delivered", 1749416401);
                await Send(server, tenant, secret, wamid, "sent", 1749416400);
                await Send(server, tenant, secret, wamid, "read", 1749416402); // Meta's retry: deduped
            }

            // fwd gets all three (two marked stale); drop gets only the read.
            await _bot.WaitForDeliveredAsync(4);
            await Task.Delay(300);
            var delivered = _bot.Delivered;
            Assert.Equal(4, delivered.Count);
            var fwd = delivered.Where(r => r.EventId!.Contains("OUT-fwd", StringComparison.Ordinal)).ToList();
            Assert.Equal(3, fwd.Count);
            Assert.Equal(2, fwd.Count(r => r.Stale));
            Assert.DoesNotContain(delivered, r => r.Stale && r.EventId!.Contains("read", StringComparison.Ordinal));
            Assert.Single(delivered, r => r.EventId!.Contains("OUT-drop", StringComparison.Ordinal));

            foreach (var tenant in new[] { "fwd", "drop" })
            {
                var (status, body) = await Get(server, $"/v1/messages/wamid.OUT-{tenant}");
                Assert.Equal(HttpStatusCode.OK, status);
                Assert.Equal(tenant, body.GetProperty("tenant").GetString());
                Assert.Equal("read", body.GetProperty("status").GetString());
                Assert.Equal(1749416402, body.GetProperty("timestamp").GetInt64());
                Assert.Equal("read,delivered(stale),sent(stale)", History(body));
            }
            Assert.Equal(HttpStatusCode.NotFound, (await Get(server, "/v1/messages/wamid.NEVER")).Status);
            Assert.Equal(HttpStatusCode.NotFound, (await Get(server, "/v1/messages/wamid.OUT-fwd?tenant=drop")).Status);

            // failed is terminal. (Each (wamid, status) is one event to Meta, so a repeat of one is deduped at ingest.)
            await Send(server, "fwd", "secret-fwd", "wamid.TERM", "sent", 1749416500);
            await Send(server, "fwd", "secret-fwd", "wamid.TERM", "failed", 1749416501);
            await Send(server, "fwd", "secret-fwd", "wamid.TERM", "delivered", 1749416502);
            await _bot.WaitForDeliveredAsync(7);
            Assert.Equal("failed", (await Get(server, "/v1/messages/wamid.TERM")).Body.GetProperty("status").GetString());
            var marked = _bot.Delivered.Where(r => r.EventId!.Contains("TERM", StringComparison.Ordinal)).ToList();
            Assert.Equal(3, marked.Count);
            Assert.Single(marked, r => r.Stale);
        }

        var before = _bot.Requests.Count;
        await using (var server = await Start())
        {
            var (status, body) = await Get(server, "/v1/messages/wamid.OUT-fwd");
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal("read", body.GetProperty("status").GetString());
            Assert.Equal("read,delivered(stale),sent(stale)", History(body));
            Assert.Equal(3, body.GetProperty("changes").GetInt32()); // re-read from the log, not applied twice
            var term = (await Get(server, "/v1/messages/wamid.TERM")).Body;
            Assert.Equal("failed", term.GetProperty("status").GetString());
            Assert.Equal("sent,failed,delivered(stale)", History(term));
            await Task.Delay(500);
            Assert.Equal(before, _bot.Requests.Count); // nothing forwarded again
        }
    }

    [Fact]
    public async Task The_API_needs_the_admin_token()
    {
        await using var server = await Start();
        using var response = await server.Client.GetAsync("/v1/messages/wamid.X");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }
}
