using DomBoot.Engine.Accel;

namespace DomBoot.Engine.Planning;

public enum BootMethod
{
    /// <summary>Linux x86 boot protocol (bzImage), via QEMU's linuxboot option ROM.</summary>
    LinuxBootProtocol,

    /// <summary>An ELF kernel entered at its XEN_ELFNOTE_PHYS32_ENTRY (PVH boot ABI).</summary>
    Pvh,

    /// <summary>Multiboot 1 kernel with modules (e.g. the Xen hypervisor with dom0 kernel and initrd).</summary>
    Multiboot,

    /// <summary>UEFI firmware (OVMF) boots the UKI from an ESP image built at run time.</summary>
    Uefi,

    /// <summary>QEMU's iPXE network ROM fetches the boot URL over user-mode networking.</summary>
    Netboot,
}

/// <summary>What the guest's iPXE is told: the URL it fetches and the user-mode network it is on.</summary>
public sealed record NetbootPlan(string RequestedUrl, string GuestUrl, string Network, string HostAddress, string GuestAddress, string NetdevOptions, string RomFile);

/// <summary>One range of guest-physical memory the plan uses.</summary>
public sealed record MemoryRegion(string What, ulong Start, ulong SizeInBytes)
{
    public ulong End => Start + SizeInBytes;
}

/// <summary>A boot-protocol header field the loader writes.</summary>
public sealed record HeaderWrite(string Field, int Offset, ulong Value, string Why);

/// <summary>A file domboot must make before QEMU starts (concatenated initrds, a gunzipped kernel).</summary>
public sealed record PreparedFile(string Path, string What, IReadOnlyList<FileRange> Sources, bool Gunzip, int AlignEachTo);

/// <summary>A byte range of an input file (Length null = to the end).</summary>
public sealed record FileRange(string Path, long Offset = 0, long? Length = null);

/// <summary>Everything decided before QEMU starts: validated layout, accelerator and the exact argv.</summary>
public sealed record BootPlan
{
    public required BootMethod Method { get; init; }
    public required string KernelKind { get; init; }
    public required string KernelPath { get; init; }
    public string? Protocol { get; init; }
    public string? KernelRelease { get; init; }
    public required string Cmdline { get; init; }
    public required ulong MemoryBytes { get; init; }
    public required int Vcpus { get; init; }
    public required AcceleratorChoice Accelerator { get; init; }
    public IReadOnlyList<MemoryRegion> Layout { get; init; } = [];
    public IReadOnlyList<HeaderWrite> HeaderWrites { get; init; } = [];
    public IReadOnlyList<PreparedFile> Prepare { get; init; } = [];
    public IReadOnlyList<string> Notes { get; init; } = [];
    public IReadOnlyList<string> QemuArgv { get; init; } = [];

    /// <summary>The initrd files as given (one is passed straight to QEMU; several are concatenated first).</summary>
    public IReadOnlyList<string> InitrdPaths { get; init; } = [];

    /// <summary>Direct kernel load or UEFI firmware.</summary>
    public BootFirmware Firmware { get; init; } = BootFirmware.Direct;

    /// <summary>Set for <see cref="BootMethod.Netboot"/>.</summary>
    public NetbootPlan? Netboot { get; init; }

    /// <summary>Multiboot modules in order.</summary>
    public IReadOnlyList<MultibootModule> ModuleArguments { get; init; } = [];
}
