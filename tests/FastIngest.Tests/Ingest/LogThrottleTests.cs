using FastIngest.Internal;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Ingest;

/// <summary>A flood of rejections writes one line a second per tenant and status, and says how many it held back.</summary>
public sealed class LogThrottleTests
{
    [Fact]
    public void One_line_per_interval_per_key_with_the_count_of_those_held_back()
    {
        var clock = new ManualClock();
        var throttle = new LogThrottle(TimeSpan.FromSeconds(1), clock);
        Assert.True(throttle.ShouldLog("t1", 401, out var suppressed));
        Assert.Equal(0, suppressed);
        for (var i = 0; i < 1000; i++)
            Assert.False(throttle.ShouldLog("t1", 401, out _));
        Assert.True(throttle.ShouldLog("t1", 413, out _)); // another status is another line
        Assert.True(throttle.ShouldLog("t2", 401, out _)); // another tenant too
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True(throttle.ShouldLog("t1", 401, out suppressed));
        Assert.Equal(1000, suppressed);
    }
}
