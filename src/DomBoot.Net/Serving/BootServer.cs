using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;

namespace DomBoot.Net.Serving;

/// <summary>
/// The HTTP boot server (`domboot serve`): Kestrel serving the files under one root with GET/HEAD, HTTP/1.1
/// keep-alive, single byte ranges, ETag/Last-Modified validators with If-None-Match, If-Modified-Since and
/// If-Range, and generated iPXE scripts (<see cref="IpxeScripts"/>). Every request path is confined to the
/// root: the target is checked by <see cref="RequestPath"/>, and the opened file's real path (read back from
/// /proc/self/fd, so symlinks anywhere in the path are resolved) must lie under the root's real path.
/// </summary>
public sealed partial class BootServer : IAsyncDisposable
{
    private const int CopyChunkBytes = 256 * 1024;
    private readonly BootServerOptions _options;
    private readonly TextWriter? _accessLog;
    private readonly IpxeScripts _scripts;
    private WebApplication? _app;
    private string _rootReal = "";
    private IPEndPoint _bound = new(IPAddress.Loopback, 0);
    private long _bodyBytesSent;
    private long _requestCount;

    public BootServer(BootServerOptions? options = null, TextWriter? accessLog = null)
    {
        _options = options ?? new BootServerOptions();
        _accessLog = accessLog is null ? null : TextWriter.Synchronized(accessLog);
        _scripts = new IpxeScripts(_options.MaxInspectedKernelBytes);
    }

    /// <summary>Body bytes written by this server so far (file contents and scripts, not headers).</summary>
    public long BodyBytesSent => Interlocked.Read(ref _bodyBytesSent);

    /// <summary>Requests answered so far.</summary>
    public long RequestCount => Interlocked.Read(ref _requestCount);

    /// <summary>Starts serving <paramref name="root"/> on <paramref name="listen"/> (port 0: an ephemeral port)
    /// and returns the bound address.</summary>
    public async Task<IPEndPoint> StartAsync(string root, IPEndPoint listen, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(listen);
        if (_app is not null) throw new InvalidOperationException("the server is already started");
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"serve: {root}: no such directory");
        _rootReal = RealPath(root) ?? throw new DirectoryNotFoundException($"serve: {root}: cannot resolve");

        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ContentRootPath = _rootReal });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestHeadersTotalSize = _options.MaxRequestHeadersTotalSize;
            k.Limits.MaxRequestLineSize = _options.MaxRequestLineSize;
            k.Limits.MaxRequestHeaderCount = 100;
            k.Limits.RequestHeadersTimeout = _options.RequestHeadersTimeout;
            k.Limits.KeepAliveTimeout = _options.KeepAliveTimeout;
            k.Limits.MaxConcurrentConnections = _options.MaxConcurrentConnections;
            k.Limits.MaxRequestBodySize = 0;
            k.Limits.MinRequestBodyDataRate = new Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate(240, TimeSpan.FromSeconds(5));
            k.Limits.MinResponseDataRate = new Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate(240, TimeSpan.FromSeconds(5));
            k.Listen(listen);
        });
        var app = builder.Build();
        app.Run(HandleAsync);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        _app = app;
        var address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var uri = new Uri(address);
        _bound = new IPEndPoint(listen.Address, uri.Port);
        return _bound;
    }

    /// <summary>Stops accepting and closes connections.</summary>
    public async Task StopAsync()
    {
        if (_app is { } app)
        {
            _app = null;
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await app.StopAsync(cts.Token).ConfigureAwait(false);
            await app.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    private async Task HandleAsync(HttpContext context)
    {
        var started = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _requestCount);
        long sent = 0;
        var request = context.Request;
        var rawTarget = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? request.Path.Value ?? "";
        try
        {
            sent = await ServeAsync(context, rawTarget).ConfigureAwait(false);
        }
        finally
        {
            if (_accessLog is { } log)
            {
                var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{context.Connection.RemoteIpAddress}:{context.Connection.RemotePort} \"{request.Method} {LogQuote(rawTarget)} {request.Protocol}\" {context.Response.StatusCode} {sent} {ms:F1}ms"));
            }
        }
    }

    private async Task<long> ServeAsync(HttpContext context, string rawTarget)
    {
        var request = context.Request;
        var response = context.Response;
        bool head = HttpMethods.IsHead(request.Method);
        if (!head && !HttpMethods.IsGet(request.Method))
        {
            response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            response.Headers.Allow = "GET, HEAD";
            return 0;
        }
        var rel = RequestPath.Parse(rawTarget);
        if (rel is null)
        {
            response.StatusCode = StatusCodes.Status400BadRequest;
            return 0;
        }
        var full = rel.Length == 0 ? _rootReal : Path.Join(_rootReal, rel);

        FileStream? file = null;
        try
        {
            if (File.Exists(full))
            {
                try { file = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None); }
                catch (UnauthorizedAccessException) { file = null; }
                catch (IOException) { file = null; }
                if (file is not null && !IsUnderRoot(OpenedPath(file)))
                {
                    await file.DisposeAsync().ConfigureAwait(false);
                    file = null;
                }
            }
            if (file is null)
            {
                if (rel.EndsWith(".ipxe", StringComparison.Ordinal) && TryScript(full[..^5], context) is { } script)
                    return await SendBytesAsync(context, script, "text/plain; charset=utf-8", head).ConfigureAwait(false);
                response.StatusCode = StatusCodes.Status404NotFound;
                return 0;
            }
            return await SendFileAsync(context, file, full, head).ConfigureAwait(false);
        }
        finally
        {
            if (file is not null) await file.DisposeAsync().ConfigureAwait(false);
        }
    }

    private string? TryScript(string stemFull, HttpContext context)
    {
        // The stem's parent directory must itself resolve inside the root; the stem is then checked the same way.
        var parent = Path.GetDirectoryName(stemFull)!;
        var parentReal = RealPath(parent);
        if (parentReal is null || !IsUnderRoot(parentReal)) return null;
        var stemReal = Path.Join(parentReal, Path.GetFileName(stemFull));
        return _scripts.Generate(_rootReal, stemReal, BaseUrl(context.Request));
    }

    private async Task<long> SendFileAsync(HttpContext context, FileStream file, string full, bool head)
    {
        var request = context.Request;
        var response = context.Response;
        long length = file.Length;
        var mtime = File.GetLastWriteTimeUtc(full);
        var lastModified = new DateTimeOffset(mtime.Ticks - mtime.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero);
        var etag = string.Create(CultureInfo.InvariantCulture, $"\"{mtime.Ticks:x}-{length:x}\"");
        response.Headers.ETag = etag;
        response.Headers.LastModified = lastModified.ToString("R", CultureInfo.InvariantCulture);
        response.Headers.AcceptRanges = "bytes";
        response.ContentType = ContentTypeFor(full);

        if (NotModified(request, etag, lastModified))
        {
            response.StatusCode = StatusCodes.Status304NotModified;
            response.ContentType = null;
            return 0;
        }

        long offset = 0, count = length;
        var rangeHeader = request.Headers.Range.ToString();
        if (rangeHeader.Length > 0 && IfRangeHolds(request, etag, lastModified))
        {
            switch (ByteRange.Parse(rangeHeader, length, out var range))
            {
                case RangeOutcome.Unsatisfiable:
                    response.StatusCode = StatusCodes.Status416RangeNotSatisfiable;
                    response.Headers.ContentRange = string.Create(CultureInfo.InvariantCulture, $"bytes */{length}");
                    response.ContentType = null;
                    return 0;
                case RangeOutcome.Partial:
                    response.StatusCode = StatusCodes.Status206PartialContent;
                    response.Headers.ContentRange = string.Create(CultureInfo.InvariantCulture, $"bytes {range.First}-{range.Last}/{length}");
                    offset = range.First;
                    count = range.Length;
                    break;
            }
        }
        response.ContentLength = count;
        if (head || count == 0) return 0;
        // Positional reads straight into Kestrel's output pipe: no intermediate copy, no shared Position.
        var writer = response.BodyWriter;
        var abort = context.RequestAborted;
        long done = 0;
        while (done < count)
        {
            var memory = writer.GetMemory(CopyChunkBytes);
            int want = (int)Math.Min(memory.Length, count - done);
            int n = await RandomAccess.ReadAsync(file.SafeFileHandle, memory[..want], offset + done, abort).ConfigureAwait(false);
            if (n == 0) break; // the file shrank under us; Kestrel aborts the response as shorter than Content-Length
            writer.Advance(n);
            done += n;
            Interlocked.Add(ref _bodyBytesSent, n); // counted before the flush, so a client never sees bytes not yet counted
            var flush = await writer.FlushAsync(abort).ConfigureAwait(false);
            if (flush.IsCanceled || flush.IsCompleted) break;
        }
        return done;
    }

    private async Task<long> SendBytesAsync(HttpContext context, string text, string contentType, bool head)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        context.Response.ContentType = contentType;
        context.Response.ContentLength = bytes.Length;
        context.Response.Headers.CacheControl = "no-cache";
        if (head) return 0;
        Interlocked.Add(ref _bodyBytesSent, bytes.Length);
        await context.Response.Body.WriteAsync(bytes, context.RequestAborted).ConfigureAwait(false);
        return bytes.Length;
    }

    private static bool NotModified(HttpRequest request, string etag, DateTimeOffset lastModified)
    {
        var inm = request.Headers.IfNoneMatch.ToString();
        if (inm.Length > 0)
        {
            if (inm.Trim() == "*") return true;
            foreach (var tag in inm.Split(','))
            {
                var t = tag.Trim();
                if (t.StartsWith("W/", StringComparison.Ordinal)) t = t[2..];
                if (t == etag) return true;
            }
            return false;
        }
        var ims = request.Headers.IfModifiedSince.ToString();
        return ims.Length > 0 && HeaderUtilities.TryParseDate(ims, out var since) && lastModified <= since;
    }

    private static bool IfRangeHolds(HttpRequest request, string etag, DateTimeOffset lastModified)
    {
        var ifRange = request.Headers.IfRange.ToString().Trim();
        if (ifRange.Length == 0) return true;
        if (ifRange.StartsWith('"')) return ifRange == etag;
        if (ifRange.StartsWith("W/", StringComparison.Ordinal)) return false;
        return HeaderUtilities.TryParseDate(ifRange, out var date) && date == lastModified;
    }

    private static string ContentTypeFor(string path) => Path.GetExtension(path).ToUpperInvariant() switch
    {
        ".IPXE" or ".TXT" or ".CFG" or ".CONF" => "text/plain; charset=utf-8",
        ".HTML" or ".HTM" => "text/html; charset=utf-8",
        ".JSON" => "application/json",
        _ => "application/octet-stream",
    };

    /// <summary>The URL prefix for generated scripts: the request's Host when it is a plain host[:port],
    /// otherwise the bound address.</summary>
    private string BaseUrl(HttpRequest request)
    {
        var host = request.Headers.Host.ToString();
        if (IsValidHost(host)) return "http://" + host;
        var addr = _bound.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{_bound.Address}]" : _bound.Address.ToString();
        return string.Create(CultureInfo.InvariantCulture, $"http://{addr}:{_bound.Port}");
    }

    internal static bool IsValidHost(string host)
    {
        if (host.Length == 0 || host.Length > 260) return false;
        var hostPart = host;
        if (host.StartsWith('['))
        {
            int close = host.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || !IPAddress.TryParse(host.AsSpan(1, close - 1), out var v6) || v6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6) return false;
            var rest = host[(close + 1)..];
            return rest.Length == 0 || (rest[0] == ':' && IsPort(rest[1..]));
        }
        int colon = host.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            if (!IsPort(host[(colon + 1)..])) return false;
            hostPart = host[..colon];
        }
        if (hostPart.Length == 0 || hostPart.Length > 253) return false;
        foreach (var label in hostPart.Split('.'))
        {
            if (label.Length == 0 || label.Length > 63 || label[0] == '-' || label[^1] == '-') return false;
            foreach (char c in label)
                if (!char.IsAsciiLetterOrDigit(c) && c != '-') return false;
        }
        return true;
    }

    private static bool IsPort(string s) =>
        s.Length is > 0 and <= 5 && s.All(char.IsAsciiDigit) && int.Parse(s, CultureInfo.InvariantCulture) is > 0 and <= 65535;

    private bool IsUnderRoot(string? real) =>
        real is not null && (real == _rootReal || real.StartsWith(_rootReal.TrimEnd('/') + "/", StringComparison.Ordinal));

    /// <summary>The real path of an open file, read from /proc/self/fd (no race with a swapped symlink).</summary>
    private static string? OpenedPath(FileStream file)
    {
        var fd = file.SafeFileHandle.DangerousGetHandle().ToInt64();
        try { return new FileInfo("/proc/self/fd/" + fd.ToString(CultureInfo.InvariantCulture)).LinkTarget; }
        catch (IOException) { return null; }
    }

    internal static string? RealPath(string path)
    {
        var p = NativeMethods.realpath(path, IntPtr.Zero);
        if (p == IntPtr.Zero) return null;
        try { return Marshal.PtrToStringUTF8(p); }
        finally { NativeMethods.free(p); }
    }

    private static string LogQuote(string s)
    {
        var sb = new StringBuilder();
        foreach (char c in s.Length > 256 ? s[..256] : s)
            sb.Append(c is < (char)0x20 or (char)0x7f or '"' or '\\' ? string.Create(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}") : c.ToString());
        return sb.ToString();
    }

    private static class NativeMethods
    {
#pragma warning disable SYSLIB1054 // matches the repo's existing DllImport use (UnixLStat); no unsafe blocks in this project
        [DllImport("libc", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        internal static extern IntPtr realpath([MarshalAs(UnmanagedType.LPUTF8Str)] string path, IntPtr resolved);

        [DllImport("libc")]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        internal static extern void free(IntPtr p);
#pragma warning restore SYSLIB1054
    }
}
