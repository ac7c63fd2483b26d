using DomBoot.Formats.Errors;
using DomBoot.Formats.Kernel;

namespace DomBoot.Net.Packing;

/// <summary>Splits a UKI back into its parts: the files linux, initrd, cmdline, osrel, uname from the sections present.</summary>
public static class UkiUnpacker
{
    /// <summary>Section name -> output file name, in the order written.</summary>
    public static readonly IReadOnlyList<(string Section, string File)> Parts =
    [
        (".linux", "linux"), (".initrd", "initrd"), (".cmdline", "cmdline"), (".osrel", "osrel"), (".uname", "uname"),
    ];

    /// <summary>The parts present in <paramref name="image"/> (a whole UKI file in memory), by output file name.</summary>
    public static IReadOnlyList<(string File, ReadOnlyMemory<byte> Data)> Split(ReadOnlyMemory<byte> image, string fileName)
    {
        var kernel = KernelInspector.Inspect(image.Span, fileName);
        if (kernel.Kind != KernelKind.Uki || kernel.Uki is not { } uki)
            throw new MalformedDataException("UKI " + Quote.Text(fileName), 0, $"is a {kernel.Kind}; expected a UKI (a PE image with a .linux section)");
        var parts = new List<(string, ReadOnlyMemory<byte>)>();
        foreach (var (section, file) in Parts)
        {
            // UkiImage sections were bounded against the file by PeImage.Parse
            if (uki.FindSection(section) is { } s)
                parts.Add((file, image.Slice((int)s.FileOffset, (int)s.SizeInBytes)));
        }
        return parts;
    }

    /// <summary>Reads <paramref name="imagePath"/> and writes its parts into <paramref name="outputDirectory"/> (created if needed).</summary>
    public static IReadOnlyList<string> UnpackToDirectory(string imagePath, string outputDirectory)
    {
        ArgumentNullException.ThrowIfNull(imagePath);
        ArgumentNullException.ThrowIfNull(outputDirectory);
        var info = new FileInfo(imagePath);
        if (!info.Exists) throw new FileNotFoundException($"{imagePath}: no such file", imagePath);
        if (info.Length > UkiPacker.Limits.MaxOutputBytes)
            throw MalformedDataException.Field("UKI " + Quote.Text(imagePath), 0, "file size", info.Length, $"at most {UkiPacker.Limits.MaxOutputBytes} bytes");
        var parts = Split(File.ReadAllBytes(imagePath), Path.GetFileName(imagePath));
        Directory.CreateDirectory(outputDirectory);
        var written = new List<string>();
        foreach (var (file, data) in parts)
        {
            var path = Path.Combine(outputDirectory, file);
            AtomicFile.Write(path, data.Span);
            written.Add(path);
        }
        return written;
    }
}
