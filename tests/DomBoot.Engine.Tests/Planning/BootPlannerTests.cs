using DomBoot.Engine.Planning;
using DomBoot.TestSupport;
using static DomBoot.Engine.Tests.Planning.PlanAssert;

namespace DomBoot.Engine.Tests.Planning;

/// <summary>--dry-run plans for each kernel kind, checked against the boot protocol and readelf/objdump facts.</summary>
[Collection(KernelsGroup.Name)]
public sealed class BootPlannerTests(KernelsFixture k)
{
    private const string Cmdline = "console=ttyS0 panic=-1 quiet";

    [Fact]
    public void Plan_BzImageWithOneInitrd_LaysOutSetupCmdlineKernelAndInitrdAsQemuWill()
    {
        using var dir = new TempDir();
        var runtime = new RuntimePaths(dir.File("run"));
        var initrd = Bytes(dir.File("initrd.cpio"), 3001);
        var plan = DirectBoot.Plan(new BootRequest { KernelPath = k.BzImage, Initrds = [initrd], Cmdline = Cmdline, MemoryMiB = 512 }, runtime, NoKvm);
        var h = Header.Read(k.BzImage);
        long fileSize = new FileInfo(k.BzImage).Length;
        const ulong memory = 512UL << 20;

        Assert.Equal(BootMethod.LinuxBootProtocol, plan.Method);
        Assert.Equal("2.15", plan.Protocol);
        Assert.Equal(k.Release, plan.KernelRelease);
        Assert.Equal(k.BzImage, plan.KernelPath);
        Assert.Equal(memory, plan.MemoryBytes);

        var setup = Region(plan, "real-mode setup");
        Assert.Equal((0x10000UL, (ulong)h.ProtectedModeOffset), (setup.Start, setup.SizeInBytes));
        var cmd = Region(plan, "command line");
        Assert.Equal((0x20000UL, (ulong)Cmdline.Length + 1), (cmd.Start, cmd.SizeInBytes));
        var pm = Region(plan, "protected-mode kernel");
        Assert.Equal((0x100000UL, (ulong)(fileSize - h.ProtectedModeOffset)), (pm.Start, pm.SizeInBytes));
        var run = Region(plan, "kernel runtime");
        Assert.Contains("relocatable", run.What, StringComparison.Ordinal);
        Assert.Equal(0x1000000UL, h.PrefAddress);
        Assert.Equal((h.PrefAddress, (ulong)h.InitSize), (run.Start, run.SizeInBytes));
        var rd = Region(plan, "initrd");
        Assert.Equal((InitrdAddress(memory, 3001), 3001UL), (rd.Start, rd.SizeInBytes));
        Assert.Equal(0UL, rd.Start % 0x1000);
        Assert.True(rd.Start >= run.End && rd.End <= memory - AcpiDataSize);

        Assert.Equal(0xB0UL, Write(plan, "type_of_loader").Value);
        Assert.Equal(0x210, Write(plan, "type_of_loader").Offset);
        Assert.Equal((0x228, 0x20000UL), (Write(plan, "cmd_line_ptr").Offset, Write(plan, "cmd_line_ptr").Value));
        Assert.Equal((0x218, rd.Start), (Write(plan, "ramdisk_image").Offset, Write(plan, "ramdisk_image").Value));
        Assert.Equal((0x21C, 3001UL), (Write(plan, "ramdisk_size").Offset, Write(plan, "ramdisk_size").Value));
        Assert.Equal(0x80UL, Write(plan, "loadflags").Value & 0x80); // CAN_USE_HEAP
        Assert.DoesNotContain(plan.HeaderWrites, w => w.Field == "code32_start");

        Assert.Empty(plan.Prepare);
        TcgMachine(plan, 512);
        Assert.Equal(k.BzImage, Arg(plan.QemuArgv, "-kernel"));
        Assert.Equal(initrd, Arg(plan.QemuArgv, "-initrd"));
        Assert.Equal(Cmdline, Arg(plan.QemuArgv, "-append"));
        Assert.Equal("unix:" + runtime.QmpSocket + ",server=on,wait=off", Arg(plan.QemuArgv, "-qmp"));
        Assert.Contains("-no-reboot", plan.QemuArgv);
        Assert.Contains("auto", plan.Accelerator.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Plan_BzImageWithTwoInitrds_ConcatenatesThemFourByteAligned()
    {
        using var dir = new TempDir();
        var runtime = new RuntimePaths(dir.File("run"));
        var a = Bytes(dir.File("a.cpio"), 3001);
        var b = Bytes(dir.File("b.cpio"), 5000, 9);
        var plan = DirectBoot.Plan(new BootRequest { KernelPath = k.BzImage, Initrds = [a, b], Cmdline = Cmdline, MemoryMiB = 256 }, runtime, NoKvm);
        const ulong total = 3004 + 5000; // the second starts at the next 4-byte boundary (as GRUB and the kernel's cpio reader expect)

        var prepared = Assert.Single(plan.Prepare);
        Assert.Equal(runtime.Initrd, prepared.Path);
        Assert.Equal(4, prepared.AlignEachTo);
        Assert.False(prepared.Gunzip);
        Assert.Equal([new FileRange(a), new FileRange(b)], prepared.Sources);
        var rd = Region(plan, "initrd (concatenated)");
        Assert.Equal((InitrdAddress(256UL << 20, total), total), (rd.Start, rd.SizeInBytes));
        Assert.Equal(total, Write(plan, "ramdisk_size").Value);
        Assert.Equal(runtime.Initrd, Arg(plan.QemuArgv, "-initrd"));
        Assert.Equal(k.BzImage, Arg(plan.QemuArgv, "-kernel"));
        Assert.Equal([a, b], plan.InitrdPaths);
        TcgMachine(plan, 256);
    }

    [Theory]
    [InlineData(0x200000UL)]
    [InlineData(0x1200000UL)]
    [InlineData(0x4000000UL)]
    public void Plan_BzImageRelocatableLoad_RewritesCode32StartAndRunsAtTheAlignedAddress(ulong load)
    {
        using var dir = new TempDir();
        var plan = DirectBoot.Plan(new BootRequest { KernelPath = k.BzImage, LoadAddress = load, MemoryMiB = 512 }, new RuntimePaths(dir.Path), NoKvm);
        var h = Header.Read(k.BzImage);

        var w = Write(plan, "code32_start");
        Assert.Equal((0x214, load), (w.Offset, w.Value));
        Assert.Equal(load, Region(plan, "protected-mode kernel").Start);
        Assert.Equal(Math.Max(AlignUp(load, h.KernelAlignment), h.PrefAddress), Region(plan, "kernel runtime").Start);
        Assert.Contains(plan.Notes, n => n.Contains("relocatable load", StringComparison.Ordinal));
        NoArg(plan.QemuArgv, "-initrd");
        NoArg(plan.QemuArgv, "-append");
    }

    [Fact]
    public void Plan_ElfVmlinux_BootsViaThePvhEntryReadelfShows()
    {
        using var dir = new TempDir();
        var runtime = new RuntimePaths(dir.File("run"));
        var initrd = Bytes(dir.File("initrd.cpio"), 4097);
        var plan = DirectBoot.Plan(new BootRequest { KernelPath = k.Vmlinux, Initrds = [initrd], Cmdline = Cmdline, MemoryMiB = 256 }, runtime, NoKvm);

        Assert.Equal(BootMethod.Pvh, plan.Method);
        Assert.Equal("ELF64 with PVH note", plan.KernelKind);
        Assert.Equal(k.Release, plan.KernelRelease);
        var loads = plan.Layout.Where(r => r.What.StartsWith("PT_LOAD", StringComparison.Ordinal)).Select(r => new LoadSegment(r.Start, r.SizeInBytes));
        Assert.Equal(k.VmlinuxLoads, loads);
        Assert.Equal(k.PvhEntry, Region(plan, "PVH entry").Start);
        Assert.InRange(k.PvhEntry, k.VmlinuxLoads[0].PAddr, k.VmlinuxLoads[0].End - 1);
        var rd = Region(plan, "initrd (PVH module 0)");
        Assert.Equal((InitrdAddress(256UL << 20, 4097), 4097UL), (rd.Start, rd.SizeInBytes));
        Assert.True(rd.Start >= k.VmlinuxLoads.Max(s => s.End));
        Assert.Empty(plan.HeaderWrites);
        Assert.Empty(plan.Prepare);

        TcgMachine(plan, 256);
        Assert.Equal(k.Vmlinux, Arg(plan.QemuArgv, "-kernel"));
        Assert.Equal(initrd, Arg(plan.QemuArgv, "-initrd"));
        Assert.Equal(Cmdline, Arg(plan.QemuArgv, "-append"));
    }

    [Fact]
    public void Plan_GzipWrappedElf_GunzipsIntoTheRuntimeFolderFirst()
    {
        using var dir = new TempDir();
        var runtime = new RuntimePaths(dir.File("run"));
        var plan = DirectBoot.Plan(new BootRequest { KernelPath = k.VmlinuxGz, Cmdline = Cmdline, MemoryMiB = 256 }, runtime, NoKvm);

        Assert.Equal(BootMethod.Pvh, plan.Method);
        Assert.Equal("gzip-wrapped ELF64 with PVH note", plan.KernelKind);
        var prepared = Assert.Single(plan.Prepare);
        Assert.Equal(runtime.Kernel, prepared.Path);
        Assert.True(prepared.Gunzip);
        Assert.Equal([new FileRange(k.VmlinuxGz)], prepared.Sources);
        Assert.Equal(runtime.Kernel, plan.KernelPath);
        Assert.Equal(runtime.Kernel, Arg(plan.QemuArgv, "-kernel"));
        Assert.Equal(k.PvhEntry, Region(plan, "PVH entry").Start);
        Assert.Equal(k.VmlinuxLoads.Count, plan.Layout.Count(r => r.What.StartsWith("PT_LOAD", StringComparison.Ordinal)));
        NoArg(plan.QemuArgv, "-initrd");
    }

    [Fact]
    public void Plan_MultibootXenWithModules_PassesThemAsOneInitrdStringWithCommasDoubled()
    {
        using var dir = new TempDir();
        var runtime = new RuntimePaths(dir.File("run"));
        var initrd = Bytes(dir.File("initrd.cpio"), 10000);
        const string dom0Args = "console=hvc0 earlyprintk=xen,keep";
        const string xenCmdline = "console=com1 com1=115200 dom0_mem=256M";
        var plan = DirectBoot.Plan(new BootRequest
        {
            KernelPath = k.XenGz,
            Modules = [new MultibootModule(k.BzImage, dom0Args), new MultibootModule(initrd, "")],
            Cmdline = xenCmdline,
            MemoryMiB = 1024,
        }, runtime, NoKvm);

        Assert.Equal(BootMethod.Multiboot, plan.Method);
        Assert.Equal("gzip-wrapped ELF32 Multiboot 1 (also Multiboot 2)", plan.KernelKind);
        var prepared = Assert.Single(plan.Prepare);
        Assert.True(prepared.Gunzip);
        Assert.Equal((runtime.Kernel, k.XenGz), (prepared.Path, Assert.Single(prepared.Sources).Path));
        Assert.Equal(runtime.Kernel, Arg(plan.QemuArgv, "-kernel"));
        Assert.Equal($"{k.BzImage} console=hvc0 earlyprintk=xen,,keep,{initrd}", Arg(plan.QemuArgv, "-initrd"));
        Assert.Equal(xenCmdline, Arg(plan.QemuArgv, "-append"));
        Assert.NotEmpty(plan.Notes);
        TcgMachine(plan, 1024);

        var loads = plan.Layout.Where(r => r.What.StartsWith("PT_LOAD", StringComparison.Ordinal)).Select(r => new LoadSegment(r.Start, r.SizeInBytes));
        Assert.Equal(k.XenLoads.Where(s => s.MemSize > 0), loads);
        ulong kernelEnd = k.XenLoads.Max(s => s.End);
        var m0 = Region(plan, "module 0: vmlinuz " + dom0Args);
        var m1 = Region(plan, "module 1: initrd.cpio");
        Assert.Equal((AlignUp(kernelEnd, 0x1000), (ulong)new FileInfo(k.BzImage).Length), (m0.Start, m0.SizeInBytes));
        Assert.Equal((AlignUp(m0.End, 0x1000), 10000UL), (m1.Start, m1.SizeInBytes));
    }

    [Fact]
    public void Plan_Uki_BootsTheLinuxSectionWithTheEmbeddedInitrdAndCmdline()
    {
        using var dir = new TempDir();
        var runtime = new RuntimePaths(dir.File("run"));
        var plan = DirectBoot.Plan(new BootRequest { KernelPath = k.Uki, MemoryMiB = 512 }, runtime, NoKvm);
        var linux = k.UkiSection(".linux");
        var initrd = k.UkiSection(".initrd");
        Assert.Equal(new FileInfo(k.BzImage).Length, linux.Size);
        Assert.Equal(KernelsFixture.UkiInitrdBytes, initrd.Size);

        Assert.Equal(BootMethod.LinuxBootProtocol, plan.Method);
        Assert.Equal("UKI (bzImage in .linux)", plan.KernelKind);
        Assert.Equal("2.15", plan.Protocol);
        Assert.Equal(KernelsFixture.UkiCmdline, plan.Cmdline);
        Assert.Equal(2, plan.Prepare.Count);
        var kernel = plan.Prepare[0];
        Assert.Equal((runtime.Kernel, false, 1), (kernel.Path, kernel.Gunzip, kernel.AlignEachTo));
        Assert.Equal([new FileRange(k.Uki, linux.FileOffset, linux.Size)], kernel.Sources);
        var rdFile = plan.Prepare[1];
        Assert.Equal(runtime.Initrd, rdFile.Path);
        Assert.Equal([new FileRange(k.Uki, initrd.FileOffset, initrd.Size)], rdFile.Sources);
        var rd = Region(plan, "initrd");
        Assert.Equal("initrd", rd.What); // one initrd (the embedded one): nothing concatenated
        Assert.Equal((InitrdAddress(512UL << 20, (ulong)initrd.Size), (ulong)initrd.Size), (rd.Start, rd.SizeInBytes));
        Assert.Equal((ulong)(linux.Size - Header.Read(k.BzImage).ProtectedModeOffset), Region(plan, "protected-mode kernel").SizeInBytes);

        Assert.Equal(runtime.Kernel, Arg(plan.QemuArgv, "-kernel"));
        Assert.Equal(runtime.Initrd, Arg(plan.QemuArgv, "-initrd"));
        Assert.Equal(KernelsFixture.UkiCmdline, Arg(plan.QemuArgv, "-append"));
        Assert.Contains(plan.Notes, n => n.Contains(".cmdline", StringComparison.Ordinal));
        TcgMachine(plan, 512);
    }

    [Fact]
    public void Plan_UkiWithCmdlineAndExtraInitrd_OverridesCmdlineAndAppendsTheInitrd()
    {
        using var dir = new TempDir();
        var runtime = new RuntimePaths(dir.File("run"));
        var extra = Bytes(dir.File("extra.cpio"), 999);
        var plan = DirectBoot.Plan(new BootRequest { KernelPath = k.Uki, Initrds = [extra], Cmdline = Cmdline, MemoryMiB = 512 }, runtime, NoKvm);
        var initrd = k.UkiSection(".initrd");

        Assert.Equal(Cmdline, Arg(plan.QemuArgv, "-append"));
        Assert.Contains(plan.Notes, n => n.Contains("overrides", StringComparison.Ordinal));
        var rdFile = Assert.Single(plan.Prepare, p => p.Path == runtime.Initrd);
        Assert.Equal(4, rdFile.AlignEachTo);
        Assert.Equal([new FileRange(k.Uki, initrd.FileOffset, initrd.Size), new FileRange(extra)], rdFile.Sources);
        ulong total = AlignUp((ulong)initrd.Size, 4) + 999;
        Assert.Equal(total, Region(plan, "initrd (concatenated)").SizeInBytes);
    }

    [Fact]
    public void Plan_MissingInitrd_ThrowsFileNotFound()
    {
        using var dir = new TempDir();
        var missing = dir.File("no-such.cpio");
        var ex = Assert.Throws<FileNotFoundException>(() =>
            DirectBoot.Plan(new BootRequest { KernelPath = k.BzImage, Initrds = [missing] }, new RuntimePaths(dir.Path), NoKvm));
        Assert.Equal(missing, ex.FileName);
    }
}
