using System.Globalization;
using System.Text;
using DomBoot.Engine.Accel;
using DomBoot.Formats.Kernel;

namespace DomBoot.Engine.Planning;

/// <summary>Sizes of the files a request names, measured by the caller (the planner itself does no I/O).</summary>
public sealed record BootInputSizes(IReadOnlyList<long> InitrdSizes, IReadOnlyList<long> ModuleSizes);

/// <summary>Where prepared files go and where QEMU's QMP socket lives.</summary>
public sealed record RuntimePaths(string Directory)
{
    public string QmpSocket => Path.Combine(Directory, "qmp.sock");
    public string Initrd => Path.Combine(Directory, "initrd.img");
    public string Kernel => Path.Combine(Directory, "kernel");
    /// <summary>The FAT ESP image holding \EFI\BOOT\BOOTX64.EFI (UEFI boot).</summary>
    public string Esp => Path.Combine(Directory, "esp.img");
    /// <summary>This guest's writable copy of OVMF's variable store (UEFI boot).</summary>
    public string FirmwareVars => Path.Combine(Directory, "ovmf-vars.fd");
}

/// <summary>
/// Validates a boot request against the kernel's own rules, as a careful loader would, and lays out guest memory
/// the way QEMU 7.2's loaders will (hw/i386/x86.c x86_load_linux, load_elfboot; hw/i386/multiboot.c), so the plan
/// printed by --dry-run is what happens. Pure: bytes were parsed already, sizes were measured by the caller.
/// </summary>
public static class BootPlanner
{
    // QEMU pc machine (7.2): real-mode setup, command line and protected-mode code for protocol >= 2.02 bzImages.
    public const ulong RealModeAddress = 0x10000;
    public const ulong CmdlineAddress = 0x20000;
    public const ulong ProtectedModeAddress = 0x100000;
    public const ulong RealModeAreaBytes = 0x8000; // boot.rst: real-mode code and heap live below X+0x8000
    public const ulong AcpiDataSize = 0x20000 + 0x8000; // pc machine types >= 2.x reserve this below the top of low RAM
    public const ulong LowMemoryCutoff = 0xE0000000; // i440fx: RAM from here on is split and the low part ends at 3 GiB
    public const ulong LowMemoryWhenSplit = 0xC0000000;
    public const uint DefaultInitrdAddrMax = 0x37FFFFFF; // boot.rst: protocol < 2.03
    public const int LinuxCommandLineSize = 2048; // arch/x86/include/asm/setup.h COMMAND_LINE_SIZE (with the NUL)
    public const int MinMemoryMiB = 16;
    public const int MaxMemoryMiB = 1024 * 1024;
    public const int MaxVcpus = 255;
    public const uint ElfbootUnsupportedFlags = 0x00010004; // QEMU load_elfboot refuses these e_flags bits

    private const string SetupHeader = "bzImage setup header";

    public static BootPlan Plan(BootRequest request, KernelImage kernel, BootInputSizes sizes, AcceleratorChoice accel, RuntimePaths runtime)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentNullException.ThrowIfNull(sizes);
        if (request.MemoryMiB < MinMemoryMiB || request.MemoryMiB > MaxMemoryMiB)
            throw new BootValidationException("boot request", -1, $"memory is {request.MemoryMiB} MiB; expected {MinMemoryMiB} to {MaxMemoryMiB}");
        if (request.Vcpus < 1 || request.Vcpus > MaxVcpus)
            throw new BootValidationException("boot request", -1, $"vcpus is {request.Vcpus}; expected 1 to {MaxVcpus}");
        if (request.Cmdline.Contains('\0', StringComparison.Ordinal) || request.Cmdline.Contains('\n', StringComparison.Ordinal))
            throw new BootValidationException("boot request", -1, "command line contains a NUL or newline; expected one line of text");

        if (request.Firmware == BootFirmware.Uefi)
        {
            var uefi = PlanUefi(request, kernel, accel);
            return uefi with { QemuArgv = QemuCommandLine.Build(uefi, runtime) };
        }
        var plan = kernel.Kind switch
        {
            KernelKind.BzImage => PlanBzImage(request, kernel, kernel.BzImage!, request.KernelPath, request.Cmdline, [], sizes, accel, runtime),
            KernelKind.Uki => PlanUki(request, kernel, sizes, accel, runtime),
            KernelKind.Elf => PlanPvh(request, kernel, sizes, accel, runtime),
            KernelKind.Multiboot => PlanMultiboot(request, kernel, sizes, accel, runtime),
            _ => throw new BootValidationException("kernel image", 0, $"kind is {kernel.Kind}; expected bzImage, ELF (PVH), Multiboot or UKI"),
        };
        plan = plan with { InitrdPaths = request.Initrds, ModuleArguments = request.Modules };
        return plan with { QemuArgv = QemuCommandLine.Build(plan, runtime) };
    }

    /// <summary>Top of usable low RAM as QEMU lays it out, minus the ACPI tables at its end.</summary>
    public static ulong BelowFourGigabytes(ulong memoryBytes) => memoryBytes >= LowMemoryCutoff ? LowMemoryWhenSplit : memoryBytes;

    private static BootPlan PlanBzImage(BootRequest request, KernelImage kernel, BzImage bz, string kernelFileForQemu, string cmdline,
        List<FileRange> embeddedInitrds, BootInputSizes sizes, AcceleratorChoice accel, RuntimePaths runtime)
    {
        var h = bz.Header;
        long hdr = h.ImageOffset;
        var notes = new List<string>();
        var writes = new List<HeaderWrite>();
        var layout = new List<MemoryRegion>();
        ulong memory = (ulong)request.MemoryMiB << 20;
        ulong below4g = BelowFourGigabytes(memory);

        if (!h.IsBzImage)
            throw Fail(hdr + 0x211, "loadflags", FormattableString.Invariant($"0x{(byte)h.LoadFlags:X2} (protocol {h.ProtocolText})"),
                "LOADED_HIGH set (a bzImage, protocol 2.00+); zImage kernels load below 1 MiB and are not supported");

        ulong setupBytes = (ulong)h.ProtectedModeOffset;
        if (setupBytes > RealModeAreaBytes)
            throw Fail(hdr + 0x1F1, "setup_sects", h.SetupSects.ToString(CultureInfo.InvariantCulture),
                FormattableString.Invariant($"at most {RealModeAreaBytes / 512 - 1} (real-mode code must fit the 0x{RealModeAreaBytes:X}-byte area below its heap)"));
        if (h.Version < 0x0202)
            throw Fail(hdr + 0x206, "version", h.ProtocolText, "2.02 or later (the command line protocol QEMU uses for high kernels)");

        // Command line: boot.rst "cmdline_size" (2.06+), 255 before; QEMU does not check, the kernel truncates or hangs.
        int cmdBytes = Encoding.UTF8.GetByteCount(cmdline);
        if (cmdBytes > h.CmdlineSize)
            throw new BootValidationException(SetupHeader, hdr + 0x238,
                FormattableString.Invariant($"command line is {cmdBytes} bytes; expected at most {h.CmdlineSize} (cmdline_size, protocol {h.ProtocolText})"));

        long initrdTotal = SumAligned(sizes.InitrdSizes, 4);
        if (initrdTotal > 0 && h.Version < 0x0200)
            throw Fail(hdr + 0x206, "version", h.ProtocolText, "2.00 or later to load an initrd");

        // Where the protected-mode code goes; a relocatable load elsewhere rewrites code32_start (boot.rst 2.05).
        ulong load = request.LoadAddress ?? ProtectedModeAddress;
        if (request.LoadAddress is { } wanted && wanted != ProtectedModeAddress)
        {
            if (!h.IsRelocatable)
                throw new BootValidationException(SetupHeader, hdr + 0x234, FormattableString.Invariant(
                    $"relocatable_kernel is {(h.RelocatableKernel ? 1 : 0)} (protocol {h.ProtocolText}); expected protocol 2.05+ with relocatable_kernel set to load at 0x{wanted:X}"));
            ulong align = h.Version >= 0x020A && h.MinAlignment is { } lg && lg < 32 ? 1UL << lg : h.KernelAlignment ?? 1;
            if (align == 0 || wanted % align != 0)
                throw new BootValidationException(SetupHeader, hdr + (h.Version >= 0x020A ? 0x235 : 0x230), FormattableString.Invariant(
                    $"load address 0x{wanted:X} is not aligned to 0x{align:X}; expected a multiple of the kernel's {(h.Version >= 0x020A ? "min_alignment" : "kernel_alignment")}"));
            writes.Add(new HeaderWrite("code32_start", 0x214, wanted, "relocatable load: the 16-bit entry jumps here"));
            notes.Add(FormattableString.Invariant($"relocatable load at 0x{wanted:X} (kernel_alignment 0x{h.KernelAlignment ?? 0:X})"));
        }

        // Where the decompressed kernel will run (arch/x86/boot/compressed/head_64.S): relocatable kernels align
        // their load address up to kernel_alignment but never go below LOAD_PHYSICAL_ADDR (pref_address).
        ulong pref = h.PrefAddress ?? ProtectedModeAddress;
        ulong runtimeStart = h.IsRelocatable && h.KernelAlignment is { } ka and > 0
            ? Math.Max(AlignUp(load, ka), pref)
            : pref;
        ulong initSize = h.InitSize ?? checked((ulong)kernel.FileSizeInBytes * 4);
        if (h.InitSize is null) notes.Add("protocol before 2.10 has no init_size; assumed 4 x the file size");
        ulong runtimeEnd = checked(runtimeStart + initSize);

        layout.Add(new MemoryRegion("real-mode setup + boot_params", RealModeAddress, setupBytes));
        layout.Add(new MemoryRegion("command line", CmdlineAddress, (ulong)cmdBytes + 1));
        ulong pmBytes = (ulong)Math.Max(0, kernel.FileSizeInBytes - h.ProtectedModeOffset);
        layout.Add(new MemoryRegion("protected-mode kernel (compressed)", load, pmBytes));
        layout.Add(new MemoryRegion(h.IsRelocatable ? "kernel runtime (init_size, relocatable)" : "kernel runtime (init_size, fixed)", runtimeStart, initSize));

        if (runtimeEnd > below4g - AcpiDataSize)
            throw new BootValidationException(SetupHeader, hdr + 0x260, FormattableString.Invariant(
                $"init_size 0x{initSize:X} from 0x{runtimeStart:X} ends at 0x{runtimeEnd:X}; guest memory is {request.MemoryMiB} MiB (usable to 0x{below4g - AcpiDataSize:X}), expected at least {MiBNeeded(runtimeEnd + AcpiDataSize)} MiB"));

        writes.Add(new HeaderWrite("type_of_loader", 0x210, 0xB0, "QEMU's loader id"));
        writes.Add(new HeaderWrite("loadflags", 0x211, (ulong)((byte)h.LoadFlags | 0x80), "CAN_USE_HEAP"));
        writes.Add(new HeaderWrite("heap_end_ptr", 0x224, CmdlineAddress - RealModeAddress - 0x200, "end of setup heap, minus 0x200"));
        writes.Add(new HeaderWrite("cmd_line_ptr", 0x228, CmdlineAddress, "command line address"));

        var prepare = new List<PreparedFile>();
        if (initrdTotal > 0)
        {
            // QEMU x86_load_linux: initrd_max from the header, 4 GiB with XLF_CAN_BE_LOADED_ABOVE_4G, clamped to RAM.
            ulong initrdMax = h.Version >= 0x020C && (h.XLoadFlags & XLoadFlags.CanBeLoadedAbove4G) != 0 ? uint.MaxValue
                : h.Version >= 0x0203 ? h.InitrdAddrMax : DefaultInitrdAddrMax;
            bool headerLimit = true;
            if (initrdMax >= below4g - AcpiDataSize) { initrdMax = below4g - AcpiDataSize - 1; headerLimit = false; }
            ulong size = (ulong)initrdTotal;
            if (size >= initrdMax)
                throw headerLimit
                    ? new BootValidationException(SetupHeader, hdr + 0x22C, FormattableString.Invariant(
                        $"initrd is {size} bytes; expected it to fit below initrd_addr_max 0x{initrdMax:X}"))
                    : new BootValidationException("boot plan", -1, FormattableString.Invariant(
                        $"initrd is {size} bytes; guest memory is {request.MemoryMiB} MiB, expected more than {MiBNeeded(size + runtimeEnd + AcpiDataSize)} MiB"));
            ulong initrdAddr = (initrdMax - size) & ~0xFFFUL;
            if (initrdAddr < runtimeEnd)
                throw new BootValidationException("boot plan", -1, FormattableString.Invariant(
                    $"kernel needs 0x{runtimeStart:X}..0x{runtimeEnd:X} (init_size) and the {size}-byte initrd must lie below 0x{initrdMax + 1:X}: they overlap; guest memory is {request.MemoryMiB} MiB, expected at least {MiBNeeded(runtimeEnd + size + 0x1000 + AcpiDataSize)} MiB{(headerLimit ? " (or a smaller initrd: initrd_addr_max caps it)" : "")}"));
            layout.Add(new MemoryRegion(sizes.InitrdSizes.Count > 1 ? "initrd (concatenated)" : "initrd", initrdAddr, size));
            writes.Add(new HeaderWrite("ramdisk_image", 0x218, initrdAddr, "initrd address"));
            writes.Add(new HeaderWrite("ramdisk_size", 0x21C, size, "initrd size"));
            var sources = embeddedInitrds.Concat(request.Initrds.Select(p => new FileRange(p))).ToList();
            if (sources.Count > 1 || sources.Any(s => s.Offset != 0 || s.Length is not null))
                prepare.Add(new PreparedFile(runtime.Initrd, "initrd", sources, Gunzip: false, AlignEachTo: 4));
        }

        return new BootPlan
        {
            Method = BootMethod.LinuxBootProtocol,
            KernelKind = kernel.Kind == KernelKind.Uki ? "UKI (bzImage in .linux)" : bz.IsEfiPe ? "bzImage (also an EFI PE image)" : "bzImage",
            KernelPath = kernelFileForQemu,
            Protocol = h.ProtocolText,
            KernelRelease = bz.KernelRelease,
            Cmdline = cmdline,
            MemoryBytes = memory,
            Vcpus = request.Vcpus,
            Accelerator = accel,
            Layout = layout,
            HeaderWrites = writes,
            Prepare = prepare,
            Notes = notes,
        };
    }

    private static BootPlan PlanUki(BootRequest request, KernelImage kernel, BootInputSizes sizes, AcceleratorChoice accel, RuntimePaths runtime)
    {
        var uki = kernel.Uki!;
        var linuxSection = uki.FindSection(".linux")!;
        var inner = uki.Linux.BzImage
            ?? throw new BootValidationException("UKI .linux section", linuxSection.FileOffset, $"holds a {uki.Linux.Kind}; expected an x86 bzImage");
        var embedded = new List<FileRange>();
        var sizesWith = new List<long>();
        foreach (var name in new[] { ".ucode", ".initrd" })
        {
            if (uki.FindSection(name) is { } s && s.SizeInBytes > 0)
            {
                embedded.Add(new FileRange(request.KernelPath, s.FileOffset, s.SizeInBytes));
                sizesWith.Add(s.SizeInBytes);
            }
        }
        sizesWith.AddRange(sizes.InitrdSizes);
        string cmdline = request.Cmdline.Length > 0 ? request.Cmdline : (uki.Cmdline ?? "").Trim();
        var plan = PlanBzImage(request, uki.Linux, inner, runtime.Kernel, cmdline, embedded, sizes with { InitrdSizes = sizesWith }, accel, runtime);
        var prepare = new List<PreparedFile> { new(runtime.Kernel, "kernel (.linux section of the UKI)", [new FileRange(request.KernelPath, linuxSection.FileOffset, linuxSection.SizeInBytes)], false, 1) };
        prepare.AddRange(plan.Prepare);
        var notes = plan.Notes.ToList();
        notes.Add(request.Cmdline.Length > 0 ? "command line given on the command line overrides the UKI's .cmdline" : "command line from the UKI's .cmdline section");
        return plan with { KernelKind = "UKI (bzImage in .linux)", Prepare = prepare, Notes = notes };
    }

    private static BootPlan PlanPvh(BootRequest request, KernelImage kernel, BootInputSizes sizes, AcceleratorChoice accel, RuntimePaths runtime)
    {
        var elf = kernel.Elf!;
        ulong memory = (ulong)request.MemoryMiB << 20;
        ulong below4g = BelowFourGigabytes(memory);
        var notes = new List<string>();
        if (elf.Phys32Entry is not { } entry)
            throw new BootValidationException("ELF kernel", 0, "has no Xen PVH note (XEN_ELFNOTE_PHYS32_ENTRY, type 18); expected one for direct ELF boot (QEMU boots an uncompressed ELF only through PVH)");
        if ((elf.Flags & ElfbootUnsupportedFlags) != 0)
            throw new BootValidationException("ELF header", elf.Class == 64 ? 48 : 36, FormattableString.Invariant(
                $"e_flags is 0x{elf.Flags:X}; expected none of 0x{ElfbootUnsupportedFlags:X} (QEMU elfboot)"));
        if (request.Modules.Count > 0)
            throw new BootValidationException("boot request", -1, "--module is for Multiboot kernels; expected --initrd for an ELF (PVH) kernel");

        var layout = new List<MemoryRegion>();
        ulong kernelEnd = 0;
        foreach (var ph in elf.ProgramHeaders.Where(p => p.Type == 1))
        {
            ulong end;
            try { end = checked(ph.PAddr + ph.MemSize); }
            catch (OverflowException) { throw new BootValidationException("ELF program header " + ph.Index, -1, "p_paddr + p_memsz overflows"); }
            if (end > below4g - AcpiDataSize)
                throw new BootValidationException("ELF program header " + ph.Index, -1, FormattableString.Invariant(
                    $"PT_LOAD 0x{ph.PAddr:X}..0x{end:X} does not fit in guest memory of {request.MemoryMiB} MiB; expected at least {MiBNeeded(end + AcpiDataSize)} MiB"));
            layout.Add(new MemoryRegion("PT_LOAD segment " + ph.Index.ToString(CultureInfo.InvariantCulture), ph.PAddr, ph.MemSize));
            kernelEnd = Math.Max(kernelEnd, end);
        }
        if (layout.Count == 0) throw new BootValidationException("ELF kernel", 0, "has no PT_LOAD segment; expected at least one");
        layout.Add(new MemoryRegion("PVH entry (XEN_ELFNOTE_PHYS32_ENTRY)", entry, 0));

        int cmdBytes = Encoding.UTF8.GetByteCount(request.Cmdline);
        if (elf.LinuxBuildSalt is not null && cmdBytes > LinuxCommandLineSize - 1)
            throw new BootValidationException("boot request", -1, FormattableString.Invariant(
                $"command line is {cmdBytes} bytes; expected at most {LinuxCommandLineSize - 1} (x86 Linux COMMAND_LINE_SIZE)"));

        var prepare = new List<PreparedFile>();
        string kernelForQemu = request.KernelPath;
        if (kernel.WasGzipWrapped)
        {
            kernelForQemu = runtime.Kernel;
            prepare.Add(new PreparedFile(runtime.Kernel, "kernel (gunzipped: QEMU loads plain ELF)", [new FileRange(request.KernelPath)], Gunzip: true, AlignEachTo: 1));
        }
        long initrdTotal = SumAligned(sizes.InitrdSizes, 4);
        if (initrdTotal > 0)
        {
            ulong initrdMax = below4g - AcpiDataSize - 1;
            ulong size = (ulong)initrdTotal;
            ulong addr = size < initrdMax ? (initrdMax - size) & ~0xFFFUL : 0;
            if (size >= initrdMax || addr < kernelEnd)
                throw new BootValidationException("boot plan", -1, FormattableString.Invariant(
                    $"kernel ends at 0x{kernelEnd:X} and the {size}-byte initrd must end below 0x{initrdMax + 1:X}: they overlap; expected at least {MiBNeeded(kernelEnd + size + 0x1000 + AcpiDataSize)} MiB of guest memory"));
            layout.Add(new MemoryRegion(request.Initrds.Count > 1 ? "initrd (concatenated, PVH module 0)" : "initrd (PVH module 0)", addr, size));
            if (request.Initrds.Count > 1)
                prepare.Add(new PreparedFile(runtime.Initrd, "initrd", request.Initrds.Select(p => new FileRange(p)).ToList(), false, 4));
        }
        notes.Add("hvm_start_info, memory map and command line are placed by QEMU's pvh.bin option ROM");
        return new BootPlan
        {
            Method = BootMethod.Pvh,
            KernelKind = (kernel.WasGzipWrapped ? "gzip-wrapped " : "") + $"ELF{(elf.Class)} with PVH note",
            KernelPath = kernelForQemu,
            KernelRelease = elf.LinuxBuildSalt,
            Cmdline = request.Cmdline,
            MemoryBytes = memory,
            Vcpus = request.Vcpus,
            Accelerator = accel,
            Layout = layout,
            Prepare = prepare,
            Notes = notes,
        };
    }

    private static BootPlan PlanMultiboot(BootRequest request, KernelImage kernel, BootInputSizes sizes, AcceleratorChoice accel, RuntimePaths runtime)
    {
        ulong memory = (ulong)request.MemoryMiB << 20;
        ulong below4g = BelowFourGigabytes(memory);
        var mb = kernel.Multiboot1;
        if (mb is null)
            throw new BootValidationException("Multiboot 2 header", kernel.Multiboot2?.Offset ?? 0,
                "QEMU's loader boots Multiboot 1 only; expected a Multiboot 1 header (magic 0x1BADB002) in the first 8192 bytes");
        if (mb.UnknownRequiredFlags != 0)
            throw new BootValidationException("Multiboot header", mb.Offset + 4, FormattableString.Invariant(
                $"flags is 0x{mb.Flags:X8}; expected no unknown required bits (0x{mb.UnknownRequiredFlags:X})"));
        if (!mb.HasAddressFields && kernel.Elf is { Class: not 32 })
            throw new BootValidationException("ELF header", 4, "class is ELF64; expected ELF32 for a Multiboot kernel without address fields (QEMU: give a 32-bit image)");
        if (request.Initrds.Count > 0)
            throw new BootValidationException("boot request", -1, "--initrd is for Linux kernels; expected --module FILE[ ARGS] for a Multiboot kernel");

        var layout = new List<MemoryRegion>();
        ulong kernelEnd = 0;
        if (mb.HasAddressFields)
        {
            ulong start = mb.LoadAddr ?? 0;
            ulong end = Math.Max(mb.BssEndAddr ?? 0, mb.LoadEndAddr is { } le and > 0 ? le : start + (ulong)kernel.FileSizeInBytes);
            layout.Add(new MemoryRegion("kernel (a.out kludge)", start, end - Math.Min(end, start)));
            kernelEnd = end;
        }
        else
        {
            foreach (var ph in kernel.Elf!.ProgramHeaders.Where(p => p.Type == 1 && p.MemSize > 0))
            {
                layout.Add(new MemoryRegion("PT_LOAD segment " + ph.Index.ToString(CultureInfo.InvariantCulture), ph.PAddr, ph.MemSize));
                kernelEnd = Math.Max(kernelEnd, ph.PAddr + ph.MemSize);
            }
        }
        ulong cursor = AlignUp(kernelEnd, 0x1000);
        for (int i = 0; i < request.Modules.Count; i++)
        {
            var m = request.Modules[i];
            if (m.Path.Contains(' ', StringComparison.Ordinal))
                throw new BootValidationException("boot request", -1, $"module path {Formats.Errors.Quote.Text(m.Path)} contains a space; expected none (the Multiboot module string ends the file name at the first space)");
            ulong size = (ulong)sizes.ModuleSizes[i];
            layout.Add(new MemoryRegion($"module {i}: {Path.GetFileName(m.Path)}{(m.Arguments.Length > 0 ? " " + m.Arguments : "")}", cursor, size));
            cursor = AlignUp(checked(cursor + size), 0x1000);
        }
        if (cursor > below4g - AcpiDataSize)
            throw new BootValidationException("boot plan", -1, FormattableString.Invariant(
                $"kernel and modules need memory up to 0x{cursor:X}; guest memory is {request.MemoryMiB} MiB, expected at least {MiBNeeded(cursor + AcpiDataSize)} MiB"));

        var prepare = new List<PreparedFile>();
        string kernelForQemu = request.KernelPath;
        if (kernel.WasGzipWrapped)
        {
            kernelForQemu = runtime.Kernel;
            prepare.Add(new PreparedFile(runtime.Kernel, "kernel (gunzipped: QEMU's Multiboot loader reads plain ELF)", [new FileRange(request.KernelPath)], Gunzip: true, AlignEachTo: 1));
        }
        return new BootPlan
        {
            Method = BootMethod.Multiboot,
            KernelKind = (kernel.WasGzipWrapped ? "gzip-wrapped " : "") + (kernel.Elf is { } e ? $"ELF{(e.Class)} " : "") + "Multiboot 1"
                + (kernel.Multiboot2 is not null ? " (also Multiboot 2)" : ""),
            KernelPath = kernelForQemu,
            Cmdline = request.Cmdline,
            MemoryBytes = memory,
            Vcpus = request.Vcpus,
            Accelerator = accel,
            Layout = layout,
            Prepare = prepare,
            Notes = ["module placement is approximate: QEMU packs modules page-aligned after the kernel image",
                     "QEMU passes the kernel's file name as the first word of its command line (Xen drops it)"],
        };
    }

    private static BootPlan PlanUefi(BootRequest request, KernelImage kernel, AcceleratorChoice accel)
    {
        bool efiBzImage = kernel.Kind == KernelKind.BzImage && kernel.BzImage is { IsEfiPe: true };
        if (kernel.Kind != KernelKind.Uki && !efiBzImage)
            throw new BootValidationException("kernel image", 0, $"kind is {kernel.Kind}; expected a UKI (or an EFI-stub bzImage) for --firmware uefi");
        if (request.Initrds.Count > 0 || request.Modules.Count > 0)
            throw new BootValidationException("boot request", -1, "--initrd/--module cannot be passed through UEFI firmware; expected them packed into the UKI (domboot pack)");
        if (request.Cmdline.Length > 0)
            throw new BootValidationException("boot request", -1, "a command line cannot be passed through the firmware's default boot path; expected it in the UKI's .cmdline (domboot pack --cmdline)");
        if (request.LoadAddress is not null)
            throw new BootValidationException("boot request", -1, "a load address applies to direct boot only; the firmware and stub place the kernel");
        if (request.MemoryMiB < MinUefiMemoryMiB)
            throw new BootValidationException("boot request", -1, $"memory is {request.MemoryMiB} MiB; expected at least {MinUefiMemoryMiB} MiB for OVMF");
        var notes = new List<string>
        {
            "the ESP image and the firmware variable store are made in the runtime directory before QEMU starts",
            kernel.Uki?.Cmdline is { } c ? "command line from the UKI's .cmdline section (applied by systemd-stub)" : "no .cmdline section: the kernel gets no command line",
        };
        return new BootPlan
        {
            Method = BootMethod.Uefi,
            Firmware = BootFirmware.Uefi,
            KernelKind = kernel.Kind == KernelKind.Uki ? "UKI (booted by UEFI firmware)" : "bzImage EFI stub (booted by UEFI firmware)",
            KernelPath = request.KernelPath,
            KernelRelease = kernel.Uki?.Uname ?? kernel.Uki?.Linux.BzImage?.KernelRelease ?? kernel.BzImage?.KernelRelease,
            Cmdline = (kernel.Uki?.Cmdline ?? "").Trim(),
            MemoryBytes = (ulong)request.MemoryMiB << 20,
            Vcpus = request.Vcpus,
            Accelerator = accel,
            Notes = notes,
        };
    }

    public const int MinUefiMemoryMiB = 128;

    /// <summary>
    /// Plans a network boot: no kernel on the host side at all. QEMU's user-mode DHCP hands the URL to the iPXE ROM
    /// as the boot file name (slirp "bootfile"); iPXE fetches and runs it. The host parses nothing the guest fetches.
    /// </summary>
    public static BootPlan PlanNetboot(BootRequest request, AcceleratorChoice accel, RuntimePaths runtime)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(accel);
        ArgumentNullException.ThrowIfNull(runtime);
        string url = request.Netboot ?? throw new BootValidationException("boot request", -1, "no netboot URL");
        if (request.MemoryMiB < MinMemoryMiB || request.MemoryMiB > MaxMemoryMiB)
            throw new BootValidationException("boot request", -1, $"memory is {request.MemoryMiB} MiB; expected {MinMemoryMiB} to {MaxMemoryMiB}");
        if (request.Vcpus < 1 || request.Vcpus > MaxVcpus)
            throw new BootValidationException("boot request", -1, $"vcpus is {request.Vcpus}; expected 1 to {MaxVcpus}");
        if (request.KernelPath.Length > 0 || request.Initrds.Count > 0 || request.Modules.Count > 0 || request.Cmdline.Length > 0)
            throw new BootValidationException("boot request", -1, "--netboot takes the kernel, initrd and command line from the fetched iPXE script; expected no --kernel/--initrd/--module/--cmdline");
        if (request.Firmware != BootFirmware.Direct)
            throw new BootValidationException("boot request", -1, "--netboot uses QEMU's BIOS iPXE ROM; expected no --firmware");
        var net = NetbootNetwork.Parse(request.NetbootAddress);
        var guestUrl = NetbootNetwork.RewriteLoopback(url, net.Host);
        var netdev = FormattableString.Invariant($"net={net.Network},host={net.Host},dhcpstart={net.Guest},bootfile={guestUrl.Replace(",", ",,", StringComparison.Ordinal)}");
        var notes = new List<string> { "QEMU's DHCP hands the URL to iPXE as its boot file; iPXE fetches it over the guest's own network" };
        if (guestUrl != url) notes.Add($"the host's loopback is {net.Host} from the guest: URL rewritten to {guestUrl}");
        if (request.NetbootAddress is not null) notes.Add($"ip= is given to iPXE through QEMU's DHCP (the ROM takes no embedded script): net {net.Network}, guest {net.Guest}, gateway {net.Host}");
        var plan = new BootPlan
        {
            Method = BootMethod.Netboot,
            KernelKind = "fetched by iPXE",
            KernelPath = guestUrl,
            Cmdline = "",
            MemoryBytes = (ulong)request.MemoryMiB << 20,
            Vcpus = request.Vcpus,
            Accelerator = accel,
            Netboot = new NetbootPlan(url, guestUrl, net.Network, net.Host, net.Guest, netdev, QemuCommandLine.IpxeRom),
            Notes = notes,
        };
        return plan with { QemuArgv = QemuCommandLine.Build(plan, runtime) };
    }

    private static BootValidationException Fail(long offset, string field, string actual, string expected) =>
        new(SetupHeader, offset, $"{field} is {actual}; expected {expected}");

    private static long SumAligned(IEnumerable<long> sizes, int align)
    {
        long total = 0;
        foreach (var s in sizes) total = checked(AlignUp(total, align) + s);
        return total;
    }

    internal static long AlignUp(long v, long a) => checked((v + a - 1) / a * a);

    internal static ulong AlignUp(ulong v, ulong a) => checked((v + a - 1) / a * a);

    private static ulong MiBNeeded(ulong bytes) => (bytes + (1UL << 20) - 1) >> 20;
}

/// <summary>The guest's user-mode IPv4 network for netboot: QEMU's default 10.0.2.0/24, or one made from cstrap's ip=ADDR:MASK:GW.</summary>
internal sealed record NetbootNetwork(string Network, string Host, string Guest)
{
    public static readonly NetbootNetwork Default = new("10.0.2.0/24", "10.0.2.2", "10.0.2.15");

    public static NetbootNetwork Parse(string? spec)
    {
        if (spec is null) return Default;
        var s = spec.StartsWith("ip=", StringComparison.Ordinal) ? spec[3..] : spec;
        var parts = s.Split(':');
        if (parts.Length != 3) throw Bad(spec, "expected ADDR:MASK:GW");
        uint addr = Ipv4(parts[0], spec), gw = Ipv4(parts[2], spec);
        int prefix;
        if (int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int p) && parts[1].Length <= 2)
            prefix = p;
        else
        {
            uint mask = Ipv4(parts[1], spec);
            prefix = System.Numerics.BitOperations.PopCount(mask);
            if (prefix > 0 && mask != uint.MaxValue << (32 - prefix)) throw Bad(spec, "the mask is not contiguous");
            if (prefix == 0 && mask != 0) throw Bad(spec, "the mask is not contiguous");
        }
        if (prefix < 8 || prefix > 30) throw Bad(spec, "expected a prefix length from 8 to 30");
        uint netMask = uint.MaxValue << (32 - prefix);
        uint net = addr & netMask;
        if ((gw & netMask) != net) throw Bad(spec, "the gateway is not in the address's network");
        if (addr == gw) throw Bad(spec, "the address equals the gateway");
        if (addr == net || addr == (net | ~netMask) || gw == net || gw == (net | ~netMask)) throw Bad(spec, "the address or gateway is the network or broadcast address");
        return new NetbootNetwork(Text(net) + "/" + prefix.ToString(System.Globalization.CultureInfo.InvariantCulture), Text(gw), Text(addr));
    }

    /// <summary>http://127.0.0.1:PORT/... (or localhost, [::1]) -> http://HOST:PORT/...: the guest reaches the host's loopback at HOST.</summary>
    public static string RewriteLoopback(string url, string host)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https" or "tftp"))
            throw new BootValidationException("boot request", -1, $"netboot URL {Formats.Errors.Quote.Text(url)} is not an absolute http://, https:// or tftp:// URL");
        if (url.Any(c => c <= ' ' || c == 0x7F))
            throw new BootValidationException("boot request", -1, $"netboot URL {Formats.Errors.Quote.Text(url)} contains a space or control character");
        if (!uri.IsLoopback) return url;
        var b = new UriBuilder(uri) { Host = host };
        return b.Uri.AbsoluteUri;
    }

    private static uint Ipv4(string text, string spec)
    {
        if (!System.Net.IPAddress.TryParse(text, out var ip) || ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork || text.Count(c => c == '.') != 3)
            throw Bad(spec, $"{Formats.Errors.Quote.Text(text)} is not a dotted IPv4 address");
        var bytes = ip.GetAddressBytes();
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes);
    }

    private static string Text(uint a) => new System.Net.IPAddress([(byte)(a >> 24), (byte)(a >> 16), (byte)(a >> 8), (byte)a]).ToString();

    private static BootValidationException Bad(string spec, string why) =>
        new("boot request", -1, $"ip= {Formats.Errors.Quote.Text(spec)}: {why}");
}
