using System.Net;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using DomBoot.Net.Fetching;
using DomBoot.Net.Serving;
using DomBoot.TestSupport;

namespace DomBoot.Net.Tests.Fetching;

public sealed partial class CachedFetcherTests
{
    private static readonly CancellationToken Ct = CancellationToken.None;
    private static readonly FetchOptions Quick = new() { Timeout = TimeSpan.FromSeconds(20) };
    private static readonly byte[] Data = Enumerable.Range(0, 200_000).Select(i => (byte)(i * 31 + (i >> 8))).ToArray();
    private static readonly string DataSha = Convert.ToHexStringLower(SHA256.HashData(Data));

    private static void AssertNoEntry(string cacheDir) =>
        Assert.Empty(Directory.Exists(cacheDir) ? Directory.GetFiles(cacheDir) : []);

    [Fact]
    public async Task Fetch_SecondIs304WithNoBody()
    {
        using var dir = new TempDir();
        using var cache = new TempDir();
        File.WriteAllBytes(dir.File("k.img"), Data);
        await using var server = new BootServer();
        var ep = await server.StartAsync(dir.Path, new IPEndPoint(IPAddress.Loopback, 0), Ct);
        var url = new Uri($"http://127.0.0.1:{ep.Port}/k.img");

        var first = await CachedFetcher.FetchAsync(url, cache.Path, Quick, null, Ct);
        Assert.False(first.FromCache);
        Assert.Equal(Data.Length, first.BytesTransferred);
        Assert.Equal(DataSha, first.Sha256);
        Assert.Equal(Data, File.ReadAllBytes(first.LocalPath));
        long sentAfterFirst = server.BodyBytesSent;
        Assert.Equal(Data.Length, sentAfterFirst);

        var second = await CachedFetcher.FetchAsync(url, cache.Path, Quick, null, Ct);
        Assert.True(second.FromCache);
        Assert.Equal(0, second.BytesTransferred);
        Assert.Equal(first.LocalPath, second.LocalPath);
        Assert.Equal(sentAfterFirst, server.BodyBytesSent);
        Assert.Equal(2, server.RequestCount);
    }

    [Fact]
    public async Task Fetch_Sha256PinGoodAndBad()
    {
        using var dir = new TempDir();
        using var cache = new TempDir();
        File.WriteAllBytes(dir.File("k.img"), Data);
        await using var server = new BootServer();
        var ep = await server.StartAsync(dir.Path, new IPEndPoint(IPAddress.Loopback, 0), Ct);

        var good = await CachedFetcher.FetchAsync(new Uri($"http://127.0.0.1:{ep.Port}/k.img#sha256={DataSha.ToUpperInvariant()}"), cache.Path, Quick, null, Ct);
        Assert.Equal(DataSha, good.Sha256);

        using var cache2 = new TempDir();
        var bad = new string('0', 64);
        var ex = await Assert.ThrowsAsync<FetchIntegrityException>(() =>
            CachedFetcher.FetchAsync(new Uri($"http://127.0.0.1:{ep.Port}/k.img#sha256={bad}"), cache2.Path, Quick, null, Ct));
        Assert.Contains("/k.img", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', ex.Message);
        AssertNoEntry(cache2.Path);

        await Assert.ThrowsAsync<FetchException>(() =>
            CachedFetcher.FetchAsync(new Uri($"http://127.0.0.1:{ep.Port}/k.img#sha256=xyz"), cache2.Path, Quick, null, Ct));
    }

    private static (long From, bool Ranged) RangeOf(string head)
    {
        var m = RangeRegex().Match(head);
        return m.Success ? (long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), true) : (0, false);
    }

    [GeneratedRegex(@"Range: bytes=(\d+)-", RegexOptions.IgnoreCase)]
    private static partial Regex RangeRegex();

    private static async Task ServeAsync(System.Net.Sockets.NetworkStream s, string head, string etag, int cutAt, CancellationToken ct)
    {
        var (from, ranged) = RangeOf(head);
        if (ranged)
        {
            await HostileServer.WriteAsync(s, $"HTTP/1.1 206 Partial Content\r\nETag: {etag}\r\nContent-Range: bytes {from}-{Data.Length - 1}/{Data.Length}\r\nContent-Length: {Data.Length - from}\r\nConnection: close\r\n\r\n", ct);
            await s.WriteAsync(Data.AsMemory((int)from), ct);
        }
        else
        {
            await HostileServer.WriteAsync(s, $"HTTP/1.1 200 OK\r\nETag: {etag}\r\nAccept-Ranges: bytes\r\nContent-Length: {Data.Length}\r\nConnection: close\r\n\r\n", ct);
            await s.WriteAsync(Data.AsMemory(0, cutAt), ct);
        }
    }

    [Fact]
    public async Task Fetch_ResumesAfterBrokenConnection()
    {
        using var cache = new TempDir();
        string? secondHead = null;
        await using var server = new HostileServer(async (n, head, s, ct) =>
        {
            if (n == 2) secondHead = head;
            await ServeAsync(s, head, "\"v1\"", Data.Length / 2, ct);
        });
        var r = await CachedFetcher.FetchAsync(server.Url("/k"), cache.Path, Quick, null, Ct);
        Assert.Equal(Data, File.ReadAllBytes(r.LocalPath));
        Assert.Equal(DataSha, r.Sha256);
        Assert.Equal(2, server.Requests);
        Assert.Contains($"Range: bytes={Data.Length / 2}-", secondHead!, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("If-Range: \"v1\"", secondHead!, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(2, Directory.GetFiles(cache.Path).Length); // the entry and its metadata, no .part
    }

    [Fact]
    public async Task Fetch_RejectsFileChangedBetweenRanges()
    {
        using var cache = new TempDir();
        await using var server = new HostileServer((n, head, s, ct) => ServeAsync(s, head, n == 1 ? "\"v1\"" : "\"v2\"", Data.Length / 2, ct));
        var ex = await Assert.ThrowsAsync<FetchIntegrityException>(() => CachedFetcher.FetchAsync(server.Url("/k"), cache.Path, Quick, null, Ct));
        Assert.Contains("changed between range requests", ex.Message, StringComparison.Ordinal);
        AssertNoEntry(cache.Path);
    }

    [Fact]
    public async Task Fetch_RejectsWholeBodyInsteadOf206()
    {
        using var cache = new TempDir();
        // Claims more than it sends (a long Content-Length) and ignores Range.
        await using var server = new HostileServer(async (n, head, s, ct) =>
        {
            await HostileServer.WriteAsync(s, $"HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: {Data.Length * 2}\r\nConnection: close\r\n\r\n", ct);
            await s.WriteAsync(Data, ct);
        });
        var ex = await Assert.ThrowsAsync<FetchIntegrityException>(() => CachedFetcher.FetchAsync(server.Url("/k"), cache.Path, Quick, null, Ct));
        Assert.Contains("200 instead of 206", ex.Message, StringComparison.Ordinal);
        AssertNoEntry(cache.Path);
    }

    [Fact]
    public async Task Fetch_RejectsLongContentLengthWithoutValidators()
    {
        using var cache = new TempDir();
        await using var server = new HostileServer(async (n, head, s, ct) =>
        {
            await HostileServer.WriteAsync(s, $"HTTP/1.1 200 OK\r\nContent-Length: {Data.Length * 2}\r\nConnection: close\r\n\r\n", ct);
            await s.WriteAsync(Data, ct);
        });
        await Assert.ThrowsAsync<FetchException>(() => CachedFetcher.FetchAsync(server.Url("/k"), cache.Path, Quick with { MaxResumeAttempts = 2 }, null, Ct));
        Assert.Equal(3, server.Requests);
        AssertNoEntry(cache.Path);
    }

    [Fact]
    public async Task Fetch_ShortContentLengthIsCaughtByPin()
    {
        using var cache = new TempDir();
        await using var server = new HostileServer(async (n, head, s, ct) =>
        {
            await HostileServer.WriteAsync(s, $"HTTP/1.1 200 OK\r\nContent-Length: {Data.Length / 2}\r\nConnection: close\r\n\r\n", ct);
            await s.WriteAsync(Data, ct);
        });
        await Assert.ThrowsAsync<FetchIntegrityException>(() => CachedFetcher.FetchAsync(server.Url("/k#sha256=" + DataSha), cache.Path, Quick, null, Ct));
        AssertNoEntry(cache.Path);
    }

    [Fact]
    public async Task Fetch_RejectsEndlessBody()
    {
        using var cache = new TempDir();
        await using var server = new HostileServer(async (n, head, s, ct) =>
        {
            await HostileServer.WriteAsync(s, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", ct);
            var chunk = new byte[65536];
            for (int i = 0; i < 10_000 && !ct.IsCancellationRequested; i++) await s.WriteAsync(chunk, ct);
        });
        var ex = await Assert.ThrowsAsync<FetchIntegrityException>(() => CachedFetcher.FetchAsync(server.Url("/k"), cache.Path, Quick with { MaxBytes = 1 << 20 }, null, Ct));
        Assert.Contains("exceeds the limit", ex.Message, StringComparison.Ordinal);
        AssertNoEntry(cache.Path);
    }

    [Fact]
    public async Task Fetch_RejectsDeclaredSizeOverLimit()
    {
        using var cache = new TempDir();
        await using var server = new HostileServer((n, head, s, ct) =>
            HostileServer.WriteAsync(s, "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n", ct));
        await Assert.ThrowsAsync<FetchIntegrityException>(() => CachedFetcher.FetchAsync(server.Url("/k"), cache.Path, Quick with { MaxBytes = 1 << 20 }, null, Ct));
        AssertNoEntry(cache.Path);
    }

    [Fact]
    public async Task Fetch_RejectsRedirectLoopAndTooManyRedirects()
    {
        using var cache = new TempDir();
        await using var loop = new HostileServer((n, head, s, ct) =>
            HostileServer.WriteAsync(s, $"HTTP/1.1 302 Found\r\nLocation: /{(head.Contains("GET /a ", StringComparison.Ordinal) ? "b" : "a")}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", ct));
        var ex = await Assert.ThrowsAsync<FetchProtocolException>(() => CachedFetcher.FetchAsync(loop.Url("/a"), cache.Path, Quick, null, Ct));
        Assert.Contains("redirect loop", ex.Message, StringComparison.Ordinal);
        AssertNoEntry(cache.Path);

        await using var chain = new HostileServer((n, head, s, ct) =>
            HostileServer.WriteAsync(s, $"HTTP/1.1 301 Moved\r\nLocation: /r{n}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", ct));
        var ex2 = await Assert.ThrowsAsync<FetchProtocolException>(() => CachedFetcher.FetchAsync(chain.Url("/start"), cache.Path, Quick, null, Ct));
        Assert.Contains("more than 5 redirects", ex2.Message, StringComparison.Ordinal);
        Assert.Equal(6, chain.Requests);
        AssertNoEntry(cache.Path);
    }

    [Fact]
    public async Task Fetch_FollowsRedirectToBootServer()
    {
        using var dir = new TempDir();
        using var cache = new TempDir();
        File.WriteAllBytes(dir.File("k.img"), Data);
        await using var server = new BootServer();
        var ep = await server.StartAsync(dir.Path, new IPEndPoint(IPAddress.Loopback, 0), Ct);
        await using var redirect = new HostileServer((n, head, s, ct) =>
            HostileServer.WriteAsync(s, $"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://localhost:{ep.Port}/k.img\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", ct));
        var r = await CachedFetcher.FetchAsync(redirect.Url("/x"), cache.Path, Quick, null, Ct);
        Assert.Equal(DataSha, r.Sha256);
    }

    [Theory]
    [InlineData("garbage\r\n\r\n")]
    [InlineData("HTTP/1.1 2OO OK\r\n\r\n")]
    [InlineData("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")]
    public async Task Fetch_RejectsGarbageOrErrorStatus(string reply)
    {
        using var cache = new TempDir();
        await using var server = new HostileServer((n, head, s, ct) => HostileServer.WriteAsync(s, reply, ct));
        var ex = await Assert.ThrowsAsync<FetchProtocolException>(() => CachedFetcher.FetchAsync(server.Url("/k"), cache.Path, Quick, null, Ct));
        Assert.Contains(server.Url("/k").ToString(), ex.Message, StringComparison.Ordinal);
        AssertNoEntry(cache.Path);
    }

    [Fact]
    public async Task Fetch_ResumesStalePartWithValidators()
    {
        using var cache = new TempDir();
        await using var server = new HostileServer((n, head, s, ct) => ServeAsync(s, head, "\"v1\"", Data.Length / 2, ct));
        var url = server.Url("/k");
        var key = Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(url.AbsoluteUri)))[..32];
        File.WriteAllBytes(Path.Combine(cache.Path, key + ".part"), Data[..1000]);
        File.WriteAllText(Path.Combine(cache.Path, key + ".part.json"), $"{{\"Url\":\"{url.AbsoluteUri}\",\"ETag\":\"\\\"v1\\\"\",\"LastModified\":null,\"Total\":{Data.Length}}}");
        var r = await CachedFetcher.FetchAsync(url, cache.Path, Quick, null, Ct);
        Assert.Equal(Data.Length - 1000, r.BytesTransferred);
        Assert.Equal(DataSha, r.Sha256);
        Assert.Equal(1, server.Requests);
    }
}
