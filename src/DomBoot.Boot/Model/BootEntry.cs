namespace DomBoot.Boot.Model;

/// <summary>
/// A file named by a boot config: an optional GRUB device ("(hd0,gpt2)", "(hd0,msdos5)", "(hd0)") and a path on
/// it. Device null = the config's current root ($root for GRUB2, `root` for GRUB legacy, the config's own volume
/// for syslinux/BLS).
/// </summary>
public sealed record GuestPath(string? Device, string Path)
{
    public override string ToString() => Device is null ? Path : Device + Path;
}

/// <summary>A Multiboot module line: the file and the command line the kernel sees for it.</summary>
public sealed record BootModule(GuestPath File, string Args);

public enum BootEntryKind { Linux, Multiboot }

/// <summary>One bootable menu entry, as the guest's boot loader would show it.</summary>
public sealed record BootEntry
{
    /// <summary>Position in the flattened menu (0-based, in config order; submenu children follow their submenu).</summary>
    public required int Index { get; init; }
    public required string Title { get; init; }

    /// <summary>GRUB2 --id (or $menuentry_id_option id), BLS file id, syslinux LABEL; null when the config has none.</summary>
    public string? Id { get; init; }

    /// <summary>GRUB2 menu path: ["Advanced options for Debian", "Debian, with Linux 6.1.0"]; one element at top level.</summary>
    public IReadOnlyList<string> MenuPath { get; init; } = [];

    public BootEntryKind Kind { get; init; } = BootEntryKind.Linux;

    /// <summary>Linux: the kernel. Multiboot: the multiboot kernel (e.g. /boot/xen.gz).</summary>
    public GuestPath? Kernel { get; init; }

    /// <summary>Linux: initrds in order (GRUB2 initrd with several files). Empty for Multiboot.</summary>
    public IReadOnlyList<GuestPath> Initrds { get; init; } = [];

    /// <summary>Linux: the kernel command line. Multiboot: the multiboot kernel's own command line.</summary>
    public string Args { get; init; } = "";

    public IReadOnlyList<BootModule> Modules { get; init; } = [];

    /// <summary>Config file and line the entry came from, e.g. "/boot/grub/grub.cfg:42".</summary>
    public required string Source { get; init; }
}

/// <summary>The menu a config produces and which entry the loader picks, with why.</summary>
public sealed record BootMenu
{
    /// <summary>"grub2", "grub-legacy", "syslinux", "bls", "none" (newest kernel without any config).</summary>
    public required string ConfigFormat { get; init; }
    public required string ConfigPath { get; init; }
    public required IReadOnlyList<BootEntry> Entries { get; init; }

    /// <summary>Index into <see cref="Entries"/>, or -1 when the menu is empty.</summary>
    public required int DefaultIndex { get; init; }

    /// <summary>Human words: "default=\"saved\" -> saved_entry=\"Debian GNU/Linux\" (grubenv)".</summary>
    public required string DefaultReason { get; init; }

    public IReadOnlyList<int> FallbackIndexes { get; init; } = [];
    public int? TimeoutSeconds { get; init; }
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>
/// What config evaluators may ask of the guest's disks. Implemented over the real volumes by discovery and by
/// in-memory fakes in tests. Every path is inside the guest filesystem; nothing reaches the host.
/// </summary>
public interface IGuestFiles
{
    /// <summary>GRUB name of the volume the config being evaluated was found on, e.g. "(hd0,gpt2)".</summary>
    string DefaultDevice { get; }

    /// <summary>All volumes with a filesystem, by GRUB name.</summary>
    IReadOnlyList<GuestVolumeInfo> Volumes { get; }

    bool FileExists(GuestPath path);
    bool DirectoryExists(GuestPath path);

    /// <summary>Size of a regular file, or null when absent.</summary>
    long? FileSize(GuestPath path);

    /// <summary>The whole file, at most <paramref name="maxBytes"/> (longer = MalformedDataException); null when absent.</summary>
    byte[]? ReadFile(GuestPath path, long maxBytes);

    /// <summary>Names in a directory (no "." or ".."), or empty when absent.</summary>
    IReadOnlyList<string> ListDirectory(GuestPath path);
}

/// <summary>A volume as GRUB's search and Linux's fstab see it.</summary>
public sealed record GuestVolumeInfo(string GrubDevice, string LinuxName, string? FsType, string? Uuid, string? Label, string? PartUuid, string? PartLabel);
