namespace FastIngest.Tests.Support;

/// <summary>Waits for a state that something outside the test (a server, a broker) reaches on its own time.</summary>
internal static class Eventually
{
    /// <summary>Polls <paramref name="condition"/> until it holds; fails the test after <paramref name="seconds"/> seconds.</summary>
    public static async Task TrueAsync(Func<Task<bool>> condition, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"condition not reached in {seconds} s");
            await Task.Delay(25);
        }
    }
}
