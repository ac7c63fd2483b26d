using System.Net;
using DomBoot.Net.Serving;
using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests;

/// <summary>`run --kernel http://...`: fetched through the cache; the second run revalidates with a 304 and moves no body.</summary>
public sealed class RemoteKernelTests : IDisposable
{
    private readonly TempDir _dir = new("domboot-remote");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task RunDryRun_KernelUrl_FetchesOnceThenRevalidates()
    {
        var root = Directory.CreateDirectory(_dir.File("www")).FullName;
        File.Copy(Cache.Kernel, Path.Combine(root, "vmlinuz"));
        await using var server = new BootServer();
        var ep = await server.StartAsync(root, new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        var env = new Dictionary<string, string> { ["XDG_CACHE_HOME"] = _dir.File("cache") };
        var url = $"http://127.0.0.1:{ep.Port}/vmlinuz#sha256={Tools.Sha256(Cache.Kernel)}";

        var first = DombootProcess.Run(["run", "--kernel", url, "--accel", "tcg", "--dry-run"], env);
        Assert.True(first.ExitCode == 0, first.Stderr);
        Assert.Contains("fetched 14", first.Stderr, StringComparison.Ordinal);
        Assert.Contains("boot protocol 2.15", first.Stdout, StringComparison.Ordinal);
        long bodyAfterFirst = server.BodyBytesSent;

        var second = DombootProcess.Run(["run", "--kernel", url, "--accel", "tcg", "--dry-run"], env);
        Assert.True(second.ExitCode == 0, second.Stderr);
        Assert.Contains("cached copy still valid (304)", second.Stderr, StringComparison.Ordinal);
        Assert.Equal(bodyAfterFirst, server.BodyBytesSent);

        var badPin = DombootProcess.Run(["run", "--kernel", url[..url.IndexOf('#', StringComparison.Ordinal)] + "#sha256=" + new string('0', 64), "--accel", "tcg", "--dry-run"], env);
        Assert.NotEqual(0, badPin.ExitCode);
        Assert.Single(badPin.Stderr.TrimEnd('\n').Split('\n'));
    }
}
