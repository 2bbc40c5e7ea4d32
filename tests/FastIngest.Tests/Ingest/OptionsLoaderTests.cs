using FastIngest.Configuration;
using Microsoft.Extensions.Configuration;

namespace FastIngest.Tests.Ingest;

public sealed class OptionsLoaderTests
{
    private static Dictionary<string, string?> Good() => new()
    {
        ["FastIngest:Tenants:0:Id"] = "acme",
        ["FastIngest:Tenants:0:AppSecret"] = "s",
        ["FastIngest:Tenants:0:VerifyToken"] = "v",
    };

    private static FastIngestOptions Load(Dictionary<string, string?> values)
        => OptionsLoader.Load(new ConfigurationBuilder().AddInMemoryCollection(values).Build());

    [Fact]
    public void Defaults_are_the_documented_ones()
    {
        var o = Load(Good());
        Assert.Equal("./data", o.DataDir);
        Assert.Equal(4 * 1024 * 1024, o.MaxBodyBytes);
        Assert.Equal(TimeSpan.FromDays(7), o.DedupeTtl);
        Assert.Null(o.Tenants[0].Forward.Url);
    }

    [Theory]
    [InlineData("FastIngest:MaxInFlightBodyBytes", "1000", "FastIngest:MaxInFlightBodyBytes")]
    [InlineData("FastIngest:MaxConnections", "-1", "FastIngest:MaxConnections")]
    [InlineData("FastIngest:MaxEventsPerPayload", "0", "FastIngest:MaxEventsPerPayload")]
    [InlineData("FastIngest:Tenants:0:AppSecret", "", "FastIngest:Tenants:0:AppSecret")]
    [InlineData("FastIngest:Tenants:0:AppSecrets:0", "", "FastIngest:Tenants:0:AppSecrets:0")]
    [InlineData("FastIngest:Tenants:0:Outbound:Provider", "Twilio", "FastIngest:Tenants:0:Outbound:Provider")]
    [InlineData("FastIngest:Tenants:0:Outbound:Provider", "360dialog", "FastIngest:Tenants:0:Outbound:ApiKey")]
    [InlineData("FastIngest:Tenants:0:Inbound:Auth", "Sometimes", "FastIngest:Tenants:0:Inbound:Auth")]
    [InlineData("FastIngest:Tenants:0:Inbound:Auth", "D360Signature", "FastIngest:Tenants:0:Inbound:Auth")]
    [InlineData("FastIngest:Tenants:0:Inbound:Auth", "Header", "FastIngest:Tenants:0:Inbound:HeaderName")]
    [InlineData("FastIngest:Tenants:0:VerifyToken", "", "FastIngest:Tenants:0:VerifyToken")]
    [InlineData("FastIngest:Tenants:0:Id", "has/slash", "FastIngest:Tenants:0:Id")]
    [InlineData("FastIngest:Tenants:0:Forward:Url", "ftp://x", "FastIngest:Tenants:0:Forward:Url")]
    [InlineData("FastIngest:Tenants:0:Forward:Url", "http://bot.local/hook", "FastIngest:Tenants:0:Forward:Secret")]
    [InlineData("FastIngest:Tenants:0:Forward:Concurrency", "0", "FastIngest:Tenants:0:Forward:Concurrency")]
    [InlineData("FastIngest:MaxBodyBytes", "10", "FastIngest:MaxBodyBytes")]
    [InlineData("FastIngest:Tenants:0:Forward:MaxAttempts", "-1", "FastIngest:Tenants:0:Forward:MaxAttempts")]
    [InlineData("FastIngest:Tenants:0:Forward:MaxAge", "00:00:00", "FastIngest:Tenants:0:Forward:MaxAge")]
    [InlineData("FastIngest:AdminToken", "short", "FastIngest:AdminToken")]
    [InlineData("FastIngest:AdminTokens:0", "short", "FastIngest:AdminTokens:0")]
    [InlineData("FastIngest:DedupeTtl", "-1.00:00:00", "FastIngest:DedupeTtl")]
    [InlineData("FastIngest:DedupeTtl", "seven days", "FastIngest:DedupeTtl")]
    [InlineData("FastIngest:Storage:DedupeIndexBytes", "1000000", "FastIngest:Storage:DedupeIndexBytes")]
    [InlineData("FastIngest:Storage:StateIndexBytes", "1000000", "FastIngest:Storage:StateIndexBytes")]
    [InlineData("FastIngest:DeliveryStateTtl", "00:00:00", "FastIngest:DeliveryStateTtl")]
    [InlineData("FastIngest:ShutdownTimeout", "00:00:00", "FastIngest:ShutdownTimeout")]
    [InlineData("FastIngest:Tenants:0:Forward:BreakerFailures", "-1", "FastIngest:Tenants:0:Forward:BreakerFailures")]
    [InlineData("FastIngest:Tenants:0:Forward:BreakDuration", "00:00:00", "FastIngest:Tenants:0:Forward:BreakDuration")]
    [InlineData("FastIngest:Tenants:0:Forward:StaleStatuses", "Sometimes", "FastIngest:Tenants:0:Forward:StaleStatuses")]
    [InlineData("FastIngest:Tenants:0:ActiveHours", "8-20", "FastIngest:Tenants:0:ActiveHours")]
    [InlineData("FastIngest:Tenants:0:TimeZone", "Mars/Olympus_Mons", "FastIngest:Tenants:0:TimeZone")]
    [InlineData("FastIngest:Tenants:0:InboundSilence", "-00:01:00", "FastIngest:Tenants:0:InboundSilence")]
    [InlineData("FastIngest:Outbound:GraphUrl", "graph.facebook.com", "FastIngest:Outbound:GraphUrl")]
    [InlineData("FastIngest:Outbound:GraphVersion", "23.0", "FastIngest:Outbound:GraphVersion")]
    [InlineData("FastIngest:Outbound:MaxAttempts", "0", "FastIngest:Outbound:MaxAttempts")]
    [InlineData("FastIngest:Outbound:Retention", "01:00:00", "FastIngest:Outbound:Retention")]
    [InlineData("FastIngest:Tenants:0:Outbound:PhoneNumberIds:0", "+1 555", "FastIngest:Tenants:0:Outbound:PhoneNumberIds:0")]
    [InlineData("FastIngest:Tenants:0:Outbound:AccessToken", "EAAG-token", "FastIngest:Tenants:0:Outbound:BotToken")]
    // A tenant that sends without a credential of its bot's: anyone reaching the port could queue sends.
    [InlineData("FastIngest:Tenants:0:Outbound:PhoneNumberIds:0", "100000000000001", "FastIngest:Tenants:0:Outbound:BotToken")]
    [InlineData("FastIngest:Tenants:0:Outbound:BotTokens:0", "too-short", "FastIngest:Tenants:0:Outbound:BotTokens:0")]
    [InlineData("FastIngest:Tenants:0:Outbound:PhoneNumberRate", "0", "FastIngest:Tenants:0:Outbound:PhoneNumberRate")]
    [InlineData("FastIngest:Tenants:0:Outbound:AccessTokens:0", "EAAG-token", "FastIngest:Tenants:0:Outbound:BotToken")]
    [InlineData("FastIngest:Tenants:0:Forward:Secrets:0", "", "FastIngest:Tenants:0:Forward:Secrets:0")]
    [InlineData("FastIngest:Tenants:0:Forward:SecretKeyId", "key id with spaces", "FastIngest:Tenants:0:Forward:SecretKeyId")]
    [InlineData("FastIngest:Tenants:0:Outbound:PairBurst", "0", "FastIngest:Tenants:0:Outbound:PairBurst")]
    [InlineData("FastIngest:Tenants:0:Outbound:HoldingMessage", "Back soon", "FastIngest:Tenants:0:Outbound:HoldingMessage")]
    [InlineData("FastIngest:Storage:WindowIndexBytes", "5000", "FastIngest:Storage:WindowIndexBytes")]
    [InlineData("FastIngest:Storage:SendIndexBytes", "5000", "FastIngest:Storage:SendIndexBytes")]
    [InlineData("FastIngest:Storage:SendMemoryBytes", "1000", "FastIngest:Storage:SendMemoryBytes")]
    // A quota below what two checkpoints and the log's reserve take could never be met (503 for good).
    [InlineData("FastIngest:Storage:MaxDiskBytes", "10000000", "FastIngest:Storage:MaxDiskBytes")]
    // Values that do not convert: the binder's error names no key unless it is looked for in the inner exception.
    [InlineData("FastIngest:Tenants:0:Forward:Timeout", "ten", "FastIngest:Tenants:0:Forward:Timeout")]
    [InlineData("FastIngest:Tenants:0:Forward:Concurrency", "abc", "FastIngest:Tenants:0:Forward:Concurrency")]
    [InlineData("FastIngest:Outbound:Timeout", "soon", "FastIngest:Outbound:Timeout")]
    [InlineData("FastIngest:Storage:LogMemoryBytes", "lots", "FastIngest:Storage:LogMemoryBytes")]
    [InlineData("FastIngest:Tenants:0:Outbound:PhoneNumberRate", "fast", "FastIngest:Tenants:0:Outbound:PhoneNumberRate")]
    [InlineData("FastIngest:Storage:StallThreshold", "00:20:00", "FastIngest:Storage:StallThreshold")]
    // Durations past what a timer takes (~49.7 days) were accepted, then killed the dispatcher, sends or checkpoints.
    [InlineData("FastIngest:Tenants:0:Forward:Timeout", "60.00:00:00", "FastIngest:Tenants:0:Forward:Timeout")]
    [InlineData("FastIngest:Tenants:0:Forward:InitialBackoff", "60.00:00:00", "FastIngest:Tenants:0:Forward:InitialBackoff")]
    [InlineData("FastIngest:Tenants:0:Forward:MaxBackoff", "60.00:00:00", "FastIngest:Tenants:0:Forward:MaxBackoff")]
    [InlineData("FastIngest:Tenants:0:Forward:BreakDuration", "60.00:00:00", "FastIngest:Tenants:0:Forward:BreakDuration")]
    [InlineData("FastIngest:Tenants:0:Forward:MaxBacklogAge", "60.00:00:00", "FastIngest:Tenants:0:Forward:MaxBacklogAge")]
    [InlineData("FastIngest:Tenants:0:Forward:MaxAge", "60.00:00:00", "FastIngest:Tenants:0:Forward:MaxAge")]
    [InlineData("FastIngest:Tenants:0:InboundSilence", "60.00:00:00", "FastIngest:Tenants:0:InboundSilence")]
    [InlineData("FastIngest:CheckpointInterval", "60.00:00:00", "FastIngest:CheckpointInterval")]
    [InlineData("FastIngest:DedupeTtl", "400.00:00:00", "FastIngest:DedupeTtl")]
    [InlineData("FastIngest:DeliveryStateTtl", "400.00:00:00", "FastIngest:DeliveryStateTtl")]
    [InlineData("FastIngest:Outbound:Timeout", "60.00:00:00", "FastIngest:Outbound:Timeout")]
    [InlineData("FastIngest:Outbound:InitialBackoff", "60.00:00:00", "FastIngest:Outbound:InitialBackoff")]
    [InlineData("FastIngest:Outbound:MaxBackoff", "60.00:00:00", "FastIngest:Outbound:MaxBackoff")]
    [InlineData("FastIngest:Outbound:MaxAge", "60.00:00:00", "FastIngest:Outbound:MaxAge")]
    [InlineData("FastIngest:Outbound:Retention", "400.00:00:00", "FastIngest:Outbound:Retention")]
    [InlineData("FastIngest:Outbound:RateRecoveryInterval", "60.00:00:00", "FastIngest:Outbound:RateRecoveryInterval")]
    [InlineData("FastIngest:Outbound:PausedRetryInterval", "60.00:00:00", "FastIngest:Outbound:PausedRetryInterval")]
    [InlineData("FastIngest:Outbound:MaxWait", "60.00:00:00", "FastIngest:Outbound:MaxWait")]
    [InlineData("FastIngest:Tenants:0:Outbound:PairInterval", "60.00:00:00", "FastIngest:Tenants:0:Outbound:PairInterval")]
    [InlineData("FastIngest:Tenants:0:Outbound:HoldingAfter", "60.00:00:00", "FastIngest:Tenants:0:Outbound:HoldingAfter")]
    [InlineData("FastIngest:Tenants:0:Outbound:DefaultWait", "00:01:00", "FastIngest:Tenants:0:Outbound:DefaultWait")] // over Outbound:MaxWait (30 s)
    public void A_bad_setting_fails_with_one_line_naming_its_key(string key, string value, string named)
    {
        var values = Good();
        values[key] = value;
        var ex = Assert.Throws<ConfigurationException>(() => Load(values));
        Assert.True(ex.Message.StartsWith(named, StringComparison.Ordinal), ex.Message + " | " + ex.InnerException?.Message);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void More_than_eight_values_of_one_secret_fail_naming_the_first_too_many()
    {
        var values = Good();
        for (var i = 0; i < 8; i++)
            values[$"FastIngest:Tenants:0:AppSecrets:{i}"] = $"secret-{i}";
        var ex = Assert.Throws<ConfigurationException>(() => Load(values));
        Assert.StartsWith("FastIngest:Tenants:0:AppSecrets:7", ex.Message, StringComparison.Ordinal); // AppSecret is the first of 8
        values.Remove("FastIngest:Tenants:0:AppSecrets:7");
        Assert.Equal(7, Load(values).Tenants[0].AppSecrets.Count);
    }

    [Fact]
    public void No_tenants_and_duplicate_tenants_and_unknown_keys_fail()
    {
        Assert.StartsWith("FastIngest:Tenants", Assert.Throws<ConfigurationException>(() => Load([])).Message, StringComparison.Ordinal);

        var dup = Good();
        dup["FastIngest:Tenants:1:Id"] = "acme";
        dup["FastIngest:Tenants:1:AppSecret"] = "s";
        dup["FastIngest:Tenants:1:VerifyToken"] = "v";
        Assert.StartsWith("FastIngest:Tenants:1:Id", Assert.Throws<ConfigurationException>(() => Load(dup)).Message, StringComparison.Ordinal);

        var typo = Good();
        typo["FastIngest:DataDirectory"] = "/x";
        Assert.Contains("DataDirectory", Assert.Throws<ConfigurationException>(() => Load(typo)).Message, StringComparison.Ordinal);
    }
}
