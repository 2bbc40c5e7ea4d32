using FastIngest.Storage;
using FastIngest.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastIngest.Tests.Storage;

/// <summary>
/// The start-up warm-up that compiles the checkpoint path before traffic: it checkpoints a scratch store of every
/// type, leaves nothing in <c>DataDir</c> (not even what a crash during an earlier warm-up left), and a failure of its
/// own never stops the start.
/// </summary>
public sealed class CheckpointWarmupTests
{
    [Fact]
    public async Task Checkpoints_every_scratch_store_and_leaves_the_data_directory_as_it_was()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.Sub("keep"), "data");
        Directory.CreateDirectory(Path.Combine(dir.Sub(".warmup"), "dedupe"));
        File.WriteAllText(Path.Combine(dir.Sub(".warmup"), "dedupe", "hlog.log.0"), "left by a crash");

        Assert.True(await CheckpointWarmup.RunAsync(dir.Path, TimeProvider.System, NullLogger.Instance));

        Assert.False(Directory.Exists(dir.Sub(".warmup")));
        Assert.Equal(["keep"], Directory.EnumerateFileSystemEntries(dir.Path).Select(Path.GetFileName));
        Assert.Equal("data", File.ReadAllText(dir.Sub("keep")));
    }

    [Fact]
    public async Task A_warm_up_that_cannot_write_its_scratch_stores_says_so_and_does_not_throw()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.Sub(".warmup"), "a file where the scratch directory should go");

        Assert.False(await CheckpointWarmup.RunAsync(dir.Path, TimeProvider.System, NullLogger.Instance));
        Assert.True(File.Exists(dir.Sub(".warmup"))); // not a directory: left alone
    }
}
