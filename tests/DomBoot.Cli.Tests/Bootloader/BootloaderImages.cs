using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Bootloader;

/// <summary>Guest disks for the `domboot bootloader` tests, each built once per class on first use.</summary>
public sealed class BootloaderImages : IDisposable
{
    public const string V10 = "6.1.0-10-amd64";
    public const string RootUuid = "0a1b2c3d-0000-4000-8000-000000000001";
    public const string BootUuid = "0a1b2c3d-0000-4000-8000-000000000002";
    public const string Recovery = $"Debian GNU/Linux, with Linux {V10} (recovery mode)";
    public const string Advanced = "Advanced options for Debian GNU/Linux";

    private readonly TempDir _dir = new("domboot-bl-cli");
    private readonly Dictionary<string, string> _built = [];
    private readonly Lock _gate = new();
    internal DiskBuilder Builder { get; }

    public BootloaderImages() => Builder = new DiskBuilder(_dir.Path);

    public string Scratch => _dir.Path;
    public static byte[] Initrd => DiskBuilder.RandomBytes(10, 64 * 1024 + 10);
    public static string InitrdSha => Tools.Sha256(Initrd);
    public static string KernelSha => Tools.Sha256(Cache.Kernel);

    /// <summary>A Debian-style grub.cfg; entry args use single spaces (pygrub keeps double spaces verbatim, GRUB joins words with one).</summary>
    public static string DebianGrubCfg(string head = "set default=\"0\"\n", string prefix = "/boot") => head + $$"""
        set timeout=5
        menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --id 'gnulinux-simple' {
        	insmod ext2
        	search --no-floppy --fs-uuid --set=root {{RootUuid}}
        	linux	{{prefix}}/vmlinuz-{{V10}} root=/dev/xvda1 ro quiet
        	initrd	{{prefix}}/initrd.img-{{V10}}
        }
        submenu 'Advanced options for Debian GNU/Linux' --id 'gnulinux-advanced' {
        	menuentry 'Debian GNU/Linux, with Linux {{V10}} (recovery mode)' --id 'gnulinux-recovery' {
        		linux	{{prefix}}/vmlinuz-{{V10}} root=/dev/xvda1 ro single
        		initrd	{{prefix}}/initrd.img-{{V10}}
        	}
        }

        """;

    public static Dictionary<string, byte[]?> Root(string? grubCfg, params (string Path, byte[]? Content)[] extra)
    {
        var files = new Dictionary<string, byte[]?>
        {
            [$"boot/vmlinuz-{V10}"] = null,
            [$"boot/initrd.img-{V10}"] = Initrd,
        };
        if (grubCfg is not null) files["boot/grub/grub.cfg"] = DiskBuilder.Text(grubCfg);
        foreach (var (p, c) in extra) files[p] = c;
        return files;
    }

    /// <summary>MBR with one ext4 (p1 at 1 MiB) holding the files.</summary>
    public string Ext4Mbr(string name, IReadOnlyDictionary<string, byte[]?> files, int mib = 40) => Build(name, () =>
    {
        var img = Builder.Raw(name, mib, "label: dos\nstart=2048, type=83\n");
        DiskBuilder.Ext4(img, 1, mib - 1, Builder.Tree(files), RootUuid);
        return img;
    });

    public string Debian => Ext4Mbr("debian.img", Root(DebianGrubCfg()));

    /// <summary>default names the recovery entry by its "Submenu>Entry" title path, which pygrub does not understand.</summary>
    public string DefaultByPath => Ext4Mbr("default-path.img", Root(DebianGrubCfg($"set default=\"{Advanced}>{Recovery}\"\n")));

    /// <summary>MBR: p1 a small root, p2 extended, p5 (logical) the /boot filesystem; pygrub reads primary partitions only.</summary>
    public string LogicalBoot => Build("logical.img", () =>
    {
        var img = Builder.Raw("logical.img", 48, "label: dos\nstart=2048, size=8192, type=83\nstart=10240, type=5\nstart=12288, type=83\n");
        DiskBuilder.Ext4(img, 1, 4, Builder.Tree(new Dictionary<string, byte[]?> { ["etc/fstab"] = DiskBuilder.Text($"UUID={RootUuid} / ext4 defaults 0 1\n") }), RootUuid);
        DiskBuilder.Ext4(img, 6, 41, Builder.Tree(new Dictionary<string, byte[]?>
        {
            [$"vmlinuz-{V10}"] = null,
            [$"initrd.img-{V10}"] = Initrd,
            ["grub/grub.cfg"] = DiskBuilder.Text(DebianGrubCfg(prefix: "").Replace($"--set=root {RootUuid}", $"--set=root {BootUuid}", StringComparison.Ordinal)),
        }), BootUuid);
        return img;
    });

    /// <summary>MBR with an XFS v5 /boot (p1) holding /grub2/grub.cfg at its top, as RHEL lays it out.</summary>
    public string XfsBoot => Build("xfs.img", () =>
    {
        var img = Builder.Raw("xfs.img", 321, "label: dos\nstart=2048, type=83\n");
        Builder.Xfs(img, 1, 320, Builder.Tree(new Dictionary<string, byte[]?>
        {
            [$"vmlinuz-{V10}"] = null,
            [$"initrd.img-{V10}"] = Initrd,
            ["grub2/grub.cfg"] = DiskBuilder.Text(DebianGrubCfg(prefix: "").Replace($"--set=root {RootUuid}", $"--set=root {BootUuid}", StringComparison.Ordinal)),
        }), BootUuid);
        return img;
    });

    public string Build(string name, Func<string> build)
    {
        lock (_gate)
        {
            if (_built.TryGetValue(name, out var p)) return p;
            p = build();
            _built[name] = p;
            return p;
        }
    }

    public void Dispose() => _dir.Dispose();
}
