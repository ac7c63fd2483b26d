using System.Buffers.Binary;
using DomBoot.Engine.Accel;
using DomBoot.Engine.Planning;
using DomBoot.Formats.Errors;
using DomBoot.Formats.Kernel;
using DomBoot.TestSupport;
using static DomBoot.Engine.Tests.Planning.PlanAssert;

namespace DomBoot.Engine.Tests.Planning;

/// <summary>Every rule of the planner, tripped: each asserts the exact exception type, the structure and the offset.</summary>
[Collection(KernelsGroup.Name)]
public sealed class BootValidationTests(KernelsFixture k)
{
    private const string SetupHeader = "bzImage setup header";
    private static readonly AcceleratorChoice Tcg = AcceleratorDetector.Choose(AcceleratorRequest.Tcg, NoKvm);

    private static BootValidationException Rejects(Func<BootPlan> plan)
    {
        var ex = Assert.Throws<BootValidationException>(() => plan());
        Assert.IsAssignableFrom<MalformedDataException>(ex);
        return ex;
    }

    private static void WriteU16(byte[] b, int at, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(at), v);
    private static void WriteU32(byte[] b, int at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), v);

    /// <summary>A copy of the Debian kernel in <paramref name="dir"/> with <paramref name="patch"/> applied.</summary>
    private string PatchedKernel(TempDir dir, Action<byte[]> patch)
    {
        var bytes = File.ReadAllBytes(k.BzImage);
        patch(bytes);
        var path = dir.File("vmlinuz-patched");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    // ---- bzImage: the Linux x86 boot protocol (boot.rst) as a careful loader applies it ----

    public static TheoryData<string, string, long> BzImageRules => new()
    {
        // case, structure, offset of the field the message names
        { "cmdline 2113 bytes > cmdline_size 2047", SetupHeader, 0x238 },
        { "version 2.01 (no high command line)", SetupHeader, 0x206 },
        { "loadflags without LOADED_HIGH (zImage)", SetupHeader, 0x211 },
        { "setup_sects 80 overflows the 0x8000 real-mode area", SetupHeader, 0x1F1 },
        { "relocatable load of a kernel with relocatable_kernel 0", SetupHeader, 0x234 },
        { "load address 0x180000 not aligned to min_alignment", SetupHeader, 0x235 },
        { "2 MiB initrd above initrd_addr_max 0xFFFFF", SetupHeader, 0x22C },
        { "32 MiB cannot hold init_size", SetupHeader, 0x260 },
        { "60 MiB initrd in 96 MiB overlaps the kernel runtime", "boot plan", -1 },
        { "600 MiB initrd in 512 MiB of memory", "boot plan", -1 },
    };

    [Theory]
    [MemberData(nameof(BzImageRules))]
    public void Plan_RejectsBzImageBreakingTheBootProtocol(string rule, string structure, long offset)
    {
        using var dir = new TempDir();
        var request = new BootRequest { KernelPath = k.BzImage, MemoryMiB = 512 };
        switch (rule)
        {
            case "cmdline 2113 bytes > cmdline_size 2047":
                request = request with { Cmdline = "console=ttyS0 " + new string('x', 2113 - 14) };
                Assert.Equal(2113, request.Cmdline.Length);
                break;
            case "version 2.01 (no high command line)":
                request = request with { KernelPath = PatchedKernel(dir, b => WriteU16(b, 0x206, 0x0201)) };
                break;
            case "loadflags without LOADED_HIGH (zImage)":
                request = request with { KernelPath = PatchedKernel(dir, b => b[0x211] &= 0xFE) };
                break;
            case "setup_sects 80 overflows the 0x8000 real-mode area":
                // (80 + 1) * 512 = 0xA200; kernel_info_offset (2.15) counts from the moved protected-mode start, so drop it
                request = request with { KernelPath = PatchedKernel(dir, b => { b[0x1F1] = 80; WriteU32(b, 0x268, 0); }) };
                break;
            case "relocatable load of a kernel with relocatable_kernel 0":
                request = request with { KernelPath = PatchedKernel(dir, b => b[0x234] = 0), LoadAddress = 0x200000 };
                break;
            case "load address 0x180000 not aligned to min_alignment":
                request = request with { LoadAddress = 0x180000 };
                break;
            case "2 MiB initrd above initrd_addr_max 0xFFFFF":
                // XLF_CAN_BE_LOADED_ABOVE_4G (xloadflags bit 1) would let QEMU ignore initrd_addr_max: clear it too
                request = request with
                {
                    KernelPath = PatchedKernel(dir, b => { WriteU32(b, 0x22C, 0x000FFFFF); b[0x236] &= 0xFD; }),
                    Initrds = [Sparse(dir.File("initrd"), 2 << 20)],
                };
                break;
            case "32 MiB cannot hold init_size":
                request = request with { MemoryMiB = 32 };
                break;
            case "60 MiB initrd in 96 MiB overlaps the kernel runtime":
                request = request with { MemoryMiB = 96, Initrds = [Sparse(dir.File("initrd"), 60 << 20)] };
                break;
            case "600 MiB initrd in 512 MiB of memory":
                request = request with { Initrds = [Sparse(dir.File("initrd"), 600L << 20)] };
                break;
            default:
                Assert.Fail("no such rule: " + rule);
                break;
        }
        var ex = Rejects(() => DirectBoot.Plan(request, new RuntimePaths(dir.File("run")), NoKvm));
        Assert.Equal(structure, ex.Structure);
        Assert.Equal(offset, ex.Offset);
        Assert.Contains("expected", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Plan_RejectsCommandLineLongerThanCmdlineSize_NamingBothLengths()
    {
        using var dir = new TempDir();
        var ex = Rejects(() => DirectBoot.Plan(new BootRequest { KernelPath = k.BzImage, Cmdline = new string('a', 2113) }, new RuntimePaths(dir.Path), NoKvm));
        Assert.Equal("bzImage setup header at offset 0x238: command line is 2113 bytes; expected at most 2047 (cmdline_size, protocol 2.15)", ex.Message);
        // 2047 itself is allowed: cmdline_size excludes the terminating NUL
        var ok = DirectBoot.Plan(new BootRequest { KernelPath = k.BzImage, Cmdline = new string('a', 2047) }, new RuntimePaths(dir.Path), NoKvm);
        Assert.Equal(2048UL, Region(ok, "command line").SizeInBytes);
    }

    [Fact]
    public void Plan_AcceptsTheInitrdThatJustFitsAboveTheKernelRuntime()
    {
        // boundary of the overlap rule: 96 MiB, initrd ending at the top of usable RAM and starting at the runtime end
        using var dir = new TempDir();
        var h = Header.Read(k.BzImage);
        ulong top = (96UL << 20) - AcpiDataSize - 1;
        ulong runtimeEnd = h.PrefAddress + h.InitSize;
        long fits = (long)(top - runtimeEnd) & ~0xFFFL;
        var plan = DirectBoot.Plan(new BootRequest { KernelPath = k.BzImage, MemoryMiB = 96, Initrds = [Sparse(dir.File("a"), fits)] }, new RuntimePaths(dir.Path), NoKvm);
        Assert.True(Region(plan, "initrd").Start >= runtimeEnd);
        Rejects(() => DirectBoot.Plan(new BootRequest { KernelPath = k.BzImage, MemoryMiB = 96, Initrds = [Sparse(dir.File("b"), fits + 0x1001)] }, new RuntimePaths(dir.Path), NoKvm));
    }

    // ---- the request itself ----

    public static TheoryData<string> RequestRules => new()
    {
        "memory 8 MiB",
        "memory 2 TiB",
        "vcpus 0",
        "vcpus 256",
        "cmdline with NUL",
        "cmdline with newline",
    };

    [Theory]
    [MemberData(nameof(RequestRules))]
    public void Plan_RejectsImpossibleRequests(string rule)
    {
        var request = new BootRequest { KernelPath = k.BzImage };
        request = rule switch
        {
            "memory 8 MiB" => request with { MemoryMiB = 8 },
            "memory 2 TiB" => request with { MemoryMiB = 2 * 1024 * 1024 },
            "vcpus 0" => request with { Vcpus = 0 },
            "vcpus 256" => request with { Vcpus = 256 },
            "cmdline with NUL" => request with { Cmdline = "console=ttyS0\0init=/bin/sh" },
            "cmdline with newline" => request with { Cmdline = "console=ttyS0\ninit=/bin/sh" },
            _ => throw new ArgumentOutOfRangeException(nameof(rule)),
        };
        using var dir = new TempDir();
        var ex = Rejects(() => DirectBoot.Plan(request, new RuntimePaths(dir.Path), NoKvm));
        Assert.Equal("boot request", ex.Structure);
        Assert.Equal(-1, ex.Offset);
    }

    // ---- ELF via PVH ----

    private static RuntimePaths Runtime => new(Path.Combine(Path.GetTempPath(), "domboot-unused"));

    private static BootPlan PlanElf(byte[] bytes, BootRequest? request = null) =>
        BootPlanner.Plan(request ?? new BootRequest { KernelPath = "vmlinux" }, KernelInspector.Inspect(bytes, "vmlinux"),
            new BootInputSizes(request?.Initrds.Select(_ => 4096L).ToList() ?? [], request?.Modules.Select(_ => 4096L).ToList() ?? []), Tcg, Runtime);

    [Fact]
    public void Plan_RejectsElfWithoutPvhNote()
    {
        var bytes = (byte[])k.VmlinuxBytes.Clone();
        // the PHYS32_ENTRY note: namesz 4, descsz 8, type 0x12, "Xen\0"; retype it to an unknown Xen note
        byte[] pattern = [4, 0, 0, 0, 8, 0, 0, 0, 0x12, 0, 0, 0, (byte)'X', (byte)'e', (byte)'n', 0];
        int at = bytes.AsSpan((int)k.VmlinuxNoteOffset, 0x1000).IndexOf(pattern);
        Assert.True(at >= 0, "PHYS32_ENTRY note not found in the NOTE segment");
        bytes[(int)k.VmlinuxNoteOffset + at + 8] = 0x7F;
        var ex = Rejects(() => PlanElf(bytes));
        Assert.Equal(("ELF kernel", 0L), (ex.Structure, ex.Offset));
        Assert.Contains("PVH", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Plan_RejectsElfWhoseFlagsQemuElfbootRefuses()
    {
        var bytes = (byte[])k.VmlinuxBytes.Clone();
        bytes[48] = 0x04; // ELF64 e_flags
        var ex = Rejects(() => PlanElf(bytes));
        Assert.Equal(("ELF header", 48L), (ex.Structure, ex.Offset));
        Assert.Contains("e_flags is 0x4", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Plan_RejectsElfWhosePtLoadLiesBeyondGuestMemory()
    {
        // vmlinux's last PT_LOAD ends just under 62 MiB: 62 MiB minus the ACPI area cannot hold it, 64 MiB can
        int tooSmall = (int)((k.VmlinuxLoads.Max(s => s.End) + AcpiDataSize - 1) >> 20);
        ulong usable = ((ulong)tooSmall << 20) - AcpiDataSize;
        int first = Enumerable.Range(0, k.VmlinuxLoads.Count).First(i => k.VmlinuxLoads[i].End > usable);
        var ex = Rejects(() => PlanElf(k.VmlinuxBytes, new BootRequest { KernelPath = "vmlinux", MemoryMiB = tooSmall }));
        Assert.Equal("ELF program header " + first, ex.Structure);
        Assert.Equal(-1, ex.Offset);
        var ok = PlanElf(k.VmlinuxBytes, new BootRequest { KernelPath = "vmlinux", MemoryMiB = tooSmall + 1 });
        Assert.Equal(BootMethod.Pvh, ok.Method);
    }

    [Fact]
    public void Plan_RejectsModuleForPvhKernel()
    {
        var ex = Rejects(() => PlanElf(k.VmlinuxBytes, new BootRequest { KernelPath = "vmlinux", Modules = [new MultibootModule("initrd", "")] }));
        Assert.Equal(("boot request", -1L), (ex.Structure, ex.Offset));
        Assert.Contains("--module", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Plan_RejectsPvhLinuxCommandLineLongerThanCommandLineSize()
    {
        var ex = Rejects(() => PlanElf(k.VmlinuxBytes, new BootRequest { KernelPath = "vmlinux", Cmdline = new string('a', 2048) }));
        Assert.Equal(("boot request", -1L), (ex.Structure, ex.Offset));
        Assert.Equal(BootMethod.Pvh, PlanElf(k.VmlinuxBytes, new BootRequest { KernelPath = "vmlinux", Cmdline = new string('a', 2047) }).Method);
    }

    [Fact]
    public void Plan_RejectsPvhInitrdOverlappingTheKernel()
    {
        using var dir = new TempDir();
        // 64 MiB holds the PT_LOADs (end just under 62 MiB) but not a 4 MiB initrd above them as well
        var ex = Rejects(() => DirectBoot.Plan(new BootRequest { KernelPath = k.Vmlinux, MemoryMiB = 64, Initrds = [Sparse(dir.File("i"), 4 << 20)] }, new RuntimePaths(dir.Path), NoKvm));
        Assert.Equal(("boot plan", -1L), (ex.Structure, ex.Offset));
    }

    [Fact]
    public void Plan_RejectsPvhElfWithoutPtLoad()
    {
        var elf = SynthElf64(phType: 4, note: ("Xen", 0x12, BitConverter.GetBytes(0x100000u)), multiboot: false);
        var kernel = KernelInspector.Inspect(elf, "tiny");
        Assert.Equal(KernelKind.Elf, kernel.Kind);
        var ex = Rejects(() => BootPlanner.Plan(new BootRequest { KernelPath = "tiny" }, kernel, new BootInputSizes([], []), Tcg, Runtime));
        Assert.Equal(("ELF kernel", 0L), (ex.Structure, ex.Offset));
    }

    // ---- Multiboot ----

    private static BootPlan PlanBytes(byte[] bytes, BootRequest? request = null) =>
        BootPlanner.Plan(request ?? new BootRequest { KernelPath = "mb" }, KernelInspector.Inspect(bytes, "mb"),
            new BootInputSizes(request?.Initrds.Select(_ => 4096L).ToList() ?? [], request?.Modules.Select(_ => 4096L).ToList() ?? []), Tcg, Runtime);

    [Fact]
    public void Plan_RejectsMultiboot2OnlyImage()
    {
        var image = new byte[8192];
        image[0] = 0xFA;
        const int at = 0x1000;
        // header: magic, architecture 0, header_length 24, checksum; then the end tag (type 0, flags 0, size 8)
        WriteU32(image, at, 0xE85250D6);
        WriteU32(image, at + 8, 24);
        WriteU32(image, at + 12, unchecked(0u - 0xE85250D6u - 24u));
        WriteU32(image, at + 20, 8);
        var kernel = KernelInspector.Inspect(image, "mb2");
        Assert.Equal(KernelKind.Multiboot, kernel.Kind);
        var ex = Rejects(() => PlanBytes(image));
        Assert.Equal(("Multiboot 2 header", (long)at), (ex.Structure, ex.Offset));
    }

    [Fact]
    public void Plan_RejectsElf64MultibootWithoutAddressFields()
    {
        var elf = SynthElf64(phType: 1, note: null, multiboot: true);
        Assert.Equal(KernelKind.Multiboot, KernelInspector.Inspect(elf, "mb64").Kind);
        var ex = Rejects(() => PlanBytes(elf));
        Assert.Equal(("ELF header", 4L), (ex.Structure, ex.Offset));
    }

    [Fact]
    public void Plan_RejectsMultibootWithUnknownRequiredFlags()
    {
        var image = new byte[4096];
        image[0] = 0xFA;
        const int at = 0x40;
        const uint flags = 0x00010008; // bit 3: required, unknown to QEMU and to us
        WriteU32(image, at, 0x1BADB002);
        WriteU32(image, at + 4, flags);
        WriteU32(image, at + 8, unchecked(0u - 0x1BADB002u - flags));
        WriteU32(image, at + 16, 0x100000);
        var ex = Rejects(() => PlanBytes(image));
        Assert.Equal(("Multiboot header", at + 4L), (ex.Structure, ex.Offset));
    }

    [Fact]
    public void Plan_RejectsMultibootModulePathWithASpace()
    {
        using var dir = new TempDir();
        var module = Bytes(dir.File("dom0 kernel"), 100);
        var ex = Rejects(() => DirectBoot.Plan(new BootRequest { KernelPath = k.XenGz, Modules = [new MultibootModule(module, "console=hvc0")] }, new RuntimePaths(dir.Path), NoKvm));
        Assert.Equal(("boot request", -1L), (ex.Structure, ex.Offset));
        Assert.Contains("space", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Plan_RejectsInitrdForMultibootKernel()
    {
        using var dir = new TempDir();
        var initrd = Bytes(dir.File("initrd"), 100);
        var ex = Rejects(() => DirectBoot.Plan(new BootRequest { KernelPath = k.XenGz, Initrds = [initrd] }, new RuntimePaths(dir.Path), NoKvm));
        Assert.Equal(("boot request", -1L), (ex.Structure, ex.Offset));
        Assert.Contains("--initrd", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Plan_RejectsMultibootModulesTooBigForMemory()
    {
        using var dir = new TempDir();
        var big = Sparse(dir.File("big"), 100 << 20);
        var ex = Rejects(() => DirectBoot.Plan(new BootRequest { KernelPath = k.XenGz, MemoryMiB = 64, Modules = [new MultibootModule(big, "")] }, new RuntimePaths(dir.Path), NoKvm));
        Assert.Equal(("boot plan", -1L), (ex.Structure, ex.Offset));
    }

    // ---- UKI ----

    [Fact]
    public void Plan_RejectsUkiWhoseLinuxSectionIsNotABzImage()
    {
        var elf = SynthElf64(phType: 1, note: ("Xen", 0x12, BitConverter.GetBytes(0x100000u)), multiboot: false);
        var elfPath = k.PathOf("tiny-pvh.elf");
        File.WriteAllBytes(elfPath, elf);
        var uki = k.UkiWithLinux("uki-elf.efi", elfPath);
        using var dir = new TempDir();
        var ex = Rejects(() => DirectBoot.Plan(new BootRequest { KernelPath = uki }, new RuntimePaths(dir.Path), NoKvm));
        Assert.Equal("UKI .linux section", ex.Structure);
        Assert.Equal(KernelInspector.Inspect(uki).Uki!.FindSection(".linux")!.FileOffset, ex.Offset);
    }

    /// <summary>
    /// A 4 KiB little-endian ELF64 with one program header of <paramref name="phType"/> at 0x100000, optionally one note
    /// (in a PT_NOTE would need a second header; here the note sits in an SHT_NOTE section) and a Multiboot 1 header
    /// (flags 0x3: no address fields) at 0x200.
    /// </summary>
    private static byte[] SynthElf64(uint phType, (string Name, uint Type, byte[] Desc)? note, bool multiboot)
    {
        var b = new byte[4096];
        b[0] = 0x7F; b[1] = (byte)'E'; b[2] = (byte)'L'; b[3] = (byte)'F';
        b[4] = 2; b[5] = 1; b[6] = 1;
        WriteU16(b, 16, 2);       // e_type EXEC
        WriteU16(b, 18, 62);      // e_machine x86-64
        WriteU32(b, 20, 1);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(24), 0x100000); // e_entry
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(32), 64);       // e_phoff
        WriteU16(b, 52, 64); WriteU16(b, 54, 56); WriteU16(b, 56, 1);    // e_ehsize, e_phentsize, e_phnum
        const int ph = 64;
        WriteU32(b, ph, phType); WriteU32(b, ph + 4, 5);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(ph + 8), 0);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(ph + 16), 0x100000);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(ph + 24), 0x100000);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(ph + 32), 4096);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(ph + 40), 4096);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(ph + 48), 0x1000);
        if (multiboot)
        {
            WriteU32(b, 0x200, 0x1BADB002);
            WriteU32(b, 0x204, 0x3);
            WriteU32(b, 0x208, unchecked(0u - 0x1BADB002u - 3u));
        }
        if (note is { } n)
        {
            // note at 0x400, one SHT_NOTE section header at 0x800 (after a null section header)
            const int at = 0x400;
            var name = System.Text.Encoding.ASCII.GetBytes(n.Name + "\0");
            WriteU32(b, at, (uint)name.Length); WriteU32(b, at + 4, (uint)n.Desc.Length); WriteU32(b, at + 8, n.Type);
            name.CopyTo(b, at + 12);
            n.Desc.CopyTo(b, at + 12 + ((name.Length + 3) & ~3));
            int noteSize = 12 + ((name.Length + 3) & ~3) + ((n.Desc.Length + 3) & ~3);
            BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(40), 0x800); // e_shoff
            WriteU16(b, 58, 64); WriteU16(b, 60, 2); WriteU16(b, 62, 0);  // e_shentsize, e_shnum, e_shstrndx
            const int sh = 0x800 + 64;
            WriteU32(b, sh + 4, 7); // SHT_NOTE
            BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(sh + 24), at);
            BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(sh + 32), (ulong)noteSize);
        }
        return b;
    }
}
