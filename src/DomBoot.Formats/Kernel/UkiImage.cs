using System.Text;

namespace DomBoot.Formats.Kernel;

/// <summary>One section of a UKI with the bytes it has in the file: [FileOffset, FileOffset + SizeInBytes).</summary>
public sealed record UkiSection(string Name, long FileOffset, uint SizeInBytes, uint VirtualAddress);

/// <summary>
/// A Unified Kernel Image (UAPI group specs/unified_kernel_image.md; systemd src/fundamental/uki.h): a PE (the
/// systemd-stub) with a .linux section holding the kernel, plus .initrd, .cmdline, .osrel, .uname, ... sections.
/// </summary>
public sealed record UkiImage
{
    internal const string StructureName = "UKI";

    /// <summary>The canonical UKI section names (uki.h order), the ones listed in <see cref="Sections"/>.</summary>
    public static readonly IReadOnlyList<string> KnownSectionNames =
    [
        ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat", ".pcrsig",
        ".pcrpkey", ".profile", ".dtbauto", ".hwids", ".efifw",
    ];

    public required PeImage Pe { get; init; }
    /// <summary>The UKI sections present, in file order (stub sections such as .text are in <see cref="Pe"/>).</summary>
    public IReadOnlyList<UkiSection> Sections { get; init; } = [];
    public string? Cmdline { get; init; }
    public string? Uname { get; init; }
    public string? OsRelease { get; init; }
    /// <summary>The kernel inside .linux, inspected recursively.</summary>
    public required KernelImage Linux { get; init; }

    public UkiSection? FindSection(string name) => Sections.FirstOrDefault(s => s.Name == name);

    /// <summary>A PE with a .linux section.</summary>
    public static bool IsUki(PeImage pe) => pe.FindSection(".linux") is not null;

    internal static UkiImage Parse(ReadOnlySpan<byte> file, long imageOffset, PeImage pe, string fileName, int depth)
    {
        var sections = new List<UkiSection>();
        foreach (var s in pe.Sections)
        {
            if (!KnownSectionNames.Contains(s.Name)) continue;
            sections.Add(new UkiSection(s.Name, imageOffset + s.PointerToRawData, s.FileDataSizeInBytes, s.VirtualAddress));
        }
        var linux = pe.FindSection(".linux")
            ?? throw new Errors.MalformedDataException(StructureName, imageOffset, "no .linux section; expected one in a UKI");
        // PeImage.Parse bounded PointerToRawData + SizeOfRawData by the file, and FileDataSizeInBytes <= SizeOfRawData
        var inner = PeImage.SectionData(file, linux);
        var kernel = KernelInspector.Inspect(inner, fileName + ":.linux", imageOffset + linux.PointerToRawData, depth + 1);
        return new UkiImage
        {
            Pe = pe,
            Sections = sections,
            Cmdline = Text(file, pe, ".cmdline"),
            Uname = Text(file, pe, ".uname"),
            OsRelease = Text(file, pe, ".osrel"),
            Linux = kernel,
        };
    }

    private static string? Text(ReadOnlySpan<byte> file, PeImage pe, string name)
    {
        if (pe.FindSection(name) is not { } s) return null;
        var bytes = PeImage.SectionData(file, s);
        if (bytes.Length > Limits.MaxUkiTextBytes) bytes = bytes[..Limits.MaxUkiTextBytes];
        int nul = bytes.IndexOf((byte)0);
        if (nul >= 0) bytes = bytes[..nul];
        return Encoding.UTF8.GetString(bytes);
    }
}
