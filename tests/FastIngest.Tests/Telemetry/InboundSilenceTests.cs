using System.Net;
using FastIngest.Configuration;
using FastIngest.Tenancy;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Telemetry;

/// <summary>
/// The silent outage: no inbound message for longer than <c>InboundSilence</c>, inside the tenant's active hours,
/// fails <c>/readyz</c> with the reason and sets <c>fastingest_inbound_silent</c>; a message (not a status) ends it.
/// </summary>
public sealed class InboundSilenceTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ManualClock _clock = new();

    public void Dispose() => _dir.Dispose();

    // The server's own clock is the test's: silence is a matter of advancing it, not of waiting.
    private Task<IngestServer> Start(string? activeHours = null) => IngestServer.StartAsync(_dir.Path, [new TestTenant("t1")],
        new Dictionary<string, string?>
        {
            ["FastIngest:Tenants:0:InboundSilence"] = "00:00:01",
            ["FastIngest:Tenants:0:ActiveHours"] = activeHours,
        },
        time: _clock);

    private static async Task<(HttpStatusCode Status, string Body)> Ready(IngestServer server)
    {
        using var response = await server.Client.GetAsync("/readyz");
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static async Task<string> Metric(IngestServer server, string name)
        => (await server.Client.GetStringAsync("/metrics")).Split('\n').Single(l => l.StartsWith(name + "{", StringComparison.Ordinal));

    [Fact]
    public async Task No_message_for_longer_than_InboundSilence_fails_readyz_until_a_message_arrives()
    {
        await using var server = await Start();
        Assert.Equal(HttpStatusCode.OK, (await Ready(server)).Status); // silence counts from the start
        _clock.Advance(TimeSpan.FromMilliseconds(1500));

        var (status, body) = await Ready(server);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Contains("tenant t1: no inbound message for", body, StringComparison.Ordinal);
        Assert.EndsWith(" 1", await Metric(server, "fastingest_inbound_silent"), StringComparison.Ordinal);

        await server.PostAsync("t1", Payloads.Statuses(("wamid.S", "delivered", "16505551234")), "app-secret");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await Ready(server)).Status); // statuses are not inbound messages

        await server.PostAsync("t1", Payloads.Text("wamid.HELLO"), "app-secret");
        Assert.Equal(HttpStatusCode.OK, (await Ready(server)).Status);
        Assert.EndsWith(" 0", await Metric(server, "fastingest_inbound_silent"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Outside_active_hours_silence_does_not_count()
    {
        var now = _clock.GetUtcNow();
        var window = $"{now.AddHours(2):HH:mm}-{now.AddHours(3):HH:mm}";
        await using var server = await Start(window);
        _clock.Advance(TimeSpan.FromMilliseconds(1500));
        Assert.Equal(HttpStatusCode.OK, (await Ready(server)).Status);
    }

    [Theory]
    [InlineData("22:00-06:00", 23, true)]
    [InlineData("22:00-06:00", 5, true)]
    [InlineData("22:00-06:00", 12, false)]
    [InlineData("08:00-20:00", 8, true)]
    [InlineData("08:00-20:00", 20, false)]
    [InlineData(null, 3, true)]
    public void Active_hours_may_wrap_midnight(string? hours, int utcHour, bool inside)
    {
        var check = new InboundSilence(new TenantOptions { ActiveHours = hours, InboundSilence = TimeSpan.FromMinutes(1) }, 0);
        Assert.Equal(inside, check.InActiveHours(new DateTimeOffset(2026, 11, 21, utcHour, 0, 0, TimeSpan.Zero)));
    }

    [Fact]
    public void Active_hours_are_read_in_the_tenants_time_zone()
    {
        var check = new InboundSilence(new TenantOptions { ActiveHours = "08:00-20:00", TimeZone = "America/Sao_Paulo", InboundSilence = TimeSpan.FromMinutes(1) }, 0);
        Assert.False(check.InActiveHours(new DateTimeOffset(2026, 11, 21, 9, 0, 0, TimeSpan.Zero)));  // 06:00 there
        Assert.True(check.InActiveHours(new DateTimeOffset(2026, 11, 21, 12, 0, 0, TimeSpan.Zero)));  // 09:00 there
    }
}
