using DomBoot.Boot.Pygrub;
using DomBoot.TestSupport;
using static DomBoot.Boot.Tests.Integration.GuestImageSet;

namespace DomBoot.Boot.Tests.Integration;

/// <summary>The pygrub flow (discover, select, extract) over disks built with the real tools.</summary>
public sealed class BootDiscoveryTests(GuestImageSet images) : IClassFixture<GuestImageSet>
{
    /// <summary>Runs the flow into a fresh directory; returns the result, the kernel and ramdisk sha256 and what is left in the directory.</summary>
    internal static (BootloaderResult Result, string KernelSha, string? RamdiskSha) Boot(string disk, string? entry = null, long? offset = null)
    {
        using var outDir = new TempDir("domboot-bl-out");
        var result = BootloaderRun.Run(new BootloaderOptions { Disks = [disk], Entry = entry, Offset = offset, OutputFormat = "simple0", OutputDirectory = outDir.Path }, null, CancellationToken.None);
        var x = result.Extracted!;
        Assert.Equal(x.RamdiskPath is null ? 1 : 2, Directory.GetFiles(outDir.Path).Length);
        return (result, Tools.Sha256(x.KernelPath), x.RamdiskPath is null ? null : Tools.Sha256(x.RamdiskPath));
    }

    private static void AssertBoot(string disk, string args, int initrdSeed, string? title = null)
    {
        var (r, k, i) = Boot(disk);
        Assert.Equal(KernelSha, k);
        Assert.Equal(InitrdSha(initrdSeed), i);
        Assert.Equal(args, r.Extracted!.Args);
        if (title is not null) Assert.Equal(title, r.Entry!.Title);
    }

    [Fact]
    public void Discover_Grub2OnSingleExt4Mbr() =>
        AssertBoot(images.DebianMbr, $"root=UUID={RootUuid} ro quiet", 10, "Debian GNU/Linux");

    [Fact]
    public void Discover_SeparateBootOnGpt()
    {
        var (r, k, i) = Boot(images.GptBootRoot);
        Assert.Equal(KernelSha, k);
        Assert.Equal(InitrdSha(10), i);
        Assert.Equal($"root=UUID={RootUuid} ro quiet", r.Extracted!.Args);
        Assert.Equal("(hd0,gpt1)", r.Entry!.Kernel!.Device);
    }

    [Fact]
    public void Discover_BootInLogicalPartition()
    {
        var (r, k, _) = Boot(images.LogicalBoot);
        Assert.Equal(KernelSha, k);
        Assert.Equal($"root=UUID={RootUuid} ro quiet", r.Extracted!.Args);
        Assert.Equal("(hd0,msdos5)", r.Entry!.Kernel!.Device);
    }

    [Fact]
    public void Discover_Grub2DirOnXfsV5() => AssertBoot(images.XfsBoot, $"root=UUID={RootUuid} ro quiet", 10);

    [Fact]
    public void Discover_Grub2DirOnBtrfs() => AssertBoot(images.BtrfsBoot, $"root=UUID={RootUuid} ro quiet", 10);

    [Fact]
    public void Discover_EfiStubSearchesRootAndHandsOver()
    {
        var (r, k, i) = Boot(images.EfiStub);
        Assert.Equal(KernelSha, k);
        Assert.Equal(InitrdSha(10), i);
        Assert.Equal($"root=UUID={RootUuid} ro quiet splash", r.Extracted!.Args);
        Assert.Equal("Ubuntu", r.Entry!.Title);
        Assert.Equal("(hd0,gpt2)", r.Entry.Kernel!.Device);
    }

    [Fact]
    public void Discover_GrubLegacyXenEntryGivesModulesAsKernelAndRamdisk()
    {
        var (r, k, i) = Boot(images.GrubLegacyXen);
        Assert.Equal(KernelSha, k);
        Assert.Equal(InitrdSha(10), i);
        Assert.Equal("root=/dev/xvda1 ro console=hvc0", r.Extracted!.Args);
    }

    [Fact]
    public void Discover_Extlinux() => AssertBoot(images.Extlinux, $"root=UUID={RootUuid} ro console=ttyS0", 10);

    [Fact]
    public void Discover_IsolinuxOnIso() => AssertBoot(images.Isolinux, "boot=live components quiet", 7);

    [Fact]
    public void Discover_FedoraBlsWithKernelopts()
    {
        var (r, k, i) = Boot(images.FedoraBls);
        Assert.Equal(KernelSha, k);
        Assert.Equal(InitrdSha(39), i);
        Assert.Equal($"root=UUID={RootUuid} ro rootflags=subvol=root rhgb quiet", r.Extracted!.Args);
        Assert.Equal($"Fedora Linux ({FedoraVersion}) 39 (Cloud Edition)", r.Entry!.Title);
    }

    [Fact]
    public void Discover_NoConfigPicksNewestKernelByVersion()
    {
        var (r, k, i) = Boot(images.NoConfig);
        Assert.Equal(KernelSha, k);
        Assert.Equal(InitrdSha(10), i);
        Assert.Equal($"/boot/vmlinuz-{V10}", r.Entry!.Kernel!.Path);
        Assert.Equal($"root=UUID={RootUuid} ro", r.Extracted!.Args);
        Assert.Equal("none", r.Menu!.ConfigFormat);
    }

    [Fact]
    public void Discover_Qcow2OfPartitionedDisk()
    {
        var (r, k, i) = Boot(images.GptBootRootQcow2);
        Assert.Equal(KernelSha, k);
        Assert.Equal(InitrdSha(10), i);
        Assert.Equal($"root=UUID={RootUuid} ro quiet", r.Extracted!.Args);
    }
}
