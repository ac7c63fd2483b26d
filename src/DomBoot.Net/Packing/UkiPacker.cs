using System.Buffers.Binary;
using System.Text;
using DomBoot.Formats.Errors;
using DomBoot.Formats.Kernel;

namespace DomBoot.Net.Packing;

/// <summary>What goes into a Unified Kernel Image: the stub and the payload sections, all as bytes.</summary>
public sealed record UkiPackRequest
{
    /// <summary>Debian's systemd-stub (package systemd-boot-efi).</summary>
    public const string DefaultStubPath = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

    public required ReadOnlyMemory<byte> Stub { get; init; }
    /// <summary>The kernel (an x86 bzImage) for .linux.</summary>
    public required ReadOnlyMemory<byte> Linux { get; init; }
    /// <summary>Initrds, concatenated into .initrd with each one starting 4-aligned.</summary>
    public IReadOnlyList<ReadOnlyMemory<byte>> Initrds { get; init; } = [];
    public string? Cmdline { get; init; }
    public string? OsRelease { get; init; }
    /// <summary>`uname -r`; null = the release from the kernel's version string (none when it has none).</summary>
    public string? Uname { get; init; }

    /// <summary>Reads the named files (the stub from <see cref="DefaultStubPath"/> unless given).</summary>
    public static UkiPackRequest FromFiles(string kernelPath, IReadOnlyList<string> initrdPaths, string? cmdline, string? osReleasePath, string? stubPath = null)
    {
        ArgumentNullException.ThrowIfNull(kernelPath);
        ArgumentNullException.ThrowIfNull(initrdPaths);
        stubPath ??= DefaultStubPath;
        if (!File.Exists(stubPath))
            throw new UnavailableException($"systemd-stub {Quote.Text(stubPath)} not found; run scripts/setup.sh (installs Debian's systemd-boot-efi)");
        return new UkiPackRequest
        {
            Stub = ReadBounded(stubPath),
            Linux = ReadBounded(kernelPath),
            Initrds = initrdPaths.Select(p => (ReadOnlyMemory<byte>)ReadBounded(p)).ToList(),
            Cmdline = cmdline,
            OsRelease = osReleasePath is null ? null : Encoding.UTF8.GetString(ReadBounded(osReleasePath)),
        };
    }

    private static byte[] ReadBounded(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"{path}: no such file", path);
        if (info.Length > UkiPacker.Limits.MaxInputBytes)
            throw new UnsupportedFeatureException($"{path} is {info.Length} bytes; expected at most {UkiPacker.Limits.MaxInputBytes} (a UKI is a PE file limited to 4 GiB)");
        return File.ReadAllBytes(path);
    }
}

/// <summary>
/// Builds a UKI (UAPI specs/unified_kernel_image.md) the way `ukify`/`objcopy --add-section` do: the stub's headers
/// and sections copied unchanged, then .osrel, .cmdline, .uname, .initrd and .linux appended as initialized,
/// read-only data sections at the stub's SectionAlignment/FileAlignment (Microsoft PE/COFF specification).
/// </summary>
public static class UkiPacker
{
    internal static class Limits
    {
        public const long MaxInputBytes = 2L << 30;
        public const long MaxOutputBytes = int.MaxValue - 4096;
        public const uint MaxAlignment = 0x10000;
    }

    /// <summary>Optional-header fields PeImage does not expose, relative to the optional header.</summary>
    private static class Offsets
    {
        public const int SizeOfInitializedData = 8;
        public const int SizeOfImage = 56;
        public const int CheckSum = 64;
        // relative to the PE signature
        public const int NumberOfSections = 6;
        public const int OptionalHeader = 24;
        // relative to a section header
        public const int VirtualSize = 8;
        public const int VirtualAddress = 12;
        public const int SizeOfRawData = 16;
        public const int PointerToRawData = 20;
        public const int Characteristics = 36;
    }

    private const int SectionHeaderSize = 40;
    /// <summary>IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ (objcopy's "data,readonly").</summary>
    public const uint DataReadOnly = 0x40000040;
    private const string Stub = "systemd-stub";

    /// <summary>A section of the packed image, as written.</summary>
    public sealed record PackedSection(string Name, uint VirtualAddress, uint VirtualSize, uint PointerToRawData, uint SizeOfRawData);

    /// <summary>Builds the UKI in memory; <paramref name="sections"/> lists the sections appended.</summary>
    public static byte[] Pack(UkiPackRequest request, out IReadOnlyList<PackedSection> sections)
    {
        ArgumentNullException.ThrowIfNull(request);
        var stub = request.Stub.Span;
        var pe = PeImage.Parse(stub, 0);
        if (UkiImage.IsUki(pe))
            throw new MalformedDataException(Stub, 0, "already has a .linux section; expected a bare stub");
        if (pe.CertificateTableSize != 0)
            throw new UnsupportedFeatureException("the stub is signed (certificate table present); appending sections would invalidate the signature — use an unsigned stub and sign the UKI afterwards");
        if (pe.SectionAlignment == 0 || pe.FileAlignment == 0 || pe.SectionAlignment > Limits.MaxAlignment || pe.FileAlignment > Limits.MaxAlignment
            || !uint.IsPow2(pe.SectionAlignment) || !uint.IsPow2(pe.FileAlignment))
            throw new MalformedDataException(Stub, pe.PeHeaderOffset + 24 + 32,
                FormattableString.Invariant($"SectionAlignment 0x{pe.SectionAlignment:X} / FileAlignment 0x{pe.FileAlignment:X}; expected powers of two up to 0x{Limits.MaxAlignment:X}"));

        var payload = new List<(string Name, byte[] Data)>();
        if (request.OsRelease is { } osrel) payload.Add((".osrel", Encoding.UTF8.GetBytes(osrel)));
        if (request.Cmdline is { } cmdline) payload.Add((".cmdline", Encoding.UTF8.GetBytes(cmdline)));
        string? uname = request.Uname ?? UnameOf(request.Linux.Span);
        if (uname is not null) payload.Add((".uname", Encoding.UTF8.GetBytes(uname)));
        if (request.Initrds.Count > 0) payload.Add((".initrd", ConcatInitrds(request.Initrds)));
        payload.Add((".linux", request.Linux.ToArray()));

        int table = checked((int)pe.PeHeaderOffset + Offsets.OptionalHeader + pe.SizeOfOptionalHeader);
        int tableEnd = checked(table + (pe.NumberOfSections + payload.Count) * SectionHeaderSize);
        uint firstRaw = pe.Sections.Where(s => s.SizeOfRawData != 0).Select(s => s.PointerToRawData).DefaultIfEmpty(pe.SizeOfHeaders).Min();
        if (tableEnd > pe.SizeOfHeaders || tableEnd > firstRaw)
            throw new UnsupportedFeatureException(FormattableString.Invariant(
                $"the stub's headers have room for {(Math.Min(pe.SizeOfHeaders, firstRaw) - table) / SectionHeaderSize} section headers (SizeOfHeaders 0x{pe.SizeOfHeaders:X}); {pe.NumberOfSections + payload.Count} are needed"));
        if (tableEnd > stub.Length)
            throw new TruncatedDataException(Stub + " section table", table, tableEnd - table, stub.Length - (long)table);
        for (int i = table + pe.NumberOfSections * SectionHeaderSize; i < tableEnd; i++)
            if (stub[i] != 0)
                throw new MalformedDataException(Stub, i, "bytes after the section table are not zero; expected free room for new section headers");

        ulong rawEnd = (ulong)stub.Length;
        ulong vaEnd = pe.SizeOfImage;
        foreach (var s in pe.Sections)
        {
            rawEnd = Math.Max(rawEnd, (ulong)s.PointerToRawData + s.SizeOfRawData);
            vaEnd = Math.Max(vaEnd, (ulong)s.VirtualAddress + Math.Max(s.VirtualSize, s.SizeOfRawData));
        }
        ulong raw = AlignUp(rawEnd, pe.FileAlignment);
        ulong va = AlignUp(vaEnd, pe.SectionAlignment);
        var written = new List<PackedSection>();
        ulong addedInitialized = 0;
        foreach (var (name, data) in payload)
        {
            ulong rawSize = AlignUp((ulong)data.Length, pe.FileAlignment);
            written.Add(new PackedSection(name, Fit(va), Fit((ulong)data.Length), Fit(raw), Fit(rawSize)));
            raw += rawSize;
            va = AlignUp(va + Math.Max((ulong)data.Length, 1), pe.SectionAlignment);
            addedInitialized += rawSize;
        }
        if (raw > Limits.MaxOutputBytes || va > uint.MaxValue)
            throw new UnsupportedFeatureException($"the UKI would be {raw} bytes; expected at most {Limits.MaxOutputBytes}");

        var output = new byte[raw];
        stub.CopyTo(output);
        int pe0 = (int)pe.PeHeaderOffset;
        int opt = pe0 + Offsets.OptionalHeader;
        for (int i = 0; i < written.Count; i++)
        {
            var s = written[i];
            var h = output.AsSpan(table + (pe.NumberOfSections + i) * SectionHeaderSize, SectionHeaderSize);
            h.Clear();
            Encoding.ASCII.GetBytes(s.Name).CopyTo(h);
            BinaryPrimitives.WriteUInt32LittleEndian(h[Offsets.VirtualSize..], s.VirtualSize);
            BinaryPrimitives.WriteUInt32LittleEndian(h[Offsets.VirtualAddress..], s.VirtualAddress);
            BinaryPrimitives.WriteUInt32LittleEndian(h[Offsets.SizeOfRawData..], s.SizeOfRawData);
            BinaryPrimitives.WriteUInt32LittleEndian(h[Offsets.PointerToRawData..], s.PointerToRawData);
            BinaryPrimitives.WriteUInt32LittleEndian(h[Offsets.Characteristics..], DataReadOnly);
            payload[i].Data.CopyTo(output.AsSpan((int)s.PointerToRawData));
        }
        BinaryPrimitives.WriteUInt16LittleEndian(output.AsSpan(pe0 + Offsets.NumberOfSections), checked((ushort)(pe.NumberOfSections + written.Count)));
        BinaryPrimitives.WriteUInt32LittleEndian(output.AsSpan(opt + Offsets.SizeOfImage), Fit(va));
        uint initialized = BinaryPrimitives.ReadUInt32LittleEndian(output.AsSpan(opt + Offsets.SizeOfInitializedData));
        BinaryPrimitives.WriteUInt32LittleEndian(output.AsSpan(opt + Offsets.SizeOfInitializedData), Fit(initialized + addedInitialized));
        BinaryPrimitives.WriteUInt32LittleEndian(output.AsSpan(opt + Offsets.CheckSum), 0);
        BinaryPrimitives.WriteUInt32LittleEndian(output.AsSpan(opt + Offsets.CheckSum), Checksum(output, opt + Offsets.CheckSum));
        sections = written;
        return output;
    }

    /// <summary>Builds the UKI and writes it to <paramref name="outputPath"/> atomically (a temporary file renamed over it).</summary>
    public static IReadOnlyList<PackedSection> PackToFile(UkiPackRequest request, string outputPath)
    {
        ArgumentNullException.ThrowIfNull(outputPath);
        var bytes = Pack(request, out var sections);
        AtomicFile.Write(outputPath, bytes);
        return sections;
    }

    /// <summary>The PE image checksum (as imagehlp's CheckSumMappedFile): 16-bit one's-complement-style sum plus the file length.</summary>
    internal static uint Checksum(ReadOnlySpan<byte> file, int checksumOffset)
    {
        ulong sum = 0;
        int i = 0;
        for (; i + 1 < file.Length; i += 2)
        {
            if (i == checksumOffset || i == checksumOffset + 2) continue;
            sum += BinaryPrimitives.ReadUInt16LittleEndian(file[i..]);
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        if (i < file.Length) { sum += file[i]; sum = (sum & 0xFFFF) + (sum >> 16); }
        sum = (sum & 0xFFFF) + (sum >> 16);
        return (uint)(sum + (ulong)file.Length);
    }

    private static string? UnameOf(ReadOnlySpan<byte> linux)
    {
        try { return KernelInspector.Inspect(linux, ".linux").BzImage?.KernelRelease; }
        catch (MalformedDataException) { return null; }
        catch (UnsupportedFeatureException) { return null; }
    }

    private static byte[] ConcatInitrds(IReadOnlyList<ReadOnlyMemory<byte>> initrds)
    {
        long total = 0;
        foreach (var i in initrds) total = checked((long)AlignUp((ulong)total, 4) + i.Length);
        if (total > Limits.MaxOutputBytes) throw new UnsupportedFeatureException($"initrds total {total} bytes; expected at most {Limits.MaxOutputBytes}");
        var all = new byte[total];
        long at = 0;
        foreach (var i in initrds)
        {
            at = (long)AlignUp((ulong)at, 4);
            i.Span.CopyTo(all.AsSpan((int)at));
            at += i.Length;
        }
        return all;
    }

    private static ulong AlignUp(ulong v, ulong a) => checked((v + a - 1) / a * a);

    private static uint Fit(ulong v) => v <= uint.MaxValue ? (uint)v
        : throw new UnsupportedFeatureException(FormattableString.Invariant($"a PE field would be 0x{v:X}; expected at most 0xFFFFFFFF"));
}

/// <summary>Writes a file by renaming a complete temporary file over it, so no reader sees half of it.</summary>
internal static class AtomicFile
{
    public static void Write(string path, ReadOnlySpan<byte> bytes)
    {
        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, "." + Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }
}
