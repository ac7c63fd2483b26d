namespace DomBoot.TestSupport;

/// <summary>The artefacts scripts/setup.sh fetches with apt-get download and unpacks (same rule as the CLI).</summary>
public static class Cache
{
    public static string Root =>
        Environment.GetEnvironmentVariable("DOMBOOT_CACHE") is { Length: > 0 } d ? d
        : System.IO.Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x ? x
            : System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "domboot");

    private static string Need(string relative)
    {
        var p = System.IO.Path.Combine(Root, relative);
        if (!File.Exists(p))
            Assert.Fail($"{p} is missing; run `{Tools.SetupCommand}` (it downloads the Debian cloud kernel, busybox and Xen into {Root})");
        return p;
    }

    /// <summary>The Debian cloud kernel bzImage.</summary>
    public static string Kernel => Need("kernel/vmlinuz");

    /// <summary>The cloud kernel's release string ("6.1.0-56-cloud-amd64"), as setup.sh recorded it.</summary>
    public static string KernelRelease => File.ReadAllText(Need("kernel/release")).Trim();

    /// <summary>
    /// The folder of the cloud kernel's modules the toolstack test guest loads (virtio, virtio_ring, virtio_pci*,
    /// virtio_blk, failover, net_failover, virtio_net, button, evdev, pvpanic, pvpanic-mmio; uncompressed .ko).
    /// </summary>
    public static string Modules
    {
        get
        {
            // pvpanic-mmio.ko is the last one setup.sh copies, and the folder is renamed into place whole
            Need("kernel/modules/pvpanic-mmio.ko");
            return System.IO.Path.Combine(Root, "kernel", "modules");
        }
    }

    /// <summary>Static busybox from busybox-static.</summary>
    public static string Busybox => Need("busybox/busybox");

    /// <summary>Debian's Xen 4.17 hypervisor, gzip-compressed (xen-4.17-amd64.gz).</summary>
    public static string XenGz => Need("xen/xen.gz");
}
