using FastIngest.Storage;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Storage;

/// <summary>The durable table of each boot's recovered tail, which decides which earlier dedupe marks are real.</summary>
public sealed class BootTailsTests
{
    [Fact]
    public void A_boot_got_committed_what_the_next_recorded_boot_recovered()
    {
        using var dir = new TempDir();
        BootTails.Record(dir.Path, 1, 64);
        BootTails.Record(dir.Path, 2, 1000);
        // boot 3 crashed before it recorded anything (it took no request); boot 4 recovered 5000
        var tails = BootTails.Record(dir.Path, 4, 5000);
        Assert.Equal(3, tails.Count);
        Assert.Equal(1000, tails.CommittedBy(1));
        Assert.Equal(5000, tails.CommittedBy(2));
        Assert.Equal(5000, tails.CommittedBy(3));
        Assert.Equal(5000, tails.CommittedBy(4)); // the current boot: its marks count as they wait for their commits
        Assert.Equal(64, tails.CommittedBy(0)); // marks from before the table existed: judged by the first tail it has
    }

    [Fact]
    public void A_torn_last_record_is_dropped_and_the_table_goes_on()
    {
        using var dir = new TempDir();
        BootTails.Record(dir.Path, 1, 64);
        BootTails.Record(dir.Path, 2, 1000);
        var path = Path.Combine(dir.Path, "boot-tails");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^5]); // a power cut mid-append
        var tails = BootTails.Record(dir.Path, 3, 2000);
        Assert.Equal(2, tails.Count);
        Assert.Equal(2000, tails.CommittedBy(1));
        Assert.Equal(32, new FileInfo(path).Length);
    }
}
