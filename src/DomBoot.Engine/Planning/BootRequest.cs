using DomBoot.Engine.Accel;

namespace DomBoot.Engine.Planning;

/// <summary>A Multiboot module: a file plus the string the kernel sees for it (Xen: module 0 is dom0's kernel and its command line).</summary>
public sealed record MultibootModule(string Path, string Arguments);

/// <summary>How the guest gets from power-on to the kernel.</summary>
public enum BootFirmware
{
    /// <summary>QEMU loads the kernel itself (-kernel; a UKI's .linux, .initrd and .cmdline are taken out first).</summary>
    Direct,

    /// <summary>Real UEFI firmware (Debian's OVMF) boots the UKI as \EFI\BOOT\BOOTX64.EFI from an ESP image.</summary>
    Uefi,
}

/// <summary>What the user asked to boot.</summary>
public sealed record BootRequest
{
    public required string KernelPath { get; init; }
    public IReadOnlyList<string> Initrds { get; init; } = [];
    public IReadOnlyList<MultibootModule> Modules { get; init; } = [];
    public string Cmdline { get; init; } = "";
    public int MemoryMiB { get; init; } = 512;
    public int Vcpus { get; init; } = 1;
    public AcceleratorRequest Accelerator { get; init; } = AcceleratorRequest.Auto;

    /// <summary>
    /// Where to put a bzImage's protected-mode code. Null = where QEMU's loader puts it (0x100000). Another address
    /// is a relocatable load (boot protocol 2.05+): it must be aligned and code32_start is rewritten to it.
    /// </summary>
    public ulong? LoadAddress { get; init; }

    /// <summary>Direct kernel load (default) or boot through UEFI firmware (a UKI or EFI-stub kernel only).</summary>
    public BootFirmware Firmware { get; init; } = BootFirmware.Direct;

    /// <summary>
    /// Boot from QEMU's iPXE ROM, which fetches this URL (an iPXE script or a bootable image) over the guest's own
    /// user-mode network; KernelPath is then unused. A URL on 127.0.0.1/localhost is rewritten to the host's address
    /// as the guest sees it (10.0.2.2, or the gateway of <see cref="NetbootAddress"/>).
    /// </summary>
    public string? Netboot { get; init; }

    /// <summary>cstrap's "ADDR:MASK:GW" (MASK dotted or a prefix length): the address the guest's iPXE gets.</summary>
    public string? NetbootAddress { get; init; }

    /// <summary>Name shown in QEMU's process list and window title.</summary>
    public string Name { get; init; } = "domboot";
}
