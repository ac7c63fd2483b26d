using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Domains;

/// <summary>type = "pvh" (ELF + PVH note, direct), type = "pv" (any direct-bootable kernel), type = "hvm" (firmware).</summary>
public sealed class DomainTypeTests
{
    [Fact]
    public void Create_TypePvh_BootsTheElfVmlinuxThroughItsPvhNote()
    {
        using var h = new DomainHarness();
        var cfg = h.KernelConfig("pvh1", extra: "type = \"pvh\"");
        File.WriteAllText(cfg, File.ReadAllText(cfg).Replace(Cache.Kernel, GuestImages.Vmlinux, StringComparison.Ordinal));
        var dry = h.Ok("create", "-n", cfg).Stdout;
        Assert.Contains("VM type            : \"pvh\"", dry, StringComparison.Ordinal);
        Assert.Contains("-kernel " + GuestImages.Vmlinux, dry, StringComparison.Ordinal);
        h.Ok("create", cfg);
        h.WaitForConsole("pvh1", "^GUEST-UP cmdline=");
        h.Ok("destroy", "pvh1");
    }

    [Fact]
    public void Create_TypePvhWithABzImage_IsRefusedBeforeQemuStarts()
    {
        using var h = new DomainHarness();
        var r = h.Domboot("create", h.KernelConfig("pvh2", extra: "type = \"pvh\""));
        Assert.Equal(64, r.ExitCode);
        Assert.Contains("type=\"pvh\" needs an ELF kernel with a PVH entry note", r.Stderr, StringComparison.Ordinal);
        Assert.Null(h.Listed("pvh2"));
        Assert.DoesNotContain("qemu:", h.Logs(), StringComparison.Ordinal);
    }

    [Fact]
    public void DryRun_TypeHvm_BootsTheDiskThroughSeaBios()
    {
        using var h = new DomainHarness();
        var disk = ToolstackGuest.ScratchDisk(h.Root, "hvm", 8);
        var cfg = h.File("hvm.cfg");
        File.WriteAllText(cfg, $"""
            name = "hvm1"
            type = "hvm"
            disk = [ "format=raw,vdev=hda,access=w,target={disk}" ]

            """);
        var dry = h.Ok("create", "-n", cfg).Stdout;
        var argv = dry.Split('\n').Single(l => l.StartsWith("VM QEMU arguments", StringComparison.Ordinal));
        Assert.Contains("-boot order=c", argv, StringComparison.Ordinal);
        Assert.DoesNotContain("-kernel", argv, StringComparison.Ordinal);
        Assert.Contains($"-drive file={disk},format=raw,if=none,id=drive-hda -device virtio-blk-pci,drive=drive-hda,id=hda", argv, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(h.StateDir, "domains", "hvm1")));
    }
}
