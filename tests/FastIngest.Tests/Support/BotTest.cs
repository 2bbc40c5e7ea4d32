namespace FastIngest.Tests.Support;

/// <summary>
/// A test class that needs a data directory and a real bot on loopback: both are made before each test and removed
/// after it.
/// </summary>
public abstract class BotTest : IAsyncLifetime
{
    internal TempDir Dir { get; } = new();

    internal BotServer Bot { get; private set; } = null!;

    /// <inheritdoc/>
    public virtual async Task InitializeAsync() => Bot = await BotServer.StartAsync();

    /// <inheritdoc/>
    public virtual async Task DisposeAsync()
    {
        await Bot.DisposeAsync();
        Dir.Dispose();
    }
}

/// <summary>
/// A <see cref="BotTest"/> for the send tier: also a fake Graph API on loopback that takes
/// <see cref="Outbound.OutboundTests.MetaToken"/>, made before each test and stopped after it.
/// </summary>
public abstract class SendTierTest : BotTest
{
    internal FakeGraphApi Graph { get; private set; } = null!;

    /// <inheritdoc/>
    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        Graph = await FakeGraphApi.StartAsync();
        Graph.Token = Outbound.OutboundTests.MetaToken;
    }

    /// <inheritdoc/>
    public override async Task DisposeAsync()
    {
        await Graph.DisposeAsync();
        await base.DisposeAsync();
    }
}
