using BenchmarkDotNet.Running;

namespace FastIngest.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project bench/FastIngest.Benchmarks -- --filter '*'</c>;
/// add <c>--job dry</c> (or <c>--job short</c>) for a smoke run that only proves they run.
/// </summary>
public static class Program
{
    public static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "probe")
        {
            AllocationProbe.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 200_000);
            return;
        }
        if (args.Length > 2 && args[0] == "sendbook")
        {
            Outbound.SendBookFill.RunAsync(long.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture), args[2],
                args.Length > 3 ? long.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture) : 512L << 20).GetAwaiter().GetResult();
            return;
        }
        if (args.Length > 2 && args[0] == "backlog")
        {
            Dispatch.BacklogFill.RunAsync(long.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture), args[2]).GetAwaiter().GetResult();
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
