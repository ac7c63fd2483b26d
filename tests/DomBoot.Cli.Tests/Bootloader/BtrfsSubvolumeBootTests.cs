using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Bootloader;

/// <summary>
/// domUloader's fstab rule with btrfs: the guest mounts /boot from a subvolume (`subvol=@boot`), which is not the
/// volume's default. The test image is made with the real tools (mkfs.btrfs, a loop mount only to create the
/// subvolume, as an installer would); domboot itself never mounts anything.
/// </summary>
public sealed class BtrfsSubvolumeBootTests : IDisposable
{
    private const string Rel = "6.1.0-11-amd64";
    private const string BtrfsUuid = "b7f5b7f5-0000-4000-8000-00000000b7f5";
    private const string RootUuid = "b7f5b7f5-0000-4000-8000-0000000000e4";
    private readonly TempDir _dir = new("domboot-subvol");

    public void Dispose() => _dir.Dispose();

    private static string Cfg(string initrd, string args) =>
        $"set default=0\nmenuentry 'Linux' {{\n  linux /vmlinuz-{Rel} {args}\n  initrd /{initrd}\n}}\n";

    private string Build()
    {
        Tools.Require("mkfs.btrfs");
        Tools.Require("btrfs");
        var b = new DiskBuilder(_dir.Path);
        var disk = b.Raw("subvol.img", 200, "label: gpt\nstart=2048, size=40960, type=linux, name=root\nsize=266240, type=linux, name=boot\n");
        DiskBuilder.Ext4(disk, 1, 20, b.Tree(new Dictionary<string, byte[]?>
        {
            ["etc/fstab"] = DiskBuilder.Text($"UUID={RootUuid} / ext4 defaults 0 1\nUUID={BtrfsUuid} /boot btrfs subvol=@boot,compress=zstd 0 0\n"),
        }), RootUuid);
        var part = _dir.File("boot.btrfs");
        var mnt = Directory.CreateDirectory(_dir.File("mnt")).FullName;
        Tools.Run("truncate", "-s", "130M", part);
        Tools.Run("mkfs.btrfs", "-q", "-f", "-U", BtrfsUuid, part);
        Tools.Run("mount", "-o", "loop", part, mnt);
        try
        {
            // The top level holds a decoy config; the subvolume the guest mounts holds the real one.
            Directory.CreateDirectory(Path.Combine(mnt, "grub"));
            File.WriteAllText(Path.Combine(mnt, "grub", "grub.cfg"), Cfg("decoy.img", "decoy"));
            File.Copy(Cache.Kernel, Path.Combine(mnt, $"vmlinuz-{Rel}"));
            File.WriteAllBytes(Path.Combine(mnt, "decoy.img"), DiskBuilder.RandomBytes(1, 4096));
            Tools.Run("btrfs", "-q", "subvolume", "create", Path.Combine(mnt, "@boot"));
            var sub = Path.Combine(mnt, "@boot");
            Directory.CreateDirectory(Path.Combine(sub, "grub"));
            File.WriteAllText(Path.Combine(sub, "grub", "grub.cfg"), Cfg($"initrd.img-{Rel}", $"root=UUID={RootUuid} ro"));
            File.Copy(Cache.Kernel, Path.Combine(sub, $"vmlinuz-{Rel}"));
            File.WriteAllBytes(Path.Combine(sub, $"initrd.img-{Rel}"), DiskBuilder.RandomBytes(2, 50_000));
        }
        finally
        {
            Tools.Run("umount", mnt);
        }
        Tools.Run("dd", $"if={part}", $"of={disk}", "bs=1M", "seek=21", "conv=notrunc", "status=none");
        return disk;
    }

    [Fact]
    public void Root_FstabSubvolBoot_ReadsTheSubvolumeTheGuestMounts()
    {
        var disk = Build();
        var outDir = Directory.CreateDirectory(_dir.File("out")).FullName;
        var r = DombootProcess.Run("bootloader", "-q", "--root=xvda1", "--output-format=simple", $"--output-directory={outDir}", disk);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var rec = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', 2)).ToDictionary(p => p[0], p => p[1]);
        Assert.Equal($"root=UUID={RootUuid} ro", rec["args"]);
        Assert.Equal(Tools.Sha256(DiskBuilder.RandomBytes(2, 50_000)), Tools.Sha256(rec["ramdisk"]));
        Assert.Equal(Tools.Sha256(Cache.Kernel), Tools.Sha256(rec["kernel"]));

        // Without the guest's fstab, the volume's default subvolume (the top level) is what is read.
        var plain = DombootProcess.Run("bootloader", "-q", "--output-format=simple", $"--output-directory={outDir}", disk);
        Assert.Contains("args decoy", plain.Stdout, StringComparison.Ordinal);
    }
}
