namespace DomBoot.Engine;

/// <summary>The folder scripts/setup.sh fills with the Debian cloud kernel, static busybox and Xen (DOMBOOT_CACHE overrides).</summary>
public static class ArtifactCache
{
    public static string Root =>
        Environment.GetEnvironmentVariable("DOMBOOT_CACHE") is { Length: > 0 } d ? d
        : Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x ? x
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "domboot");

    public static string KernelPath => Require("kernel/vmlinuz", "the Debian cloud kernel");
    public static string BusyboxPath => Require("busybox/busybox", "static busybox");

    private static string Require(string relative, string what)
    {
        var p = Path.Combine(Root, relative);
        if (!File.Exists(p))
            throw new Formats.Errors.UnavailableException($"{what} is not in the cache ({p}); run scripts/setup.sh");
        return p;
    }
}
