using DomBoot.Engine.Accel;

namespace DomBoot.Engine.Planning;

/// <summary>A Multiboot module: a file plus the string the kernel sees for it (Xen: module 0 is dom0's kernel and its command line).</summary>
public sealed record MultibootModule(string Path, string Arguments);

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

    /// <summary>Name shown in QEMU's process list and window title.</summary>
    public string Name { get; init; } = "domboot";
}
