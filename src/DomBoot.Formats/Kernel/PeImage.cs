using System.Buffers.Binary;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Formats.Kernel;

/// <summary>One PE section header (Microsoft PE/COFF specification, "Section Table").</summary>
public sealed record PeSection(
    int Index,
    string Name,
    uint VirtualSize,
    uint VirtualAddress,
    uint SizeOfRawData,
    uint PointerToRawData,
    uint Characteristics)
{
    /// <summary>Bytes of the section present in the file: min(SizeOfRawData, VirtualSize), as systemd's pe.c reads it.</summary>
    public uint FileDataSizeInBytes => Math.Min(SizeOfRawData, VirtualSize);
}

/// <summary>
/// A PE/COFF image read without executing it (Microsoft PE/COFF specification: MS-DOS stub, "PE\0\0" signature, COFF
/// file header, optional header, section table) — enough to recognise an EFI-stub bzImage or a UKI.
/// </summary>
public sealed record PeImage
{
    internal const string StructureName = "PE image";

    internal static class Offsets
    {
        public const int EMagic = 0x00;
        public const int ELfanew = 0x3C;
        // relative to the "PE\0\0" signature
        public const int Machine = 4;
        public const int NumberOfSections = 6;
        public const int TimeDateStamp = 8;
        public const int SizeOfOptionalHeader = 20;
        public const int Characteristics = 22;
        public const int OptionalHeader = 24;
        // relative to the optional header
        public const int Magic = 0;
        public const int AddressOfEntryPoint = 16;
        public const int ImageBase32 = 28;
        public const int ImageBase64 = 24;
        public const int SectionAlignment = 32;
        public const int FileAlignment = 36;
        public const int SizeOfImage = 56;
        public const int SizeOfHeaders = 60;
        public const int CheckSum = 64;
        public const int Subsystem = 68;
        public const int NumberOfRvaAndSizes32 = 92;
        public const int NumberOfRvaAndSizes64 = 108;
        public const int DataDirectories32 = 96;
        public const int DataDirectories64 = 112;
        // relative to a section header
        public const int SectionName = 0;
        public const int VirtualSize = 8;
        public const int VirtualAddress = 12;
        public const int SizeOfRawData = 16;
        public const int PointerToRawData = 20;
        public const int SectionCharacteristics = 36;
    }

    internal static class Constants
    {
        public const ushort MzMagic = 0x5A4D; // "MZ"
        public const uint PeSignature = 0x00004550; // "PE\0\0"
        public const ushort Pe32Magic = 0x10B;
        public const ushort Pe32PlusMagic = 0x20B;
        public const int CoffHeaderSize = 24; // signature + file header
        public const int SectionHeaderSize = 40;
        public const int CertificateTableIndex = 4;
        public const int DataDirectorySize = 8;
    }

    public uint PeHeaderOffset { get; init; }
    public ushort Machine { get; init; }
    public ushort NumberOfSections { get; init; }
    public uint TimeDateStamp { get; init; }
    public ushort SizeOfOptionalHeader { get; init; }
    public ushort Characteristics { get; init; }
    /// <summary>0x10B (PE32) or 0x20B (PE32+).</summary>
    public ushort OptionalHeaderMagic { get; init; }
    public bool IsPe32Plus => OptionalHeaderMagic == Constants.Pe32PlusMagic;
    public uint AddressOfEntryPoint { get; init; }
    public ulong ImageBase { get; init; }
    public uint SectionAlignment { get; init; }
    public uint FileAlignment { get; init; }
    public uint SizeOfImage { get; init; }
    public uint SizeOfHeaders { get; init; }
    public uint CheckSum { get; init; }
    /// <summary>10 = EFI application.</summary>
    public ushort Subsystem { get; init; }
    /// <summary>Data directory 4 (a file offset, unlike the other directories); 0 when absent.</summary>
    public uint CertificateTableOffset { get; init; }
    public uint CertificateTableSize { get; init; }
    public IReadOnlyList<PeSection> Sections { get; init; } = [];

    public string MachineName => Machine switch
    {
        0x8664 => "x86-64",
        0x14C => "i386",
        0xAA64 => "arm64",
        0x1C2 => "arm",
        0x5064 => "riscv64",
        _ => FieldReader.Hex(Machine),
    };

    /// <summary>The first section named <paramref name="name"/> (first match wins, as in systemd's pe.c).</summary>
    public PeSection? FindSection(string name) => Sections.FirstOrDefault(s => s.Name == name);

    /// <summary>The section's bytes in the file (empty when it has none); bounded against the file by <see cref="Parse"/>.</summary>
    public static ReadOnlySpan<byte> SectionData(ReadOnlySpan<byte> file, PeSection section) =>
        section.FileDataSizeInBytes == 0 ? default : file.Slice((int)section.PointerToRawData, (int)section.FileDataSizeInBytes);

    /// <summary>"MZ" at 0 and "PE\0\0" at e_lfanew.</summary>
    public static bool HasMagic(ReadOnlySpan<byte> file)
    {
        if (file.Length < Offsets.ELfanew + 4 || BinaryPrimitives.ReadUInt16LittleEndian(file) != Constants.MzMagic)
            return false;
        uint lfanew = BinaryPrimitives.ReadUInt32LittleEndian(file[Offsets.ELfanew..]);
        return lfanew <= (uint)file.Length - 4
            && BinaryPrimitives.ReadUInt32LittleEndian(file[(int)lfanew..]) == Constants.PeSignature;
    }

    public static PeImage Parse(ReadOnlySpan<byte> file, long imageOffset)
    {
        var r = new FieldReader(file, imageOffset, StructureName);
        ushort mz = r.U16(Offsets.EMagic);
        if (mz != Constants.MzMagic)
            throw r.FieldError(Offsets.EMagic, "e_magic", Quote.Bytes(r.Bytes(0, 2)), "\"MZ\"");
        uint lfanew = r.U32(Offsets.ELfanew);
        if (lfanew > (uint)file.Length - Constants.CoffHeaderSize || file.Length < Constants.CoffHeaderSize)
            throw r.FieldError(Offsets.ELfanew, "e_lfanew", FieldReader.Hex(lfanew),
                FormattableString.Invariant($"a PE header within the file of {file.Length} bytes"));
        int pe = (int)lfanew;
        uint signature = r.U32(pe);
        if (signature != Constants.PeSignature)
            throw r.FieldError(pe, "PE signature", Quote.Bytes(r.Bytes(pe, 4)), "\"PE\\x00\\x00\"");

        ushort numberOfSections = r.U16(pe + Offsets.NumberOfSections);
        if (numberOfSections > Limits.MaxPeSections)
            throw r.FieldError(pe + Offsets.NumberOfSections, "NumberOfSections", numberOfSections,
                FormattableString.Invariant($"<= {Limits.MaxPeSections}"));
        ushort sizeOfOptionalHeader = r.U16(pe + Offsets.SizeOfOptionalHeader);
        int opt = checked(pe + Offsets.OptionalHeader);
        r.Require(opt, sizeOfOptionalHeader);
        ushort magic = sizeOfOptionalHeader >= 2 ? r.U16(opt + Offsets.Magic) : (ushort)0;
        if (magic != Constants.Pe32Magic && magic != Constants.Pe32PlusMagic)
            throw r.FieldError(opt + Offsets.Magic, "optional header Magic", FieldReader.Hex(magic), "0x10B (PE32) or 0x20B (PE32+)");
        bool plus = magic == Constants.Pe32PlusMagic;
        int minOptional = plus ? Offsets.DataDirectories64 : Offsets.DataDirectories32;
        if (sizeOfOptionalHeader < minOptional)
            throw r.FieldError(pe + Offsets.SizeOfOptionalHeader, "SizeOfOptionalHeader", sizeOfOptionalHeader,
                FormattableString.Invariant($">= {minOptional} for magic 0x{magic:X}"));

        uint rvaCount = r.U32(opt + (plus ? Offsets.NumberOfRvaAndSizes64 : Offsets.NumberOfRvaAndSizes32));
        uint certOffset = 0, certSize = 0;
        int certDir = (plus ? Offsets.DataDirectories64 : Offsets.DataDirectories32)
            + Constants.CertificateTableIndex * Constants.DataDirectorySize;
        if (rvaCount > Constants.CertificateTableIndex && certDir + Constants.DataDirectorySize <= sizeOfOptionalHeader)
        {
            certOffset = r.U32(opt + certDir);
            certSize = r.U32(opt + certDir + 4);
        }

        int table = checked(opt + sizeOfOptionalHeader);
        int tableSize = checked(numberOfSections * Constants.SectionHeaderSize);
        if (!r.Has(table, tableSize))
            throw new TruncatedDataException(StructureName + " section table", imageOffset + table, tableSize, file.Length - (long)table);
        var sections = new PeSection[numberOfSections];
        for (int i = 0; i < numberOfSections; i++)
        {
            int s = table + i * Constants.SectionHeaderSize;
            var sr = new FieldReader(file, imageOffset, FormattableString.Invariant($"PE section {i}"));
            var section = new PeSection(
                i,
                sr.CString(s + Offsets.SectionName, 8),
                sr.U32(s + Offsets.VirtualSize),
                sr.U32(s + Offsets.VirtualAddress),
                sr.U32(s + Offsets.SizeOfRawData),
                sr.U32(s + Offsets.PointerToRawData),
                sr.U32(s + Offsets.SectionCharacteristics));
            if (section.SizeOfRawData != 0 && (ulong)section.PointerToRawData + section.SizeOfRawData > (ulong)file.Length)
                throw sr.FieldError(s + Offsets.PointerToRawData, "PointerToRawData + SizeOfRawData",
                    FormattableString.Invariant($"0x{section.PointerToRawData:X} + 0x{section.SizeOfRawData:X}"),
                    FormattableString.Invariant($"within the file of {file.Length} bytes"));
            if ((ulong)section.VirtualAddress + section.VirtualSize > uint.MaxValue)
                throw sr.FieldError(s + Offsets.VirtualAddress, "VirtualAddress + VirtualSize",
                    FormattableString.Invariant($"0x{section.VirtualAddress:X} + 0x{section.VirtualSize:X}"), "<= 0xFFFFFFFF");
            sections[i] = section;
        }

        return new PeImage
        {
            PeHeaderOffset = lfanew,
            Machine = r.U16(pe + Offsets.Machine),
            NumberOfSections = numberOfSections,
            TimeDateStamp = r.U32(pe + Offsets.TimeDateStamp),
            SizeOfOptionalHeader = sizeOfOptionalHeader,
            Characteristics = r.U16(pe + Offsets.Characteristics),
            OptionalHeaderMagic = magic,
            AddressOfEntryPoint = r.U32(opt + Offsets.AddressOfEntryPoint),
            ImageBase = plus ? r.U64(opt + Offsets.ImageBase64) : r.U32(opt + Offsets.ImageBase32),
            SectionAlignment = r.U32(opt + Offsets.SectionAlignment),
            FileAlignment = r.U32(opt + Offsets.FileAlignment),
            SizeOfImage = r.U32(opt + Offsets.SizeOfImage),
            SizeOfHeaders = r.U32(opt + Offsets.SizeOfHeaders),
            CheckSum = r.U32(opt + Offsets.CheckSum),
            Subsystem = r.U16(opt + Offsets.Subsystem),
            CertificateTableOffset = certOffset,
            CertificateTableSize = certSize,
            Sections = sections,
        };
    }
}
