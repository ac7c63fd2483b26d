using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace DomBoot.Net.Fetching;

/// <summary>
/// Downloads a URL into a cache directory (`domboot fetch`, `kernel = "http://..."`). An entry is the file
/// <c>KEY</c> plus <c>KEY.json</c> (URL, ETag, Last-Modified, size, sha256), KEY being a hash of the URL
/// without its fragment. A cached entry is revalidated with If-None-Match/If-Modified-Since; a 304 moves no
/// body. A download is written to <c>KEY.part</c> (its validators in <c>KEY.part.json</c>), which is locked while
/// in use, resumed with Range + If-Range after a broken connection, and promoted to <c>KEY</c> only after its
/// size and the optional SHA-256 pin verify; on any failure other than the caller's cancellation the .part is
/// deleted, so nothing partial is used or left behind. A stale .part left by a dead process is resumed when it
/// has a validator, else discarded.
/// </summary>
public static class CachedFetcher
{
    private const int CopyChunkBytes = 128 * 1024;
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    public static async Task<FetchResult> FetchAsync(Uri url, string cacheDir, FetchOptions options,
        IProgress<long>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(url);
        ArgumentNullException.ThrowIfNull(cacheDir);
        ArgumentNullException.ThrowIfNull(options);
        if (!url.IsAbsoluteUri || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
            throw new FetchException($"fetch {url}: only http and https URLs can be fetched");
        var pin = Pin(url, options.ExpectedSha256);
        var target = new UriBuilder(url) { Fragment = "" }.Uri;

        Directory.CreateDirectory(cacheDir);
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(target.AbsoluteUri)))[..32];
        var entry = Path.Combine(cacheDir, key);
        var paths = new EntryPaths(entry, entry + ".json", entry + ".part", entry + ".part.json");

        FileStream part;
        try { part = new FileStream(paths.Part, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
        catch (IOException ex) { throw FetchException.For(target, "another fetch of this URL is in progress (" + paths.Part + " is locked)", ex); }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Timeout);
        bool keepPart = false;
        try
        {
            using var handler = new SocketsHttpHandler
            {
                AllowAutoRedirect = false,
                AutomaticDecompression = DecompressionMethods.None,
                ConnectTimeout = TimeSpan.FromSeconds(30),
                MaxResponseHeadersLength = 64,
                UseCookies = false,
            };
            using var client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
            return await DownloadAsync(client, target, paths, part, pin, options, progress, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            keepPart = true; // the caller stopped us: the .part and its validators stay for a later resume
            throw;
        }
        catch (OperationCanceledException ex)
        {
            throw FetchException.For(target, string.Create(CultureInfo.InvariantCulture, $"timed out after {options.Timeout.TotalSeconds:F0} s"), ex);
        }
        catch (HttpRequestException ex)
        {
            throw ex.HttpRequestError is HttpRequestError.InvalidResponse or HttpRequestError.ResponseEnded
                ? new FetchProtocolException($"fetch {target}: invalid HTTP response: {OneLine(ex.Message)}", ex)
                : FetchException.For(target, OneLine(ex.Message), ex);
        }
        catch (IOException ex) when (ex is not FetchException)
        {
            throw FetchException.For(target, OneLine(ex.Message), ex);
        }
        finally
        {
            await part.DisposeAsync().ConfigureAwait(false);
            if (!keepPart)
            {
                TryDelete(paths.Part);
                TryDelete(paths.PartMeta);
            }
        }
    }

    private static async Task<FetchResult> DownloadAsync(HttpClient client, Uri target, EntryPaths paths, FileStream part,
        string? pin, FetchOptions options, IProgress<long>? progress, CancellationToken ct)
    {
        var cached = ReadJson<CacheMetadata>(paths.Meta);
        if (cached is not null && (cached.Url != target.AbsoluteUri || !File.Exists(paths.Entry)
            || new FileInfo(paths.Entry).Length != cached.Size || (pin is not null && cached.Sha256 != pin)))
            cached = null;

        // A stale .part: resume it only when its validators are known.
        var partMeta = part.Length > 0 ? ReadJson<PartMetadata>(paths.PartMeta) : null;
        if (partMeta is null || partMeta.Url != target.AbsoluteUri || (partMeta.ETag is null && partMeta.LastModified is null)
            || part.Length > options.MaxBytes)
        {
            partMeta = null;
            part.SetLength(0);
        }
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long have = part.Length;
        if (have > 0)
        {
            part.Position = 0;
            var buf = new byte[CopyChunkBytes];
            int n;
            while ((n = await part.ReadAsync(buf, ct).ConfigureAwait(false)) > 0) hash.AppendData(buf, 0, n);
        }
        part.Position = have;

        bool strict = false; // true once this call itself has seen the validators: a 200 then means "changed"
        long transferred = 0;
        int attempts = 0;
        long? total = partMeta?.Total;
        while (true)
        {
            using var response = await SendAsync(client, target, options, request =>
            {
                if (have > 0 && partMeta is not null)
                {
                    request.Headers.Range = new RangeHeaderValue(have, null);
                    if (partMeta.ETag is { } et && !et.StartsWith("W/", StringComparison.Ordinal)) request.Headers.TryAddWithoutValidation("If-Range", et);
                    else if (partMeta.LastModified is { } lm) request.Headers.TryAddWithoutValidation("If-Range", lm);
                }
                else if (cached is not null)
                {
                    if (cached.ETag is { } et) request.Headers.TryAddWithoutValidation("If-None-Match", et);
                    if (cached.LastModified is { } lm) request.Headers.TryAddWithoutValidation("If-Modified-Since", lm);
                }
            }, ct).ConfigureAwait(false);

            var status = (int)response.StatusCode;
            var etag = response.Headers.ETag?.ToString();
            var lastModified = response.Content.Headers.LastModified?.ToString("R", CultureInfo.InvariantCulture);
            if (status == 304 && cached is not null && have == 0)
                return new FetchResult(paths.Entry, true, 0, cached.Sha256);
            if (status == 200)
            {
                if (strict)
                    throw new FetchIntegrityException($"fetch {target}: the file changed between range requests (200 instead of 206)");
                have = 0;
                part.SetLength(0);
                part.Position = 0;
                hash.GetHashAndReset();
                total = response.Content.Headers.ContentLength;
                partMeta = new PartMetadata(target.AbsoluteUri, etag, lastModified, total);
                WriteJsonAtomically(paths.PartMeta, partMeta);
            }
            else if (status == 206 && have > 0 && partMeta is not null)
            {
                var cr = response.Content.Headers.ContentRange;
                if (cr is null || cr.Unit != "bytes" || cr.From != have || cr.Length is null)
                    throw new FetchProtocolException($"fetch {target}: 206 with Content-Range {Quote(cr?.ToString())} for a request from byte {have}");
                if ((partMeta.ETag is not null && etag != partMeta.ETag)
                    || (partMeta.ETag is null && partMeta.LastModified is not null && lastModified != partMeta.LastModified)
                    || (partMeta.Total is not null && cr.Length != partMeta.Total))
                    throw new FetchIntegrityException($"fetch {target}: the file changed between range requests (ETag {Quote(partMeta.ETag)} became {Quote(etag)})");
                total = cr.Length;
            }
            else
            {
                throw new FetchProtocolException(string.Create(CultureInfo.InvariantCulture,
                    $"fetch {target}: HTTP {status} {Quote(response.ReasonPhrase)}"));
            }
            if (total is long t && t > options.MaxBytes)
                throw new FetchIntegrityException(string.Create(CultureInfo.InvariantCulture, $"fetch {target}: size {t} exceeds the limit of {options.MaxBytes} bytes"));
            strict = true;

            try
            {
                var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
                await using (body.ConfigureAwait(false))
                {
                    var buf = new byte[CopyChunkBytes];
                    int n;
                    while ((n = await body.ReadAsync(buf, ct).ConfigureAwait(false)) > 0)
                    {
                        if (have + n > options.MaxBytes)
                            throw new FetchIntegrityException(string.Create(CultureInfo.InvariantCulture, $"fetch {target}: body exceeds the limit of {options.MaxBytes} bytes"));
                        await part.WriteAsync(buf.AsMemory(0, n), ct).ConfigureAwait(false);
                        hash.AppendData(buf, 0, n);
                        have += n;
                        transferred += n;
                        progress?.Report(have);
                    }
                }
            }
            catch (IOException ex) when (ex is not FetchException && attempts < options.MaxResumeAttempts && !ct.IsCancellationRequested)
            {
                attempts++;
                await part.FlushAsync(ct).ConfigureAwait(false);
                if (have == 0 || (partMeta.ETag is null && partMeta.LastModified is null))
                    strict = false; // nothing to resume against: start over
                continue;
            }
            break;
        }

        if (total is long expected && have != expected)
            throw new FetchIntegrityException(string.Create(CultureInfo.InvariantCulture, $"fetch {target}: received {have} bytes; Content-Length said {expected}"));
        var sha = Convert.ToHexStringLower(hash.GetHashAndReset());
        if (pin is not null && sha != pin)
            throw new FetchIntegrityException($"fetch {target}: sha256 is {sha}; expected {pin}");

        // Promote: the old metadata goes first, so a crash never pairs new data with old validators.
        await part.FlushAsync(ct).ConfigureAwait(false);
        part.Flush(flushToDisk: true);
        TryDelete(paths.Meta);
        File.Move(paths.Part, paths.Entry, overwrite: true);
        WriteJsonAtomically(paths.Meta, new CacheMetadata(target.AbsoluteUri, partMeta?.ETag, partMeta?.LastModified, have, sha));
        TryDelete(paths.PartMeta);
        return new FetchResult(paths.Entry, false, transferred, sha);
    }

    /// <summary>Sends a GET, following at most <see cref="FetchOptions.MaxRedirects"/> redirects itself.</summary>
    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, Uri target, FetchOptions options,
        Action<HttpRequestMessage> configure, CancellationToken ct)
    {
        var current = target;
        var visited = new HashSet<string>(StringComparer.Ordinal) { current.AbsoluteUri };
        for (int hops = 0; ; hops++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, current) { Version = HttpVersion.Version11 };
            configure(request);
            var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            int status = (int)response.StatusCode;
            if (status is not (301 or 302 or 303 or 307 or 308)) return response;
            var location = response.Headers.Location;
            response.Dispose();
            if (location is null)
                throw new FetchProtocolException(string.Create(CultureInfo.InvariantCulture, $"fetch {target}: redirect {status} without Location"));
            var next = location.IsAbsoluteUri ? location : new Uri(current, location);
            if (next.Scheme != Uri.UriSchemeHttp && next.Scheme != Uri.UriSchemeHttps)
                throw new FetchProtocolException($"fetch {target}: redirect to a non-HTTP URL {Quote(next.ToString())}");
            if (!visited.Add(next.AbsoluteUri))
                throw new FetchProtocolException($"fetch {target}: redirect loop at {Quote(next.ToString())}");
            if (hops + 1 > options.MaxRedirects)
                throw new FetchProtocolException(string.Create(CultureInfo.InvariantCulture, $"fetch {target}: more than {options.MaxRedirects} redirects"));
            current = next;
        }
    }

    /// <summary>The SHA-256 pin from <c>#sha256=HEX</c> and/or the options; both given must agree.</summary>
    internal static string? Pin(Uri url, string? fromOptions)
    {
        string? fromUrl = null;
        var fragment = url.IsAbsoluteUri ? url.Fragment : "";
        if (fragment.StartsWith("#sha256=", StringComparison.OrdinalIgnoreCase)) fromUrl = NormalizeHex(url, fragment[8..]);
        else if (fragment.Length > 1) throw new FetchException($"fetch {url}: unknown fragment {Quote(fragment)}; expected #sha256=HEX");
        var opt = fromOptions is null ? null : NormalizeHex(url, fromOptions);
        if (fromUrl is not null && opt is not null && fromUrl != opt)
            throw new FetchException($"fetch {url}: the #sha256 fragment and the expected sha256 differ");
        return fromUrl ?? opt;
    }

    private static string NormalizeHex(Uri url, string hex)
    {
        if (hex.Length != 64 || !hex.All(char.IsAsciiHexDigit))
            throw new FetchException($"fetch {url}: sha256 pin {Quote(hex)} is not 64 hex digits");
        return hex.ToLowerInvariant();
    }

    private static T? ReadJson<T>(string path) where T : class
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists || info.Length > 64 * 1024) return null;
            return JsonSerializer.Deserialize<T>(File.ReadAllBytes(path), Json);
        }
        catch (JsonException) { return null; }
        catch (IOException) { return null; }
    }

    private static void WriteJsonAtomically<T>(string path, T value)
    {
        var tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(fs, value, Json);
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");

    private static string Quote(string? s)
    {
        if (s is null) return "(none)";
        var t = s.Length > 64 ? s[..64] + "..." : s;
        return "\"" + new string(t.Select(c => c < 0x20 || c == 0x7f ? '?' : c).ToArray()) + "\"";
    }

    private sealed record EntryPaths(string Entry, string Meta, string Part, string PartMeta);

    internal sealed record CacheMetadata(string Url, string? ETag, string? LastModified, long Size, string Sha256);

    internal sealed record PartMetadata(string Url, string? ETag, string? LastModified, long? Total);
}
