using DomBoot.Formats.Errors;

namespace DomBoot.Formats.Kernel;

/// <summary>What a kernel file is, by the decision order of boot-formats.md 5.3 and QEMU's x86_load_linux (2.1).</summary>
public enum KernelKind
{
    /// <summary>x86 Linux boot protocol image ("HdrS" at 0x202), possibly also an EFI PE.</summary>
    BzImage,
    /// <summary>An ELF kernel (vmlinux, PVH or Xen PV guest kernel).</summary>
    Elf,
    /// <summary>A Multiboot 1/2 kernel (e.g. the Xen hypervisor) that is not a Linux/PVH ELF.</summary>
    Multiboot,
    /// <summary>A Unified Kernel Image (PE with a .linux section).</summary>
    Uki,
}

/// <summary>The result of <see cref="KernelInspector.Inspect(ReadOnlySpan{byte}, string)"/>.</summary>
public sealed record KernelImage
{
    public required string FileName { get; init; }
    public required KernelKind Kind { get; init; }
    /// <summary>Size of the file as given (the gzip file when <see cref="WasGzipWrapped"/>).</summary>
    public required long FileSizeInBytes { get; init; }
    /// <summary>The file was gzip and was inflated; offsets in the parts are then offsets in the inflated bytes.</summary>
    public bool WasGzipWrapped { get; init; }
    public long? InflatedSizeInBytes { get; init; }
    public BzImage? BzImage { get; init; }
    public ElfKernel? Elf { get; init; }
    public Multiboot1Header? Multiboot1 { get; init; }
    public Multiboot2Header? Multiboot2 { get; init; }
    public UkiImage? Uki { get; init; }
}

/// <summary>Identifies and parses a kernel image: bzImage, gzip-wrapped ELF/Multiboot, UKI, ELF, Multiboot.</summary>
public static class KernelInspector
{
    internal const string StructureName = "kernel image";

    /// <summary>Reads <paramref name="path"/> (at most <see cref="Limits.MaxKernelFileBytes"/>) and inspects it.</summary>
    public static KernelImage Inspect(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes;
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan))
        {
            long length = fs.Length;
            if (length > Limits.MaxKernelFileBytes)
                throw MalformedDataException.Field(StructureName + " " + Quote.Text(path), 0, "file size", length,
                    FormattableString.Invariant($"at most {Limits.MaxKernelFileBytes} bytes"));
            bytes = new byte[length];
            fs.ReadExactly(bytes);
        }
        return Inspect(bytes, Path.GetFileName(path));
    }

    /// <summary>Inspects a whole kernel file held in memory.</summary>
    public static KernelImage Inspect(ReadOnlySpan<byte> file, string fileName) => Inspect(file, fileName, 0, 0);

    internal static KernelImage Inspect(ReadOnlySpan<byte> file, string fileName, long imageOffset, int depth, bool insideGzip = false)
    {
        if (depth > Limits.MaxNestingDepth)
            throw new MalformedDataException(StructureName, imageOffset,
                FormattableString.Invariant($"nested more than {Limits.MaxNestingDepth} containers deep"));
        if (file.Length == 0)
            throw new TruncatedDataException(StructureName, imageOffset, BzImageSetupHeader.Constants.MinimumFileSize, 0);

        if (BzImageSetupHeader.HasMagic(file))
        {
            return new KernelImage
            {
                FileName = fileName,
                Kind = KernelKind.BzImage,
                FileSizeInBytes = file.Length,
                BzImage = BzImage.Parse(file, imageOffset),
            };
        }

        if (GzipKernel.HasMagic(file))
        {
            if (insideGzip)
                throw new UnsupportedFeatureException(FormattableString.Invariant(
                    $"{StructureName} at offset 0x{imageOffset:X}: gzip inside gzip is not supported"));
            var inflated = GzipKernel.Inflate(file, imageOffset, Limits.MaxInflatedBytes);
            var inner = Inspect(inflated.Span, fileName, 0, depth + 1, insideGzip: true);
            return inner with
            {
                FileSizeInBytes = file.Length,
                WasGzipWrapped = true,
                InflatedSizeInBytes = inflated.Length,
            };
        }

        PeImage? pe = PeImage.HasMagic(file) ? PeImage.Parse(file, imageOffset) : null;
        if (pe is not null && UkiImage.IsUki(pe))
        {
            return new KernelImage
            {
                FileName = fileName,
                Kind = KernelKind.Uki,
                FileSizeInBytes = file.Length,
                Uki = UkiImage.Parse(file, imageOffset, pe, fileName, depth),
            };
        }

        if (ElfKernel.HasMagic(file))
        {
            var elf = ElfKernel.Parse(file, imageOffset);
            var mb1 = Multiboot1Header.Find(file, imageOffset);
            var mb2 = Multiboot2Header.Find(file, imageOffset);
            bool multiboot = (mb1 is not null || mb2 is not null) && !elf.IsLinuxOrPvh;
            return new KernelImage
            {
                FileName = fileName,
                Kind = multiboot ? KernelKind.Multiboot : KernelKind.Elf,
                FileSizeInBytes = file.Length,
                Elf = elf,
                Multiboot1 = mb1,
                Multiboot2 = mb2,
            };
        }

        var m1 = Multiboot1Header.Find(file, imageOffset);
        var m2 = Multiboot2Header.Find(file, imageOffset);
        if (m1 is not null || m2 is not null)
        {
            return new KernelImage
            {
                FileName = fileName,
                Kind = KernelKind.Multiboot,
                FileSizeInBytes = file.Length,
                Multiboot1 = m1,
                Multiboot2 = m2,
            };
        }

        if (file.Length < BzImageSetupHeader.Constants.MinimumFileSize)
            throw new TruncatedDataException(StructureName, imageOffset, BzImageSetupHeader.Constants.MinimumFileSize, file.Length);
        int at = BzImageSetupHeader.Offsets.Header;
        string expected = "\"HdrS\" (bzImage), ELF magic at 0x0, a Multiboot header in the first 8192 bytes, or a PE image with a .linux section"
            + (pe is not null ? FormattableString.Invariant($" (this PE has {pe.NumberOfSections} sections and no .linux)") : "");
        throw MalformedDataException.Field(StructureName, imageOffset + at, "header", Quote.Bytes(file.Slice(at, 4)), expected);
    }
}
