using System.Globalization;

namespace FastIngest.Load;

/// <summary>Options of the <c>run</c> command; see <see cref="Program"/> for the usage text.</summary>
internal sealed class LoadOptions
{
    public string? Target { get; set; }
    public int Tenants { get; set; } = 4;
    public double? Rate { get; set; }
    public int Connections { get; set; } = 64;
    public long Requests { get; set; } = long.MaxValue;
    public TimeSpan Duration { get; set; } = TimeSpan.FromSeconds(30);
    public double Repeats { get; set; } = 0.05;
    public double OutOfOrder { get; set; } = 0.2;
    public string? Json { get; set; }
    public TimeSpan Drain { get; set; } = TimeSpan.FromSeconds(120);
    public string ServerDll { get; set; } = DefaultServerDll();
    public int Port { get; set; } = 18080;
    public int BotPort { get; set; } = 18090;
    public int Seed { get; set; } = 1;
    public TimeSpan RssInterval { get; set; } = TimeSpan.FromSeconds(5);
    public int ForwardConcurrency { get; set; } = 16;
    public bool TextOnly { get; set; }
    public string Destination { get; set; } = "webhook";
    public bool Pregenerate { get; set; }
    public List<string> ServerSettings { get; } = [];

    public static string Secret(int tenant) => $"load-secret-{tenant}";

    public static string DefaultServerDll()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "FastIngest.sln")))
            dir = dir.Parent;
        return dir is null ? "FastIngest.Server.dll"
            : Path.Combine(dir.FullName, "src", "FastIngest.Server", "bin", "Release", "net10.0", "FastIngest.Server.dll");
    }

    public static LoadOptions Parse(IReadOnlyList<string> args)
    {
        var o = new LoadOptions();
        for (var i = 0; i < args.Count; i++)
        {
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            var inv = CultureInfo.InvariantCulture;
            switch (args[i])
            {
                case "--target": o.Target = Value().TrimEnd('/'); break;
                case "--tenants": o.Tenants = int.Parse(Value(), inv); break;
                case "--rate": o.Rate = double.Parse(Value(), inv); break;
                case "--connections": o.Connections = int.Parse(Value(), inv); break;
                case "--requests": o.Requests = long.Parse(Value(), inv); break;
                case "--duration": o.Duration = TimeSpan.FromSeconds(double.Parse(Value(), inv)); break;
                case "--repeats": o.Repeats = double.Parse(Value(), inv); break;
                case "--out-of-order": o.OutOfOrder = double.Parse(Value(), inv); break;
                case "--json": o.Json = Value(); break;
                case "--drain": o.Drain = TimeSpan.FromSeconds(double.Parse(Value(), inv)); break;
                case "--server-dll": o.ServerDll = Value(); break;
                case "--port": o.Port = int.Parse(Value(), inv); break;
                case "--bot-port": o.BotPort = int.Parse(Value(), inv); break;
                case "--seed": o.Seed = int.Parse(Value(), inv); break;
                case "--rss-interval": o.RssInterval = TimeSpan.FromSeconds(double.Parse(Value(), inv)); break;
                case "--forward-concurrency": o.ForwardConcurrency = int.Parse(Value(), inv); break;
                case "--server-setting": o.ServerSettings.Add(Value()); break;
                case "--text-only": o.TextOnly = true; break;
                case "--destination": o.Destination = Value(); break;
                case "--pregenerate": o.Pregenerate = true; break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        if (o.Tenants < 1)
            throw new ArgumentException("--tenants must be at least 1");
        if (o.Rate is <= 0)
            throw new ArgumentException("--rate must be positive");
        return o;
    }
}
