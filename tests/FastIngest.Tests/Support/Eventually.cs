namespace FastIngest.Tests.Support;

/// <summary>Waits for a state that something outside the test (a server, a broker) reaches on its own time.</summary>
internal static class Eventually
{
    /// <summary>
    /// Polls <paramref name="condition"/> until it holds; fails the test after <paramref name="seconds"/> seconds, with
    /// what <paramref name="explain"/> says of the state then, if given.
    /// </summary>
    public static async Task TrueAsync(Func<Task<bool>> condition, int seconds = 30, Func<Task<string>>? explain = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            if (DateTime.UtcNow >= deadline)
                Assert.Fail($"condition not reached in {seconds} s{(explain is null ? "" : ": " + await explain())}");
            await Task.Delay(25);
        }
    }
}
