namespace DomBoot.Net.Serving;

/// <summary>Limits and timeouts of <see cref="BootServer"/>; the defaults suit a boot server on a host network.</summary>
public sealed record BootServerOptions
{
    /// <summary>Total size of the request headers; larger requests get 431.</summary>
    public int MaxRequestHeadersTotalSize { get; init; } = 16 * 1024;
    /// <summary>Longest request line; longer ones get 414.</summary>
    public int MaxRequestLineSize { get; init; } = 8 * 1024;
    /// <summary>A client that has not sent its whole header block within this is disconnected.</summary>
    public TimeSpan RequestHeadersTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>An idle keep-alive connection is closed after this.</summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Most simultaneous connections.</summary>
    public long MaxConcurrentConnections { get; init; } = 1024;
    /// <summary>Largest kernel file inspected when generating an iPXE script.</summary>
    public long MaxInspectedKernelBytes { get; init; } = 256L * 1024 * 1024;
}
