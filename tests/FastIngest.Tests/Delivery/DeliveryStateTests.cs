using FastIngest.Delivery;

namespace FastIngest.Tests.Delivery;

/// <summary>The ordering rule of a message's delivery state, one status webhook at a time.</summary>
public sealed class DeliveryStateTests
{
    private static (MessageStatus Final, bool[] Stale) Run(params (MessageStatus Status, long Ts)[] webhooks)
    {
        var state = default(DeliveryState);
        var stale = webhooks.Select((w, i) => state.Apply(w.Status, w.Ts, 1000 + i)).ToArray();
        return (state.Status, stale);
    }

    [Fact]
    public void In_order_every_status_moves_it_forward()
    {
        var (final, stale) = Run((MessageStatus.Sent, 100), (MessageStatus.Delivered, 101), (MessageStatus.Read, 102));
        Assert.Equal(MessageStatus.Read, final);
        Assert.Equal([false, false, false], stale);
    }

    [Fact]
    public void A_status_behind_the_state_is_stale_and_never_moves_it_back()
    {
        var (final, stale) = Run((MessageStatus.Read, 102), (MessageStatus.Delivered, 101), (MessageStatus.Sent, 100));
        Assert.Equal(MessageStatus.Read, final);
        Assert.Equal([false, true, true], stale);
    }

    [Fact]
    public void Skipping_a_step_is_forward()
    {
        var (final, stale) = Run((MessageStatus.Sent, 100), (MessageStatus.Read, 105), (MessageStatus.Delivered, 104));
        Assert.Equal(MessageStatus.Read, final);
        Assert.Equal([false, false, true], stale);
    }

    [Fact]
    public void Failed_is_terminal()
    {
        var (final, stale) = Run((MessageStatus.Sent, 100), (MessageStatus.Failed, 101), (MessageStatus.Delivered, 102), (MessageStatus.Read, 103));
        Assert.Equal(MessageStatus.Failed, final);
        Assert.Equal([false, false, true, true], stale);
    }

    [Fact]
    public void A_failed_older_than_the_current_status_by_Metas_clock_is_stale()
    {
        var (final, stale) = Run((MessageStatus.Delivered, 200), (MessageStatus.Failed, 150));
        Assert.Equal(MessageStatus.Delivered, final);
        Assert.Equal([false, true], stale);
        Assert.Equal(MessageStatus.Failed, Run((MessageStatus.Delivered, 200), (MessageStatus.Failed, 200)).Final);
    }

    [Fact]
    public void Applying_the_same_webhook_again_keeps_its_first_verdict_and_changes_nothing()
    {
        var state = default(DeliveryState);
        Assert.False(state.Apply(MessageStatus.Read, 102, 1));
        Assert.True(state.Apply(MessageStatus.Delivered, 101, 2));
        var before = state.Changes;
        Assert.False(state.Apply(MessageStatus.Read, 102, 3)); // re-read from the log after a restart
        Assert.True(state.Apply(MessageStatus.Delivered, 101, 4));
        Assert.Equal(before, state.Changes);
        Assert.Equal(MessageStatus.Read, state.Status);
    }

    [Fact]
    public void History_keeps_the_last_six_oldest_first()
    {
        var state = default(DeliveryState);
        for (var i = 0; i < 9; i++)
            state.Apply(i == 0 ? MessageStatus.Sent : MessageStatus.Delivered, 100 + i, 1000 + i);
        Assert.Equal(9, state.Changes);
        Assert.Equal(DeliveryState.HistoryCapacity, state.HistoryCount);
        Assert.Equal(103, state.HistoryAt(0).MetaUnixSeconds);
        Assert.Equal(108, state.HistoryAt(5).MetaUnixSeconds);
        Assert.True(state.HistoryAt(5).Stale);
    }

    [Theory]
    [InlineData("sent", MessageStatus.Sent)]
    [InlineData("delivered", MessageStatus.Delivered)]
    [InlineData("read", MessageStatus.Read)]
    [InlineData("failed", MessageStatus.Failed)]
    [InlineData("deleted", MessageStatus.None)]
    [InlineData("READ", MessageStatus.None)]
    public void Statuses_are_Metas_lower_case_names(string name, MessageStatus expected)
        => Assert.Equal(expected, DeliveryState.ParseStatus(System.Text.Encoding.ASCII.GetBytes(name)));

    [Theory]
    [InlineData("1749416400", 1749416400)]
    [InlineData("", 0)]
    [InlineData("-5", 0)]
    [InlineData("12x", 0)]
    [InlineData("99999999999999999999999", 0)]
    public void Timestamps_that_are_not_Unix_seconds_count_as_zero(string digits, long expected)
        => Assert.Equal(expected, DeliveryState.ParseTimestamp(System.Text.Encoding.ASCII.GetBytes(digits)));
}
