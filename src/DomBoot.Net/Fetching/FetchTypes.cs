namespace DomBoot.Net.Fetching;

/// <summary>Bounds for one <see cref="CachedFetcher.FetchAsync"/>.</summary>
public sealed record FetchOptions
{
    /// <summary>Largest body accepted; a longer (or endless) body is an error.</summary>
    public long MaxBytes { get; init; } = 4L * 1024 * 1024 * 1024;
    /// <summary>Most redirects followed.</summary>
    public int MaxRedirects { get; init; } = 5;
    /// <summary>Required SHA-256 of the body (hex); a <c>#sha256=HEX</c> URL fragment sets it too.</summary>
    public string? ExpectedSha256 { get; init; }
    /// <summary>Time limit for the whole fetch, retries included.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>Resumptions after a broken connection.</summary>
    public int MaxResumeAttempts { get; init; } = 3;
}

/// <summary>What <see cref="CachedFetcher.FetchAsync"/> produced.</summary>
/// <param name="LocalPath">The verified cache entry.</param>
/// <param name="FromCache">True when the server answered 304 and no body moved.</param>
/// <param name="BytesTransferred">Body bytes received in this call.</param>
/// <param name="Sha256">Lower-case hex SHA-256 of the entry.</param>
public sealed record FetchResult(string LocalPath, bool FromCache, long BytesTransferred, string Sha256);

/// <summary>A fetch failed: the message is one line naming the URL.</summary>
public class FetchException : IOException
{
    public FetchException() { }
    public FetchException(string message) : base(message) { }
    public FetchException(string message, Exception inner) : base(message, inner) { }

    internal static FetchException For(Uri url, string detail, Exception? inner = null) =>
        inner is null ? new FetchException($"fetch {url}: {detail}") : new FetchException($"fetch {url}: {detail}", inner);
}

/// <summary>The body did not verify (size, SHA-256 pin, or the file changed between range requests).</summary>
public sealed class FetchIntegrityException : FetchException
{
    public FetchIntegrityException() { }
    public FetchIntegrityException(string message) : base(message) { }
    public FetchIntegrityException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>The server's answer was not usable HTTP (garbage, bad status, redirect loop).</summary>
public sealed class FetchProtocolException : FetchException
{
    public FetchProtocolException() { }
    public FetchProtocolException(string message) : base(message) { }
    public FetchProtocolException(string message, Exception inner) : base(message, inner) { }
}
