using System.Net;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Ingest;

/// <summary>
/// Rotating the Meta app secret without a window of 401s: with <c>AppSecret</c> (old) and <c>AppSecrets:0</c> (new),
/// webhooks signed under either are accepted, one under neither is refused, and
/// <c>fastingest_signature_key_used_total{tenant,key_index}</c> tells which secret each matched.
/// </summary>
public sealed class SecretRotationTests
{
    private const string Old = "old-app-secret";
    private const string New = "new-app-secret";

    [Fact]
    public async Task During_a_rotation_webhooks_under_the_old_and_the_new_secret_are_all_accepted_and_counted_by_key()
    {
        using var dir = new TempDir();
        await using var server = await IngestServer.StartAsync(dir.Path, [new TestTenant("t1", AppSecret: Old)],
            new Dictionary<string, string?> { ["FastIngest:Tenants:0:AppSecrets:0"] = New });

        // Meta switches secrets while traffic flows: concurrent senders, every other webhook under the new secret.
        var statuses = await Task.WhenAll(Enumerable.Range(0, 8).Select(sender => Task.Run(async () =>
        {
            var got = new List<HttpStatusCode>();
            for (var i = 0; i < 25; i++)
            {
                var n = sender * 25 + i;
                using var response = await server.PostAsync("t1", Payloads.Text($"wamid.ROT{n:D3}"), n % 2 == 0 ? Old : New);
                got.Add(response.StatusCode);
            }
            return got;
        })));
        Assert.All(statuses.SelectMany(s => s), s => Assert.Equal(HttpStatusCode.OK, s));

        using (var forged = await server.PostAsync("t1", Payloads.Text("wamid.FORGED"), "some-other-secret"))
            Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);

        var metrics = await server.Client.GetStringAsync("/metrics");
        Assert.Equal(100d, MetricsText.Value(metrics, "fastingest_signature_key_used_total", "tenant=\"t1\",key_index=\"0\""));
        Assert.Equal(100d, MetricsText.Value(metrics, "fastingest_signature_key_used_total", "tenant=\"t1\",key_index=\"1\""));
        Assert.Equal(1d, MetricsText.Value(metrics, "fastingest_signature_failures_total", "tenant=\"t1\""));
        Assert.Equal(200d, MetricsText.Value(metrics, "fastingest_events_accepted_total", "tenant=\"t1\""));
    }

}
