using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using DomBoot.Net.Serving;
using DomBoot.TestSupport;

namespace DomBoot.Net.Tests.Serving;

public sealed class BootServerTests : IAsyncLifetime, IDisposable
{
    private static readonly CancellationToken Ct = CancellationToken.None;
    private readonly TempDir _dir = new("domboot-serve");
    private readonly TempDir _outside = new("domboot-outside");
    private readonly StringWriter _log = new();
    private BootServer _server = null!;
    private IPEndPoint _ep = null!;
    private HttpClient _client = null!;
    private readonly byte[] _data = Enumerable.Range(0, 10000).Select(i => (byte)(i * 7)).ToArray();

    public async Task InitializeAsync()
    {
        File.WriteAllBytes(_dir.File("disk.img"), _data);
        File.WriteAllText(_outside.File("secret.txt"), "SECRET");
        File.CreateSymbolicLink(_dir.File("escape.txt"), _outside.File("secret.txt"));
        Directory.CreateSymbolicLink(_dir.File("escdir"), _outside.Path);
        _server = new BootServer(new BootServerOptions { RequestHeadersTimeout = TimeSpan.FromSeconds(2), MaxRequestHeadersTotalSize = 8192 }, _log);
        _ep = await _server.StartAsync(_dir.Path, new IPEndPoint(IPAddress.Loopback, 0), Ct);
        _client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_ep.Port}"), Timeout = TimeSpan.FromSeconds(20) };
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
        Dispose();
    }

    public void Dispose()
    {
        _client?.Dispose();
        _log.Dispose();
        _dir.Dispose();
        _outside.Dispose();
    }

    private async Task<string> RawAsync(string requestText)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, _ep.Port);
        var s = tcp.GetStream();
        s.ReadTimeout = 10000;
        await s.WriteAsync(Encoding.ASCII.GetBytes(requestText));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var ms = new MemoryStream();
        var buf = new byte[65536];
        int n;
        while ((n = await s.ReadAsync(buf, cts.Token)) > 0) ms.Write(buf, 0, n);
        return Encoding.Latin1.GetString(ms.ToArray());
    }

    [Theory]
    [InlineData("/../secret.txt")]
    [InlineData("/%2e%2e/secret.txt")]
    [InlineData("/%252e%252e/secret.txt")]
    [InlineData("/..%2fsecret.txt")]
    [InlineData("/..\\secret.txt")]
    [InlineData("/%5c..%5csecret.txt")]
    [InlineData("/disk.img%00")]
    [InlineData("/escape.txt")]
    [InlineData("/escdir/secret.txt")]
    [InlineData("/escdir.ipxe")]
    public async Task Get_RefusesTraversal(string target)
    {
        var reply = await RawAsync($"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        Assert.Matches(@"^HTTP/1\.1 (400|404) ", reply);
        Assert.DoesNotContain("SECRET", reply, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Get_ServesWholeFileWithValidators()
    {
        using var r = await _client.GetAsync("/disk.img", Ct);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal(_data, await r.Content.ReadAsByteArrayAsync(Ct));
        Assert.Equal("application/octet-stream", r.Content.Headers.ContentType!.MediaType);
        Assert.NotNull(r.Headers.ETag);
        Assert.NotNull(r.Content.Headers.LastModified);
        Assert.Contains("\"GET /disk.img HTTP/1.1\" 200 10000", _log.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Get_SingleRangeIs206WithExactBytes()
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, "/disk.img");
        req.Headers.Range = new RangeHeaderValue(100, 1099);
        using var r = await _client.SendAsync(req, Ct);
        Assert.Equal(HttpStatusCode.PartialContent, r.StatusCode);
        Assert.Equal("bytes 100-1099/10000", r.Content.Headers.ContentRange!.ToString());
        Assert.Equal(_data[100..1100], await r.Content.ReadAsByteArrayAsync(Ct));

        using var suffix = new HttpRequestMessage(HttpMethod.Get, "/disk.img");
        suffix.Headers.TryAddWithoutValidation("Range", "bytes=-10");
        using var r2 = await _client.SendAsync(suffix, Ct);
        Assert.Equal(_data[^10..], await r2.Content.ReadAsByteArrayAsync(Ct));
    }

    [Theory]
    [InlineData("bytes=10000-", 416)]
    [InlineData("bytes=500-100", 416)]
    [InlineData("bytes=abc", 416)]
    [InlineData("bytes=0-10,5-20", 200)]
    [InlineData("items=0-10", 200)]
    public async Task Get_MalformedOrMultipleRanges(string range, int expected)
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, "/disk.img");
        req.Headers.TryAddWithoutValidation("Range", range);
        using var r = await _client.SendAsync(req, Ct);
        Assert.Equal(expected, (int)r.StatusCode);
        var body = await r.Content.ReadAsByteArrayAsync(Ct);
        if (expected == 416) Assert.Equal("bytes */10000", r.Content.Headers.ContentRange!.ToString());
        else Assert.Equal(_data, body);
    }

    [Fact]
    public async Task Get_ConditionalIs304WithEmptyBody()
    {
        using var first = await _client.GetAsync("/disk.img", Ct);
        var etag = first.Headers.ETag!;
        using var req = new HttpRequestMessage(HttpMethod.Get, "/disk.img");
        req.Headers.IfNoneMatch.Add(etag);
        using var r = await _client.SendAsync(req, Ct);
        Assert.Equal(HttpStatusCode.NotModified, r.StatusCode);
        Assert.Empty(await r.Content.ReadAsByteArrayAsync(Ct));

        using var req2 = new HttpRequestMessage(HttpMethod.Get, "/disk.img");
        req2.Headers.IfModifiedSince = first.Content.Headers.LastModified;
        using var r2 = await _client.SendAsync(req2, Ct);
        Assert.Equal(HttpStatusCode.NotModified, r2.StatusCode);

        // If-Range with a stale validator: the whole file, not the range.
        using var req3 = new HttpRequestMessage(HttpMethod.Get, "/disk.img");
        req3.Headers.Range = new RangeHeaderValue(0, 9);
        req3.Headers.TryAddWithoutValidation("If-Range", "\"stale\"");
        using var r3 = await _client.SendAsync(req3, Ct);
        Assert.Equal(HttpStatusCode.OK, r3.StatusCode);
        using var req4 = new HttpRequestMessage(HttpMethod.Get, "/disk.img");
        req4.Headers.Range = new RangeHeaderValue(0, 9);
        req4.Headers.TryAddWithoutValidation("If-Range", etag.ToString());
        using var r4 = await _client.SendAsync(req4, Ct);
        Assert.Equal(HttpStatusCode.PartialContent, r4.StatusCode);
    }

    [Fact]
    public async Task Head_HasLengthAndNoBody()
    {
        var reply = await RawAsync("HEAD /disk.img HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200", reply, StringComparison.Ordinal);
        Assert.Contains("Content-Length: 10000", reply, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\n", reply, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KeepAlive_TwoRequestsOnOneConnection()
    {
        var reply = await RawAsync("GET /disk.img HTTP/1.1\r\nHost: x\r\nRange: bytes=0-3\r\n\r\nGET /disk.img HTTP/1.1\r\nHost: x\r\nRange: bytes=4-7\r\nConnection: close\r\n\r\n");
        Assert.Equal(2, reply.Split("HTTP/1.1 206").Length - 1);
    }

    [Fact]
    public async Task SlowClient_IsDroppedWhileOthersAreServed()
    {
        using var slow = new TcpClient();
        await slow.ConnectAsync(IPAddress.Loopback, _ep.Port, Ct);
        var s = slow.GetStream();
        await s.WriteAsync(Encoding.ASCII.GetBytes("GET /disk.img HTTP/1.1\r\nHo"), Ct);
        using var other = await _client.GetAsync("/disk.img", Ct);
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
        var started = DateTime.UtcNow;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        var buf = new byte[4096];
        try { while (await s.ReadAsync(buf, cts.Token) > 0) { } }
        catch (IOException) { }
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(12), "the slow client was not dropped");
    }

    [Fact]
    public async Task OversizedHeader_Is431()
    {
        var reply = await RawAsync("GET /disk.img HTTP/1.1\r\nHost: x\r\nX-Big: " + new string('a', 20000) + "\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 431", reply, StringComparison.Ordinal);
        using var still = await _client.GetAsync("/disk.img", Ct);
        Assert.Equal(HttpStatusCode.OK, still.StatusCode);
    }

    [Fact]
    public async Task Ipxe_ScriptForKernelDirectory()
    {
        var foo = Directory.CreateDirectory(_dir.File("foo")).FullName;
        File.Copy(Cache.Kernel, Path.Combine(foo, "vmlinuz"));
        File.WriteAllBytes(Path.Combine(foo, "initrd.img"), new byte[1024]);
        File.WriteAllText(Path.Combine(foo, "cmdline.txt"), "console=ttyS0 quiet\n");
        using var req = new HttpRequestMessage(HttpMethod.Get, "/foo.ipxe");
        req.Headers.Host = "boot.example:8080";
        using var r = await _client.SendAsync(req, Ct);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("text/plain", r.Content.Headers.ContentType!.MediaType);
        Assert.Equal("#!ipxe\nkernel http://boot.example:8080/foo/vmlinuz console=ttyS0 quiet\ninitrd http://boot.example:8080/foo/initrd.img\nboot\n",
            await r.Content.ReadAsStringAsync(Ct));

        var reply = await RawAsync("GET /foo.ipxe HTTP/1.1\r\nHost: bad host!\r\nConnection: close\r\n\r\n");
        Assert.DoesNotContain("bad host", reply, StringComparison.Ordinal);

        using var none = await _client.GetAsync("/nothing.ipxe", Ct);
        Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
    }

    [Theory]
    [InlineData("/a/b", "a/b")]
    [InlineData("/", "")]
    [InlineData("/a%20b/", "a b")]
    [InlineData("/a//b", null)]
    [InlineData("/a/./b", null)]
    [InlineData("/%2e%2e", null)]
    [InlineData("/%252e", null)]
    [InlineData("/a%2fb", null)]
    [InlineData("/%c0%ae", null)]
    public void RequestPath_Parse(string raw, string? expected) => Assert.Equal(expected, RequestPath.Parse(raw));
}
