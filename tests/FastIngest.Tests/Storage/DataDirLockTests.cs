using FastIngest.Storage;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Storage;

/// <summary>
/// One process per data directory: two servers on one <c>DataDir</c> both acked and then corrupted it. The second
/// now exits at once, non-zero, with one line naming the directory and the holder's pid.
/// </summary>
public sealed class DataDirLockTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_second_process_on_the_same_data_directory_exits_with_one_line_naming_it_and_the_holder()
    {
        using var first = await ServerProcessHost.StartAsync(ServerProcessHost.OneTenant(_dir.Path, "http://127.0.0.1:9/bot"));

        var (exitCode, lines) = await ServerProcessHost.RunUntilExitAsync(ServerProcessHost.OneTenant(_dir.Path, "http://127.0.0.1:9/bot"));

        Assert.NotEqual(0, exitCode);
        var line = Assert.Single(lines);
        Assert.Contains(_dir.Path, line, StringComparison.Ordinal);
        Assert.Contains($"pid {first.Process.Id}", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", line, StringComparison.Ordinal);
        Assert.False(first.Process.HasExited); // the holder keeps running
    }

    [Fact]
    public void The_lock_is_given_back_on_dispose_and_by_the_kernel_when_the_process_dies()
    {
        using (DataDirLock.Acquire(_dir.Path))
            Assert.Throws<IOException>(() => DataDirLock.Acquire(_dir.Path));
        using var again = DataDirLock.Acquire(_dir.Path); // released: a restart takes it
    }
}
