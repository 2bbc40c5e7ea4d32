using System.Diagnostics;
using System.Net;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Integration;

/// <summary>
/// The README's quick start as written: the server started from some directory with the shipped appsettings.json
/// (tenant <c>demo</c>, <c>DataDir ./data</c>) keeps its data under that directory's <c>data/</c>, where
/// <c>cat data/out/demo.jsonl</c> finds it. Before, <c>dotnet run --project src/FastIngest.Server</c> ran in the
/// project folder and the events landed in <c>src/FastIngest.Server/data/</c>, inside the source tree.
/// </summary>
public sealed class QuickStartTests
{
    [Fact]
    public async Task A_relative_data_dir_is_the_working_directory_s_and_appsettings_json_is_read_from_beside_the_server()
    {
        using var cwd = new TempDir();
        // No settings but the address: the tenant and DataDir come from the appsettings.json next to the server.
        using (var server = await ServerProcessHost.StartAsync(["--Logging:LogLevel:FastIngest=Information"], workingDirectory: cwd.Path))
        {
            using var client = new HttpClient { BaseAddress = server.Url };
            var body = await File.ReadAllBytesAsync(Path.Combine(RepoPaths.Root, "samples", "text-message.json"));
            Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(Payloads.Webhook("demo", body, "demo-app-secret"))).StatusCode);
            var file = Path.Combine(cwd.Path, "data", "out", "demo.jsonl");
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!(File.Exists(file) && new FileInfo(file).Length > 0))
            {
                Assert.True(DateTime.UtcNow < deadline, $"nothing in {file}; the server said: {string.Join('\n', server.Output)}");
                await Task.Delay(50);
            }
            Assert.Contains(server.Output, l => l.Contains($"Data directory: {Path.Combine(cwd.Path, "data")}", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Dotnet_run_starts_the_server_in_the_directory_it_was_called_from()
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepoPaths.Root };
        foreach (var a in new[] { "msbuild", "src/FastIngest.Server/FastIngest.Server.csproj", "-getProperty:RunWorkingDirectory", "-nologo" })
            psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.Equal(0, process.ExitCode);
        Assert.Equal(Path.TrimEndingDirectorySeparator(RepoPaths.Root), Path.TrimEndingDirectorySeparator(output.Trim()));
    }
}
