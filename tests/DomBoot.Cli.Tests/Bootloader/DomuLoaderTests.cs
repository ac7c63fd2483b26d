using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Bootloader;

/// <summary>
/// domUloader's rules through `domboot bootloader`: `--root=DEV` plus the guest's /etc/fstab finds /boot, an
/// explicit `--entry=dev:/kernel,/initrd`, several disks each named as the guest attaches them, and `--runas`.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class DomuLoaderTests : IDisposable
{
    private const string Rel = "6.1.0-10-amd64";
    private const string BootUuid = "5e5e0001-0000-4000-8000-00000000b001";
    private const string RootUuid = "5e5e0001-0000-4000-8000-00000000f002";
    private const string DataUuid = "5e5e0001-0000-4000-8000-00000000d003";
    private readonly TempDir _dir = new("domboot-domu");
    private readonly DiskBuilder _b;

    public DomuLoaderTests() => _b = new DiskBuilder(_dir.Path);

    public void Dispose() => _dir.Dispose();

    private static readonly byte[] InitrdA = DiskBuilder.RandomBytes(21, 70_001);
    private static readonly byte[] InitrdB = DiskBuilder.RandomBytes(22, 90_003);

    /// <summary>
    /// Disk 0 (xvda): p1 ext4 "data" with a decoy kernel and initrd at /boot; p2 ext4 root with /etc/fstab naming
    /// the /boot volume by UUID. Disk 1 (xvdb): p1 ext4 /boot with the real kernel, initrd B and no boot config.
    /// </summary>
    private (string Disk0, string Disk1) BuildDisks()
    {
        var disk0 = _b.Raw("xvda.img", 48, "label: dos\nstart=2048, size=40960, type=83\nsize=40960, type=83\n");
        DiskBuilder.Ext4(disk0, 1, 20, _b.Tree(new Dictionary<string, byte[]?>
        {
            [$"boot/vmlinuz-{Rel}"] = null,
            [$"boot/initrd.img-{Rel}"] = InitrdA,
        }), DataUuid);
        DiskBuilder.Ext4(disk0, 21, 20, _b.Tree(new Dictionary<string, byte[]?>
        {
            ["etc/fstab"] = DiskBuilder.Text($"# /etc/fstab\nUUID={RootUuid} / ext4 defaults 0 1\nUUID={BootUuid} /boot ext4 defaults 0 2\n"),
        }), RootUuid);
        var disk1 = _b.Raw("xvdb.img", 40, "label: dos\nstart=2048, size=61440, type=83\n");
        DiskBuilder.Ext4(disk1, 1, 30, _b.Tree(new Dictionary<string, byte[]?>
        {
            [$"vmlinuz-{Rel}"] = null,
            [$"initrd.img-{Rel}"] = InitrdB,
        }), BootUuid);
        return (disk0, disk1);
    }

    private string OutDir()
    {
        var d = Path.Combine(_dir.Path, "out-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(d);
        return d;
    }

    private static Dictionary<string, string> Record(string stdout) =>
        stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', 2)).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "");

    [Fact]
    public void Root_FollowsTheGuestsFstabToBootOnTheSecondDisk()
    {
        var (d0, d1) = BuildDisks();
        var outDir = OutDir();
        var r = DombootProcess.Run("bootloader", "-q", "--root=xvda2", "--output-format=simple", $"--output-directory={outDir}", d0, d1);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var rec = Record(r.Stdout);
        Assert.Equal(Tools.Sha256(Cache.Kernel), Tools.Sha256(rec["kernel"]));
        Assert.Equal(Tools.Sha256(InitrdB), Tools.Sha256(rec["ramdisk"])); // the /boot of the fstab, not the decoy on xvda1
        Assert.Equal($"root=UUID={RootUuid} ro", rec["args"]); // the volume holding /etc/fstab is the root
    }

    [Fact]
    public void WithoutRoot_TheFirstVolumeWithAKernelWins()
    {
        var (d0, d1) = BuildDisks();
        var outDir = OutDir();
        var r = DombootProcess.Run("bootloader", "-q", "--output-format=simple", $"--output-directory={outDir}", d0, d1);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(Tools.Sha256(InitrdA), Tools.Sha256(Record(r.Stdout)["ramdisk"]));
    }

    [Theory]
    [InlineData("xvdb1", true)]
    [InlineData("sdb1", true)]
    [InlineData("hdb1", true)]
    [InlineData("xvda1", false)]
    public void ExplicitEntry_DevColonKernelCommaInitrd_NamesTheGuestsDevice(string device, bool secondDisk)
    {
        var (d0, d1) = BuildDisks();
        var outDir = OutDir();
        var kernel = secondDisk ? $"/vmlinuz-{Rel}" : $"/boot/vmlinuz-{Rel}";
        var initrd = secondDisk ? $"/initrd.img-{Rel}" : $"/boot/initrd.img-{Rel}";
        var r = DombootProcess.Run("bootloader", "-q", $"--entry={device}:{kernel},{initrd}", "--args=console=hvc0",
            "--output-format=simple", $"--output-directory={outDir}", d0, d1);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var rec = Record(r.Stdout);
        Assert.Equal(Tools.Sha256(secondDisk ? InitrdB : InitrdA), Tools.Sha256(rec["ramdisk"]));
        Assert.Equal("console=hvc0", rec["args"]);
    }

    [Fact]
    public void ExplicitEntry_UnknownDevice_FailsAndLeavesNothing()
    {
        var (d0, d1) = BuildDisks();
        var outDir = OutDir();
        var r = DombootProcess.Run("bootloader", "-q", $"--entry=xvdc1:/vmlinuz-{Rel}", "--output-format=simple", $"--output-directory={outDir}", d0, d1);
        Assert.Equal(66, r.ExitCode);
        Assert.Contains("no volume xvdc1", r.Stderr, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(outDir));
    }

    [Fact]
    public void Runas_ParsesInAnUnprivilegedChildAndTheParentHandsOutTheFiles()
    {
        Tools.Require("setpriv");
        Tools.Require("prlimit");
        var (d0, _) = BuildDisks();
        File.SetUnixFileMode(d0, UnixFileMode.UserRead | UnixFileMode.UserWrite); // only root can open it: the child reads the parent's descriptor
        var outDir = OutDir();
        var r = DombootProcess.Run("bootloader", "-q", "--runas=nobody", "--output-format=simple0", $"--output-directory={outDir}", d0);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var items = r.Stdout.Split('\0');
        Assert.StartsWith("kernel " + outDir + "/boot_kernel.", items[0], StringComparison.Ordinal);
        Assert.EndsWith("\0\0", r.Stdout, StringComparison.Ordinal);
        var kernel = items[0]["kernel ".Length..];
        Assert.Equal(Tools.Sha256(Cache.Kernel), Tools.Sha256(kernel));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(kernel));
        Assert.Equal(2, Directory.GetFiles(outDir).Length);
        Assert.DoesNotContain(Directory.GetDirectories(Path.GetTempPath(), "domboot-runas-*"), d => Directory.GetLastWriteTimeUtc(d) > DateTime.UtcNow.AddMinutes(-1));
    }

    [Fact]
    public void Runas_ChildFailure_IsAOneLineErrorAndNothingIsLeft()
    {
        var (d0, _) = BuildDisks();
        var outDir = OutDir();
        var r = DombootProcess.Run("bootloader", "-q", "--runas=nobody", "--entry=/no/such/kernel", "--output-format=simple", $"--output-directory={outDir}", d0);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Single(r.Stderr.TrimEnd('\n').Split('\n'));
        Assert.Contains("uid 65534", r.Stderr, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(outDir));
    }

    [Fact]
    public void Runas_Root_IsRefused()
    {
        var (d0, _) = BuildDisks();
        var r = DombootProcess.Run("bootloader", "-q", "--runas=root", "--output-format=simple", $"--output-directory={OutDir()}", d0);
        Assert.Equal(64, r.ExitCode);
    }
}
