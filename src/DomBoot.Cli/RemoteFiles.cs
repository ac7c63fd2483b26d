using DomBoot.Net.Fetching;

namespace DomBoot.Cli;

/// <summary>
/// `run --kernel http://host:port/path[#sha256=HEX]` (and --initrd, --module): fetched through the HTTP cache
/// (revalidated, resumable, size-capped, pinned when asked), then used as a local file.
/// </summary>
internal static class RemoteFiles
{
    public static string CacheDirectory =>
        Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x ? x
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "domboot", "http");

    /// <summary>The supervisor's resolver for kernel= and ramdisk= (a plain path comes back unchanged).</summary>
    public static string LocalPath(string pathOrUrl) => Local(pathOrUrl)!;

    public static string? Local(string? pathOrUrl)
    {
        if (pathOrUrl is null) return null;
        if (!pathOrUrl.StartsWith("http://", StringComparison.OrdinalIgnoreCase) && !pathOrUrl.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
            return pathOrUrl;
        if (!Uri.TryCreate(pathOrUrl, UriKind.Absolute, out var uri)) throw new UsageException($"{pathOrUrl} is not a valid URL");
        string? pin = null;
        const string marker = "#sha256=";
        int at = pathOrUrl.IndexOf(marker, StringComparison.OrdinalIgnoreCase);
        if (at >= 0) pin = pathOrUrl[(at + marker.Length)..];
        Directory.CreateDirectory(CacheDirectory);
        var result = CachedFetcher.FetchAsync(uri, CacheDirectory, new FetchOptions { ExpectedSha256 = pin }, null, CancellationToken.None).GetAwaiter().GetResult();
        Console.Error.WriteLine($"domboot: {uri.GetLeftPart(UriPartial.Path)}: {(result.FromCache ? "cached copy still valid (304)" : $"fetched {result.BytesTransferred} bytes")}");
        return result.LocalPath;
    }
}
