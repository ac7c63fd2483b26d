using DomBoot.TestSupport;

namespace DomBoot.Boot.Tests.Integration;

/// <summary>
/// The guest disks the integration tests boot, each built once per test class on first use (sparse, a few tens of
/// MiB of data; XFS and btrfs need 300 and 128 MiB sparse minimum sizes).
/// </summary>
public sealed class GuestImageSet : IDisposable
{
    public const string V10 = "6.1.0-10-amd64";
    public const string V9 = "6.1.0-9-amd64";
    public const string RootUuid = "0a1b2c3d-0000-4000-8000-000000000001";
    public const string BootUuid = "0a1b2c3d-0000-4000-8000-000000000002";
    public const string Root2Uuid = "0a1b2c3d-0000-4000-8000-000000000003";
    public const string XfsUuid = "0a1b2c3d-0000-4000-8000-000000000004";
    public const string BtrfsUuid = "0a1b2c3d-0000-4000-8000-000000000005";

    private readonly TempDir _dir = new("domboot-bl-it");
    private readonly Dictionary<string, string> _built = [];
    private readonly Lock _gate = new();
    internal DiskBuilder Builder { get; }

    public GuestImageSet() => Builder = new DiskBuilder(_dir.Path);

    public static byte[] Initrd(int seed) => DiskBuilder.RandomBytes(seed, 64 * 1024 + seed);
    public static string InitrdSha(int seed) => Tools.Sha256(Initrd(seed));
    public static string KernelSha => Tools.Sha256(Cache.Kernel);

    public static string DebianGrubCfg(string uuid, string head = "set default=\"0\"\n", string bootPrefix = "/boot") => head + $$"""
        set timeout=5
        menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --id 'gnulinux-simple-{{uuid}}' {
        	insmod ext2
        	search --no-floppy --fs-uuid --set=root {{uuid}}
        	echo	'Loading Linux {{V10}} ...'
        	linux	{{bootPrefix}}/vmlinuz-{{V10}} root=UUID={{RootUuid}} ro quiet
        	initrd	{{bootPrefix}}/initrd.img-{{V10}}
        }
        submenu 'Advanced options for Debian GNU/Linux' --id 'gnulinux-advanced-{{uuid}}' {
        	menuentry 'Debian GNU/Linux, with Linux {{V10}}' --id 'gnulinux-{{V10}}-advanced-{{uuid}}' {
        		search --no-floppy --fs-uuid --set=root {{uuid}}
        		linux	{{bootPrefix}}/vmlinuz-{{V10}} root=UUID={{RootUuid}} ro quiet
        		initrd	{{bootPrefix}}/initrd.img-{{V10}}
        	}
        	menuentry 'Debian GNU/Linux, with Linux {{V10}} (recovery mode)' --id 'gnulinux-{{V10}}-recovery-{{uuid}}' {
        		search --no-floppy --fs-uuid --set=root {{uuid}}
        		linux	{{bootPrefix}}/vmlinuz-{{V10}} root=UUID={{RootUuid}} ro single
        		initrd	{{bootPrefix}}/initrd.img-{{V10}}
        	}
        }

        """;

    /// <summary>A grubenv block: "# GRUB Environment Block\n", NAME=VALUE lines, '#' padding to 1024 bytes.</summary>
    public static byte[] GrubEnv(params string[] assignments)
    {
        var s = "# GRUB Environment Block\n" + string.Concat(assignments.Select(a => a + "\n"));
        return DiskBuilder.Text(s.PadRight(1024, '#'));
    }

    /// <summary>MBR, one ext4 root (p1) holding /boot and the given extra files.</summary>
    public string SingleExt4(string name, IReadOnlyDictionary<string, byte[]?> files, int mib = 48) => Build(name, () =>
    {
        var img = Builder.Raw(name, mib, "label: dos\nstart=2048, type=83\n");
        DiskBuilder.Ext4(img, 1, mib - 1, Builder.Tree(files), RootUuid);
        return img;
    });

    public static Dictionary<string, byte[]?> DebianRoot(string? grubCfg, params (string Path, byte[]? Content)[] extra)
    {
        var files = new Dictionary<string, byte[]?>
        {
            [$"boot/vmlinuz-{V10}"] = null,
            [$"boot/initrd.img-{V10}"] = Initrd(10),
            ["etc/fstab"] = DiskBuilder.Text($"UUID={RootUuid} / ext4 errors=remount-ro 0 1\n"),
        };
        if (grubCfg is not null) files["boot/grub/grub.cfg"] = DiskBuilder.Text(grubCfg);
        foreach (var (p, c) in extra) files[p] = c;
        return files;
    }

    public string DebianMbr => SingleExt4("debian-mbr.img", DebianRoot(DebianGrubCfg(RootUuid)));

    /// <summary>GPT: p1 a separate /boot (grub/grub.cfg at its top), p2 the root.</summary>
    public string GptBootRoot => Build("gpt-boot-root.img", () =>
    {
        var img = Builder.Raw("gpt-boot-root.img", 48, "label: gpt\nstart=2048, size=65536, type=L, name=boot\nstart=67584, type=L, name=root\n");
        DiskBuilder.Ext4(img, 1, 32, Builder.Tree(new Dictionary<string, byte[]?>
        {
            [$"vmlinuz-{V10}"] = null,
            [$"initrd.img-{V10}"] = Initrd(10),
            ["grub/grub.cfg"] = DiskBuilder.Text(DebianGrubCfg(BootUuid, bootPrefix: "")),
        }), BootUuid);
        DiskBuilder.Ext4(img, 33, 14, Builder.Tree(new Dictionary<string, byte[]?>
        {
            ["etc/fstab"] = DiskBuilder.Text($"UUID={RootUuid} / ext4 defaults 0 1\nUUID={BootUuid} /boot ext4 defaults 0 2\n"),
        }), RootUuid);
        return img;
    });

    public string GptBootRootQcow2 => Build("gpt-boot-root.qcow2", () => Builder.Qcow2(GptBootRoot, "gpt-boot-root.qcow2"));

    /// <summary>MBR: p1 a small root, p2 extended, p5 (logical) the /boot filesystem.</summary>
    public string LogicalBoot => Build("logical-boot.img", () =>
    {
        var img = Builder.Raw("logical-boot.img", 56, "label: dos\nstart=2048, size=16384, type=83\nstart=18432, type=5\nstart=20480, size=90112, type=83\n");
        DiskBuilder.Ext4(img, 1, 8, Builder.Tree(new Dictionary<string, byte[]?>
        {
            ["etc/fstab"] = DiskBuilder.Text($"UUID={RootUuid} / ext4 defaults 0 1\nUUID={BootUuid} /boot ext4 defaults 0 2\n"),
        }), RootUuid);
        DiskBuilder.Ext4(img, 10, 44, Builder.Tree(new Dictionary<string, byte[]?>
        {
            [$"vmlinuz-{V10}"] = null,
            [$"initrd.img-{V10}"] = Initrd(10),
            ["grub/grub.cfg"] = DiskBuilder.Text(DebianGrubCfg(BootUuid, bootPrefix: "")),
        }), BootUuid);
        return img;
    });

    private static Dictionary<string, byte[]?> RedHatBoot(string uuid) => new()
    {
        [$"vmlinuz-{V10}"] = null,
        [$"initrd.img-{V10}"] = Initrd(10),
        ["grub2/grub.cfg"] = DiskBuilder.Text(DebianGrubCfg(uuid, bootPrefix: "")),
    };

    public string XfsBoot => Build("xfs-boot.img", () =>
    {
        var img = Builder.Raw("xfs-boot.img", 321, "label: dos\nstart=2048, type=83\n");
        Builder.Xfs(img, 1, 320, Builder.Tree(RedHatBoot(XfsUuid)), XfsUuid);
        return img;
    });

    public string BtrfsBoot => Build("btrfs-boot.img", () =>
    {
        var img = Builder.Raw("btrfs-boot.img", 129, "label: dos\nstart=2048, type=83\n");
        Builder.Btrfs(img, 1, 128, Builder.Tree(RedHatBoot(BtrfsUuid)), BtrfsUuid);
        return img;
    });

    /// <summary>GPT: p1 an ESP whose /EFI/debian/grub.cfg finds the root by UUID and hands over (Ubuntu style), p2 root.</summary>
    public string EfiStub => Build("efi-stub.img", () =>
    {
        var img = Builder.Raw("efi-stub.img", 56, "label: gpt\nstart=2048, size=16384, type=U, name=esp\nstart=18432, type=L, name=root\n");
        DiskBuilder.Vfat(img, 1, 8, Builder.Tree(new Dictionary<string, byte[]?>
        {
            ["EFI/debian/grub.cfg"] = DiskBuilder.Text($"search --fs-uuid --set=root {RootUuid}\nset prefix=($root)'/boot/grub'\nconfigfile ($root)/boot/grub/grub.cfg\n"),
        }), "1234ABCD");
        // The root's grub.cfg has no search of its own: it relies on $root the stub set.
        var cfg = $"set default=0\nmenuentry 'Ubuntu' {{\n\tlinux /boot/vmlinuz-{V10} root=UUID={RootUuid} ro quiet splash\n\tinitrd /boot/initrd.img-{V10}\n}}\n";
        DiskBuilder.Ext4(img, 9, 46, Builder.Tree(DebianRoot(cfg)), RootUuid);
        return img;
    });

    public string GrubLegacyXen => SingleExt4("grub-legacy-xen.img", DebianRoot(null,
        ("boot/xen.gz", File.ReadAllBytes(Cache.XenGz)),
        ("boot/grub/menu.lst", DiskBuilder.Text($"""
            default 0
            timeout 5

            title Xen 4.17 / Debian GNU/Linux, kernel {V10}
            root (hd0,0)
            kernel /boot/xen.gz dom0_mem=512M
            module /boot/vmlinuz-{V10} placeholder root=/dev/xvda1 ro console=hvc0
            module /boot/initrd.img-{V10}

            title Debian GNU/Linux, kernel {V10}
            root (hd0,0)
            kernel /boot/vmlinuz-{V10} root=/dev/xvda1 ro
            initrd /boot/initrd.img-{V10}

            """))));

    public string Extlinux => SingleExt4("extlinux.img", DebianRoot(null,
        ("boot/extlinux/extlinux.conf", DiskBuilder.Text($"DEFAULT debian\nTIMEOUT 50\nLABEL debian\n  MENU LABEL Debian GNU/Linux\n  KERNEL /boot/vmlinuz-{V10}\n  INITRD /boot/initrd.img-{V10}\n  APPEND root=UUID={RootUuid} ro console=ttyS0\n"))));

    public string Isolinux => Build("live.iso", () => Builder.Iso("live.iso", Builder.Tree(new Dictionary<string, byte[]?>
    {
        ["isolinux/vmlinuz"] = null,
        ["isolinux/initrd.img"] = Initrd(7),
        ["isolinux/isolinux.cfg"] = DiskBuilder.Text("DEFAULT live\nLABEL live\n  KERNEL /isolinux/vmlinuz\n  INITRD /isolinux/initrd.img\n  APPEND boot=live components quiet\nLABEL other\n  KERNEL /isolinux/missing\n"),
    })));

    public const string FedoraVersion = "6.5.6-300.fc39.x86_64";

    public string FedoraBls => SingleExt4("fedora-bls.img", new Dictionary<string, byte[]?>
    {
        [$"boot/vmlinuz-{FedoraVersion}"] = null,
        [$"boot/initramfs-{FedoraVersion}.img"] = Initrd(39),
        [$"boot/loader/entries/0123456789abcdef-{FedoraVersion}.conf"] = DiskBuilder.Text(
            $"title Fedora Linux ({FedoraVersion}) 39 (Cloud Edition)\nversion {FedoraVersion}\nlinux /boot/vmlinuz-{FedoraVersion}\ninitrd /boot/initramfs-{FedoraVersion}.img\noptions $kernelopts\ngrub_users $grub_users\ngrub_arg --unrestricted\ngrub_class fedora\n"),
        ["boot/grub2/grub.cfg"] = DiskBuilder.Text("set pager=1\nif [ -f ${config_directory}/grubenv ]; then\n  load_env -f ${config_directory}/grubenv\nelif [ -s $prefix/grubenv ]; then\n  load_env\nfi\nset default=\"${saved_entry}\"\ninsmod blscfg\nblscfg\n"),
        ["boot/grub2/grubenv"] = GrubEnv($"kernelopts=root=UUID={RootUuid} ro rootflags=subvol=root rhgb quiet"),
    });

    public string NoConfig => SingleExt4("no-config.img", new Dictionary<string, byte[]?>
    {
        [$"boot/vmlinuz-{V9}"] = null,
        [$"boot/initrd.img-{V9}"] = Initrd(9),
        [$"boot/vmlinuz-{V10}"] = null,
        [$"boot/initrd.img-{V10}"] = Initrd(10),
        ["etc/fstab"] = DiskBuilder.Text($"UUID={RootUuid} / ext4 defaults 0 1\n"),
    }, mib: 64);

    /// <summary>Builds once under <paramref name="name"/>.</summary>
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
