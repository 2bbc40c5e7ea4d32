using System.Globalization;

namespace FastIngest.Load;

/// <summary>The Meta traffic simulator and its helpers.</summary>
public static class Program
{
    private const string Usage = """
        FastIngest Meta traffic simulator

          run [options]      send Meta-like webhook traffic, check what reaches the bot, report
            --target URL             a running FastIngest (default: start one: --server-dll, --port)
            --tenants N              tenants t0..tN-1, secrets load-secret-{i} (default 4)
            --rate R                 open model: R requests/s on schedule (latency from scheduled time)
            --connections C          closed model: C senders as fast as answered (default 64)
            --requests N             stop after N requests          --duration S   stop after S s (default 30)
            --repeats F              share of verbatim re-deliveries (default 0.05)
            --out-of-order F         share of status batches in reverse order (default 0.2)
            --drain S                wait up to S s for forwarding to finish (default 120)
            --json PATH              also write the report as JSON
            --forward-concurrency N  Forward:Concurrency of the started server (default 16)
            --server-setting K=V     extra setting for the started server, e.g. FastIngest:Storage:LogMemoryBytes=...
            --port P / --bot-port P  ports of the started server (18080) and the embedded bot (18090)
            --rss-interval S         sample the started server's RSS every S s (default 5)
            --destination D          where the started server delivers: webhook (the embedded bot, default), bullmq
                                     (redis-server, one queue per tenant), celery (redis-server, queue celery) or
                                     rabbitmq (rabbitmq-server, publisher confirms, a quorum queue); the tool starts the
                                     broker in a temp directory and consumes with a client of its own
            --text-only              only text messages of 1-2 KB (as the wrk bodies), instead of the Meta-like mix
            --pregenerate            open model: build and sign every delivery before the clock starts
          gen-wrk --out DIR [--count N] [--shards S] [--secret S] [--min B] [--max B]
                             pre-signed distinct bodies for load/wrk/rotate.lua (default 300000, 2 shards, 1024-2048 bytes)
          bare [--urls URL]  Kestrel that reads the body and answers 200 (default http://127.0.0.1:18081)
          open --target URL --bodies SHARD --rate R [--duration S] [--warmup S] [--connections C] [--json PATH]
                             open-model latency over raw keep-alive sockets (a few µs a request): requests due on a
                             fixed schedule, latency from when each was due; bodies from a gen-wrk shard file
          sends [--drain N] [--campaign N] [--duration S] [--phone-rate R] [--server-cpus C] [--server-dll PATH]
                             the send tier against a fake Graph API: scheduler sends/s draining N queued at start
                             (default 20000); one tenant's reply latency while another has N campaign sends queued
                             (default 100000) over S s (default 60), and that number's rate held; the server is
                             pinned to CPU C (default 0): run this tool with taskset -c 1
        """;

    public static async Task<int> Main(string[] args)
    {
        try
        {
            switch (args.FirstOrDefault())
            {
                case "run":
                    var options = LoadOptions.Parse(args[1..]);
                    var report = await new LoadRunner(options).RunAsync().ConfigureAwait(false);
                    Console.WriteLine(report.ToTable());
                    if (options.Json is not null)
                        await File.WriteAllTextAsync(options.Json, report.ToJson()).ConfigureAwait(false);
                    return report.Lost == 0 && report.Doubled == 0 ? 0 : 1;
                case "gen-wrk":
                    var a = Named(args[1..]);
                    WrkBodies.Write(a.GetValueOrDefault("--out") ?? throw new ArgumentException("--out is required"),
                        long.Parse(a.GetValueOrDefault("--count") ?? "300000", CultureInfo.InvariantCulture),
                        int.Parse(a.GetValueOrDefault("--shards") ?? "2", CultureInfo.InvariantCulture),
                        a.GetValueOrDefault("--secret") ?? "load-secret-0",
                        int.Parse(a.GetValueOrDefault("--min") ?? "1024", CultureInfo.InvariantCulture),
                        int.Parse(a.GetValueOrDefault("--max") ?? "2048", CultureInfo.InvariantCulture),
                        int.Parse(a.GetValueOrDefault("--seed") ?? "7", CultureInfo.InvariantCulture));
                    return 0;
                case "sends":
                    return await SendTierBench.RunAsync(Named(args[1..])).ConfigureAwait(false);
                case "open":
                    return await OpenLoop.RunAsync(Named(args[1..])).ConfigureAwait(false);
                case "bare":
                    await BareServer.RunAsync(Named(args[1..]).GetValueOrDefault("--urls") ?? "http://127.0.0.1:18081").ConfigureAwait(false);
                    return 0;
                default:
                    Console.Error.WriteLine(Usage);
                    return 2;
            }
        }
        catch (ArgumentException ex)
        {
            Console.Error.WriteLine($"fastingest-load: {ex.Message}");
            Console.Error.WriteLine(Usage);
            return 2;
        }
    }

    private static Dictionary<string, string> Named(string[] args)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < args.Length; i += 2)
            d[args[i]] = args[i + 1];
        return d;
    }
}
