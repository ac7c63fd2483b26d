using DomBoot.Boot.Pygrub;
using DomBoot.TestSupport;
using static DomBoot.Boot.Tests.Integration.GuestImageSet;

namespace DomBoot.Boot.Tests.Integration;

/// <summary>--entry forms, saved/next entry from grubenv, fallback, and failure leaving nothing behind.</summary>
public sealed class EntrySelectionTests(GuestImageSet images) : IClassFixture<GuestImageSet>
{
    private const string Recovery = $"Debian GNU/Linux, with Linux {V10} (recovery mode)";
    private const string Advanced = "Advanced options for Debian GNU/Linux";

    [Theory]
    [InlineData("2", $"root=UUID={RootUuid} ro single")]
    [InlineData(Recovery, $"root=UUID={RootUuid} ro single")]
    [InlineData(Advanced + ">" + Recovery, $"root=UUID={RootUuid} ro single")]
    [InlineData("1>0", $"root=UUID={RootUuid} ro quiet")]
    [InlineData("1>1", $"root=UUID={RootUuid} ro single")]
    [InlineData("0", $"root=UUID={RootUuid} ro quiet")]
    public void Select_ByEntrySpec(string spec, string args)
    {
        var (r, k, i) = BootDiscoveryTests.Boot(images.DebianMbr, spec);
        Assert.Equal(KernelSha, k);
        Assert.Equal(InitrdSha(10), i);
        Assert.Equal(args, r.Extracted!.Args);
    }

    [Fact]
    public void Select_ByEntryPathPicksTheSubmenuChild()
    {
        var (r, _, _) = BootDiscoveryTests.Boot(images.DebianMbr, "1>0");
        Assert.Equal([Advanced, $"Debian GNU/Linux, with Linux {V10}"], r.Entry!.MenuPath);
    }

    private const string DebianEnvHead = """
        if [ -s $prefix/grubenv ]; then
          set have_grubenv=true
          load_env
        fi
        if [ "${next_entry}" ] ; then
           set default="${next_entry}"
           set next_entry=
           save_env next_entry
           set boot_once=true
        else
           set default="${saved_entry}"
        fi

        """;

    [Fact]
    public void Select_DefaultSavedFromGrubenv()
    {
        var img = images.SingleExt4("saved.img", DebianRoot(DebianGrubCfg(RootUuid, DebianEnvHead),
            ("boot/grub/grubenv", GrubEnv($"saved_entry={Advanced}>{Recovery}"))));
        var (r, _, _) = BootDiscoveryTests.Boot(img);
        Assert.Equal($"root=UUID={RootUuid} ro single", r.Extracted!.Args);
        Assert.Equal(Recovery, r.Entry!.Title);
    }

    [Fact]
    public void Select_NextEntryWinsOverSavedEntry()
    {
        var img = images.SingleExt4("next.img", DebianRoot(DebianGrubCfg(RootUuid, DebianEnvHead),
            ("boot/grub/grubenv", GrubEnv("saved_entry=0", $"next_entry=gnulinux-advanced-{RootUuid}>gnulinux-{V10}-recovery-{RootUuid}"))));
        var (r, _, _) = BootDiscoveryTests.Boot(img);
        Assert.Equal(Recovery, r.Entry!.Title);
    }

    [Fact]
    public void Select_BareIdOfSubmenuChildIsNotFoundAtTopLevel()
    {
        // GRUB looks a default id up in the top-level menu only: a submenu child needs "submenu_id>entry_id".
        var img = images.SingleExt4("next-bare.img", DebianRoot(DebianGrubCfg(RootUuid, DebianEnvHead),
            ("boot/grub/grubenv", GrubEnv("saved_entry=0", $"next_entry=gnulinux-{V10}-recovery-{RootUuid}"))));
        var (r, _, _) = BootDiscoveryTests.Boot(img);
        Assert.Equal("Debian GNU/Linux", r.Entry!.Title);
    }

    [Fact]
    public void Select_DefaultKernelMissingFallsBack()
    {
        var cfg = $"set default=0\nset fallback=1\nmenuentry 'gone' {{\n\tlinux /boot/vmlinuz-6.1.0-99-amd64 root=/dev/xvda1 ro\n}}\n"
            + $"menuentry 'present' {{\n\tlinux /boot/vmlinuz-{V10} root=/dev/xvda1 ro fallback\n\tinitrd /boot/initrd.img-{V10}\n}}\n";
        var img = images.SingleExt4("fallback.img", DebianRoot(cfg));
        var (r, k, _) = BootDiscoveryTests.Boot(img);
        Assert.Equal(KernelSha, k);
        Assert.Equal("present", r.Entry!.Title);
        Assert.Equal("root=/dev/xvda1 ro fallback", r.Extracted!.Args);
    }

    [Fact]
    public void Select_DefaultKernelMissingWithoutFallbackFailsLeavingNothing()
    {
        var cfg = "set default=0\nmenuentry 'gone' {\n\tlinux /boot/vmlinuz-6.1.0-99-amd64 root=/dev/xvda1 ro\n}\n";
        var img = images.SingleExt4("nofallback.img", DebianRoot(cfg));
        using var outDir = new TempDir("domboot-bl-out");
        var ex = Assert.Throws<FileNotFoundException>(() => BootloaderRun.Run(
            new BootloaderOptions { Disks = [img], OutputFormat = "simple0", OutputDirectory = outDir.Path }, null, CancellationToken.None));
        Assert.Contains("/boot/vmlinuz-6.1.0-99-amd64", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', ex.Message);
        Assert.Empty(Directory.GetFileSystemEntries(outDir.Path));
    }
}
