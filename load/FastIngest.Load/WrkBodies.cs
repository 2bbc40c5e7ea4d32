using System.Globalization;
using System.Text;

namespace FastIngest.Load;

/// <summary>
/// Writes pre-signed, all-distinct webhook bodies for <c>load/wrk/rotate.lua</c>: <c>shard-N.tsv</c>, one
/// <c>signature TAB body</c> line each, one shard per wrk thread (so threads never send the same body).
/// </summary>
internal static class WrkBodies
{
    public static void Write(string dir, long count, int shards, string secret, int minBytes, int maxBytes, int seed)
    {
        Directory.CreateDirectory(dir);
        var generator = new TrafficGenerator(0, secret, 0, 0, seed);
        var writers = Enumerable.Range(0, shards)
            .Select(s => new StreamWriter(Path.Combine(dir, $"shard-{s}.tsv"), false, new UTF8Encoding(false), 1 << 20)).ToArray();
        try
        {
            for (long i = 0; i < count; i++)
            {
                var d = generator.SizedText(minBytes, maxBytes);
                var w = writers[i % shards];
                w.Write(d.Signature);
                w.Write('\t');
                w.Write(Encoding.UTF8.GetString(d.Body));
                w.Write('\n');
            }
        }
        finally
        {
            foreach (var w in writers)
                w.Dispose();
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {count} signed bodies ({minBytes}-{maxBytes} bytes) in {shards} shards to {dir}"));
    }
}
