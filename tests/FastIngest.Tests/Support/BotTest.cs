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
    public async Task InitializeAsync() => Bot = await BotServer.StartAsync();

    /// <inheritdoc/>
    public virtual async Task DisposeAsync()
    {
        await Bot.DisposeAsync();
        Dir.Dispose();
    }
}
