namespace DomBoot.Formats.Kernel;

/// <summary>Bounds on everything a kernel image can make the inspector read, allocate or loop over.</summary>
public static class Limits
{
    /// <summary>Largest kernel file <see cref="KernelInspector.Inspect(string)"/> reads.</summary>
    public const long MaxKernelFileBytes = 512L * 1024 * 1024;

    /// <summary>Largest output a gzip-wrapped kernel may inflate to.</summary>
    public const long MaxInflatedBytes = 256L * 1024 * 1024;

    /// <summary>ELF e_phnum / e_shnum and the total number of ELF notes walked.</summary>
    public const int MaxElfProgramHeaders = 4096;
    public const int MaxElfSections = 4096;
    public const int MaxElfNotes = 4096;

    /// <summary>Longest string read from a note descriptor, the kernel version string or a section.</summary>
    public const int MaxNoteStringBytes = 4096;
    public const int MaxKernelVersionBytes = 1024;
    public const int MaxXenGuestBytes = 4096;
    public const int MaxXenGuestNameLength = 31;
    public const int MaxXenGuestValueLength = 127;

    /// <summary>Bytes searched for a Multiboot 1 / Multiboot 2 header (the specs' limits).</summary>
    public const int Multiboot1SearchBytes = 8192;
    public const int Multiboot2SearchBytes = 32768;
    public const int MaxMultiboot2Tags = 512;

    /// <summary>PE NumberOfSections.</summary>
    public const int MaxPeSections = 1024;

    /// <summary>Longest UKI text section (.cmdline, .osrel, .uname) decoded.</summary>
    public const int MaxUkiTextBytes = 64 * 1024;

    /// <summary>Containers inside containers (gzip, UKI .linux) the inspector follows.</summary>
    public const int MaxNestingDepth = 3;
}
