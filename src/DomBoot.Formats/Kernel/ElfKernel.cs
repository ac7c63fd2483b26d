using System.Text;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Formats.Kernel;

/// <summary>One ELF program header (System V gABI, "Program Header").</summary>
public sealed record ElfProgramHeader(
    int Index,
    uint Type,
    ulong Offset,
    ulong VAddr,
    ulong PAddr,
    ulong FileSize,
    ulong MemSize,
    ulong Align,
    uint Flags)
{
    public string TypeName => Type switch
    {
        0 => "NULL",
        1 => "LOAD",
        2 => "DYNAMIC",
        3 => "INTERP",
        4 => "NOTE",
        5 => "SHLIB",
        6 => "PHDR",
        7 => "TLS",
        0x6474E550 => "GNU_EH_FRAME",
        0x6474E551 => "GNU_STACK",
        0x6474E552 => "GNU_RELRO",
        0x6474E553 => "GNU_PROPERTY",
        _ => FieldReader.Hex(Type),
    };
}

/// <summary>
/// One note named "Xen" (xen/include/public/elfnote.h; boot-formats.md 3.3). Numeric notes carry
/// <see cref="NumericValue"/>, string notes <see cref="StringValue"/>; multi-word notes (L1_MFN_VALID,
/// PHYS32_RELOC) list every word in <see cref="Values"/>.
/// </summary>
public sealed record XenElfNote(
    uint Type,
    string TypeName,
    long DescriptorOffset,
    uint DescriptorSizeInBytes,
    ulong? NumericValue,
    string? StringValue,
    IReadOnlyList<ulong> Values)
{
    public const uint Phys32Entry = 18;

    /// <summary>Spec name of a Xen note type (XEN_ELFNOTE_ without the prefix).</summary>
    public static string NameOf(uint type) => type switch
    {
        0 => "INFO",
        1 => "ENTRY",
        2 => "HYPERCALL_PAGE",
        3 => "VIRT_BASE",
        4 => "PADDR_OFFSET",
        5 => "XEN_VERSION",
        6 => "GUEST_OS",
        7 => "GUEST_VERSION",
        8 => "LOADER",
        9 => "PAE_MODE",
        10 => "FEATURES",
        11 => "BSD_SYMTAB",
        12 => "HV_START_LOW",
        13 => "L1_MFN_VALID",
        14 => "SUSPEND_CANCEL",
        15 => "INIT_P2M",
        16 => "MOD_START_PFN",
        17 => "SUPPORTED_FEATURES",
        18 => "PHYS32_ENTRY",
        19 => "PHYS32_RELOC",
        0x1000001 => "CRASH_INFO",
        0x1000002 => "CRASH_REGS",
        0x2000000 => "DUMPCORE_NONE",
        0x2000001 => "DUMPCORE_HEADER",
        0x2000002 => "DUMPCORE_XEN_VERSION",
        0x2000003 => "DUMPCORE_FORMAT_VERSION",
        _ => "UNKNOWN_" + FieldReader.Hex(type),
    };

    internal static bool IsString(uint type) => type is 0 or (>= 5 and <= 11);
    internal static bool IsNumeric(uint type) => type is (>= 1 and <= 4) or (>= 12 and <= 18 and not 13);
}

/// <summary>One KEY=VALUE pair of the legacy __xen_guest section (boot-formats.md 3.4).</summary>
public sealed record XenGuestPair(string Key, string Value);

/// <summary>
/// A little-endian ELF32/ELF64 kernel (System V gABI; x86 psABI), with its Xen/PVH notes
/// (xen/include/public/elfnote.h, docs/misc/pvh.pandoc) and legacy __xen_guest section. Machines other than x86
/// are reported, not refused.
/// </summary>
public sealed record ElfKernel
{
    internal const string StructureName = "ELF header";

    internal static class Offsets
    {
        public const int EiClass = 4;
        public const int EiData = 5;
        public const int EType = 16;
        public const int EMachine = 18;
        public const int EVersion = 20;
        public const int EEntry = 24;
        // the rest differ by class: (ELF32, ELF64)
        public static readonly (int, int) EPhoff = (28, 32);
        public static readonly (int, int) EShoff = (32, 40);
        public static readonly (int, int) EFlags = (36, 48);
        public static readonly (int, int) EPhentsize = (42, 54);
        public static readonly (int, int) EPhnum = (44, 56);
        public static readonly (int, int) EShentsize = (46, 58);
        public static readonly (int, int) EShnum = (48, 60);
        public static readonly (int, int) EShstrndx = (50, 62);
    }

    internal static class Constants
    {
        public const uint Magic = 0x464C457F; // 7F 'E' 'L' 'F'
        public const byte ClassElf32 = 1;
        public const byte ClassElf64 = 2;
        public const byte DataLittleEndian = 1;
        public const int HeaderSize32 = 52;
        public const int HeaderSize64 = 64;
        public const int ProgramHeaderSize32 = 32;
        public const int ProgramHeaderSize64 = 56;
        public const int SectionHeaderSize32 = 40;
        public const int SectionHeaderSize64 = 64;
        public const uint PtNote = 4;
        public const uint ShtNote = 7;
        public const int NoteHeaderSize = 12;
        public const uint LinuxBuildSaltNote = 0x100; // include/linux/build-salt.h: LINUX_ELFNOTE_BUILD_SALT
        public const ushort EmI386 = 3;
        public const ushort EmX8664 = 62;
    }

    /// <summary>32 or 64.</summary>
    public int Class { get; init; }
    public ushort Machine { get; init; }
    public ushort Type { get; init; }
    public ulong Entry { get; init; }
    public uint Flags { get; init; }
    public ulong ProgramHeaderOffset { get; init; }
    public ulong SectionHeaderOffset { get; init; }
    public ushort SectionCount { get; init; }
    public IReadOnlyList<ElfProgramHeader> ProgramHeaders { get; init; } = [];
    public IReadOnlyList<XenElfNote> XenNotes { get; init; } = [];
    /// <summary>"PT_NOTE", "SHT_NOTE" or null when the image has no Xen notes.</summary>
    public string? XenNotesSource { get; init; }
    /// <summary>PVH entry (XEN_ELFNOTE_PHYS32_ENTRY): low 32 bits of note 18's descriptor.</summary>
    public uint? Phys32Entry { get; init; }
    /// <summary>The "Linux" LINUX_ELFNOTE_BUILD_SALT string (CONFIG_BUILD_SALT; Debian sets it to the release), when present.</summary>
    public string? LinuxBuildSalt { get; init; }
    /// <summary>The raw __xen_guest string, when the section exists.</summary>
    public string? XenGuestString { get; init; }
    public IReadOnlyList<XenGuestPair> XenGuest { get; init; } = [];

    public string MachineName => Machine switch
    {
        Constants.EmI386 => "i386",
        Constants.EmX8664 => "x86-64",
        40 => "arm",
        183 => "aarch64",
        243 => "riscv",
        _ => Machine.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public string TypeName => Type switch { 1 => "REL", 2 => "EXEC", 3 => "DYN", 4 => "CORE", _ => FieldReader.Hex(Type) };

    /// <summary>Has a Linux build-salt note, a PVH entry, or Xen notes naming GUEST_OS linux.</summary>
    public bool IsLinuxOrPvh => Phys32Entry is not null || LinuxBuildSalt is not null
        || XenNotes.Any(n => n.Type == 6 && n.StringValue is { } s && s.StartsWith("linux", StringComparison.OrdinalIgnoreCase))
        || XenGuest.Any(p => p.Key == "GUEST_OS" && p.Value.StartsWith("linux", StringComparison.OrdinalIgnoreCase));

    public static bool HasMagic(ReadOnlySpan<byte> file) =>
        file.Length >= 4 && System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(file) == Constants.Magic;

    public static ElfKernel Parse(ReadOnlySpan<byte> file, long imageOffset)
    {
        var r = new FieldReader(file, imageOffset, StructureName);
        uint magic = r.U32(0);
        if (magic != Constants.Magic)
            throw r.FieldError(0, "e_ident magic", Quote.Bytes(r.Bytes(0, 4)), "\"\\x7FELF\"");
        byte cls = r.U8(Offsets.EiClass);
        if (cls != Constants.ClassElf32 && cls != Constants.ClassElf64)
            throw r.FieldError(Offsets.EiClass, "EI_CLASS", cls, "1 (ELF32) or 2 (ELF64)");
        byte data = r.U8(Offsets.EiData);
        if (data == 2)
            throw new UnsupportedFeatureException(FormattableString.Invariant(
                $"{StructureName} at offset 0x{imageOffset + Offsets.EiData:X}: big-endian ELF (EI_DATA 2) is not supported"));
        if (data != Constants.DataLittleEndian)
            throw r.FieldError(Offsets.EiData, "EI_DATA", data, "1 (little-endian)");
        bool is64 = cls == Constants.ClassElf64;
        r.Require(0, is64 ? Constants.HeaderSize64 : Constants.HeaderSize32);
        int Pick((int, int) o) => is64 ? o.Item2 : o.Item1;
        ulong Word(FieldReader fr, int at) => is64 ? fr.U64(at) : fr.U32(at);

        ulong entry = Word(r, Offsets.EEntry);
        ulong phoff = Word(r, Pick(Offsets.EPhoff));
        ulong shoff = Word(r, Pick(Offsets.EShoff));
        ushort phentsize = r.U16(Pick(Offsets.EPhentsize));
        ushort phnum = r.U16(Pick(Offsets.EPhnum));
        ushort shentsize = r.U16(Pick(Offsets.EShentsize));
        ushort shnum = r.U16(Pick(Offsets.EShnum));
        ushort shstrndx = r.U16(Pick(Offsets.EShstrndx));

        var phdrs = ReadProgramHeaders(file, imageOffset, r, is64, phoff, phentsize, phnum, Pick(Offsets.EPhnum));
        var sections = ReadSectionHeaders(file, imageOffset, r, is64, shoff, shentsize, shnum, Pick(Offsets.EShnum));

        var notes = new NoteWalk(is64);
        foreach (var ph in phdrs)
        {
            // libelf-dominfo.c skips PT_NOTE with p_offset 0 (a binutils bug)
            if (ph.Type == Constants.PtNote && ph.Offset != 0)
                notes.Walk(file, imageOffset, ph.Offset, ph.FileSize, FormattableString.Invariant($"ELF note in program header {ph.Index}"));
        }
        string? source = notes.Xen.Count > 0 ? "PT_NOTE" : null;
        if (notes.Xen.Count == 0)
        {
            foreach (var s in sections)
            {
                if (s.Type == Constants.ShtNote)
                    notes.Walk(file, imageOffset, s.Offset, s.Size, FormattableString.Invariant($"ELF note in section {s.Index}"));
            }
            if (notes.Xen.Count > 0) source = "SHT_NOTE";
        }

        string? guest = null;
        IReadOnlyList<XenGuestPair> pairs = [];
        var names = new SectionNames(file, imageOffset, sections, shstrndx);
        foreach (var s in sections)
        {
            if (names.Is(s, "__xen_guest"))
            {
                ulong size = Math.Min(s.Size, (ulong)Limits.MaxXenGuestBytes);
                var gr = new FieldReader(file, imageOffset, "__xen_guest section");
                guest = size == 0 ? "" : gr.CString((int)s.Offset, (int)size); // bounded by ReadSectionHeaders
                pairs = ParseXenGuest(guest, imageOffset + (long)s.Offset);
                break;
            }
        }

        uint? phys32 = null;
        foreach (var n in notes.Xen)
        {
            if (n.Type != XenElfNote.Phys32Entry) continue;
            if (n.DescriptorSizeInBytes != 4 && n.DescriptorSizeInBytes != 8)
                throw MalformedDataException.Field("Xen ELF note PHYS32_ENTRY", n.DescriptorOffset, "n_descsz",
                    n.DescriptorSizeInBytes, "4 or 8");
            phys32 = (uint)(n.NumericValue!.Value & 0xFFFFFFFF);
            break;
        }

        return new ElfKernel
        {
            Class = is64 ? 64 : 32,
            Machine = r.U16(Offsets.EMachine),
            Type = r.U16(Offsets.EType),
            Entry = entry,
            Flags = r.U32(Pick(Offsets.EFlags)),
            ProgramHeaderOffset = phoff,
            SectionHeaderOffset = shoff,
            SectionCount = (ushort)sections.Count,
            ProgramHeaders = phdrs,
            XenNotes = notes.Xen,
            XenNotesSource = source,
            Phys32Entry = phys32,
            LinuxBuildSalt = notes.LinuxBuildSalt,
            XenGuestString = guest,
            XenGuest = pairs,
        };
    }

    private static List<ElfProgramHeader> ReadProgramHeaders(ReadOnlySpan<byte> file, long imageOffset, FieldReader r,
        bool is64, ulong phoff, ushort phentsize, ushort phnum, int phnumField)
    {
        var list = new List<ElfProgramHeader>();
        if (phnum == 0) return list;
        if (phnum > Limits.MaxElfProgramHeaders)
            throw r.FieldError(phnumField, "e_phnum", phnum, FormattableString.Invariant($"<= {Limits.MaxElfProgramHeaders}"));
        int min = is64 ? Constants.ProgramHeaderSize64 : Constants.ProgramHeaderSize32;
        if (phentsize < min)
            throw r.FieldError(phnumField - 2, "e_phentsize", phentsize, FormattableString.Invariant($">= {min}"));
        ulong end = checked(phoff + (ulong)phnum * phentsize);
        if (phoff > (ulong)file.Length || end > (ulong)file.Length)
            throw r.FieldError(is64 ? Offsets.EPhoff.Item2 : Offsets.EPhoff.Item1, "e_phoff + e_phnum * e_phentsize",
                FormattableString.Invariant($"0x{phoff:X} + {phnum} * {phentsize}"),
                FormattableString.Invariant($"within the file of {file.Length} bytes"));
        for (int i = 0; i < phnum; i++)
        {
            int at = checked((int)phoff + i * phentsize);
            var p = new FieldReader(file.Slice(at, min), imageOffset + at, FormattableString.Invariant($"ELF program header {i}"));
            ElfProgramHeader ph = is64
                ? new(i, p.U32(0), p.U64(8), p.U64(16), p.U64(24), p.U64(32), p.U64(40), p.U64(48), p.U32(4))
                : new(i, p.U32(0), p.U32(4), p.U32(8), p.U32(12), p.U32(16), p.U32(20), p.U32(28), p.U32(24));
            if (ph.FileSize != 0 && (ph.Offset > (ulong)file.Length || ph.FileSize > (ulong)file.Length - ph.Offset))
                throw p.FieldError(is64 ? 8 : 4, "p_offset + p_filesz",
                    FormattableString.Invariant($"0x{ph.Offset:X} + 0x{ph.FileSize:X}"),
                    FormattableString.Invariant($"within the file of {file.Length} bytes"));
            list.Add(ph);
        }
        return list;
    }

    internal sealed record SectionHeader(int Index, uint NameOffset, uint Type, ulong Offset, ulong Size);

    private static List<SectionHeader> ReadSectionHeaders(ReadOnlySpan<byte> file, long imageOffset, FieldReader r,
        bool is64, ulong shoff, ushort shentsize, ushort shnum, int shnumField)
    {
        var list = new List<SectionHeader>();
        if (shnum == 0 || shoff == 0) return list;
        if (shnum > Limits.MaxElfSections)
            throw r.FieldError(shnumField, "e_shnum", shnum, FormattableString.Invariant($"<= {Limits.MaxElfSections}"));
        int min = is64 ? Constants.SectionHeaderSize64 : Constants.SectionHeaderSize32;
        if (shentsize < min)
            throw r.FieldError(shnumField - 2, "e_shentsize", shentsize, FormattableString.Invariant($">= {min}"));
        ulong end = checked(shoff + (ulong)shnum * shentsize);
        if (shoff > (ulong)file.Length || end > (ulong)file.Length)
            throw r.FieldError(is64 ? Offsets.EShoff.Item2 : Offsets.EShoff.Item1, "e_shoff + e_shnum * e_shentsize",
                FormattableString.Invariant($"0x{shoff:X} + {shnum} * {shentsize}"),
                FormattableString.Invariant($"within the file of {file.Length} bytes"));
        const uint ShtNobits = 8;
        for (int i = 0; i < shnum; i++)
        {
            int at = checked((int)shoff + i * shentsize);
            var s = new FieldReader(file.Slice(at, min), imageOffset + at, FormattableString.Invariant($"ELF section header {i}"));
            SectionHeader sh = is64
                ? new(i, s.U32(0), s.U32(4), s.U64(24), s.U64(32))
                : new(i, s.U32(0), s.U32(4), s.U32(16), s.U32(20));
            if (sh.Type != ShtNobits && sh.Size != 0 && (sh.Offset > (ulong)file.Length || sh.Size > (ulong)file.Length - sh.Offset))
                throw s.FieldError(is64 ? 24 : 16, "sh_offset + sh_size",
                    FormattableString.Invariant($"0x{sh.Offset:X} + 0x{sh.Size:X}"),
                    FormattableString.Invariant($"within the file of {file.Length} bytes"));
            list.Add(sh);
        }
        return list;
    }

    /// <summary>Names from the section header string table; names are only compared, never returned unbounded.</summary>
    private readonly ref struct SectionNames
    {
        private readonly ReadOnlySpan<byte> _table;

        public SectionNames(ReadOnlySpan<byte> file, long imageOffset, List<SectionHeader> sections, ushort shstrndx)
        {
            _ = imageOffset;
            _table = shstrndx < sections.Count && sections[shstrndx].Type != 8 && sections[shstrndx].Size != 0
                ? file.Slice((int)sections[shstrndx].Offset, (int)sections[shstrndx].Size)
                : default;
        }

        public bool Is(SectionHeader s, string name)
        {
            if (s.NameOffset >= (uint)_table.Length) return false;
            var rest = _table[(int)s.NameOffset..];
            int nul = rest.IndexOf((byte)0);
            var bytes = nul >= 0 ? rest[..nul] : rest;
            return bytes.Length == name.Length && Encoding.ASCII.GetString(bytes) == name;
        }
    }

    /// <summary>Walks note entries (namesz, descsz, type, name, desc; name and desc padded to 4 bytes).</summary>
    private sealed class NoteWalk(bool is64)
    {
        public List<XenElfNote> Xen { get; } = [];
        public string? LinuxBuildSalt { get; private set; }
        private int _count;

        public void Walk(ReadOnlySpan<byte> file, long imageOffset, ulong offset, ulong size, string structure)
        {
            // offset/size were bounded against the file by the header readers (empty areas may point anywhere)
            if (size == 0) return;
            var region = file.Slice((int)offset, (int)size);
            long baseAt = imageOffset + (long)offset;
            int pos = 0;
            while (region.Length - pos >= Constants.NoteHeaderSize)
            {
                if (++_count > Limits.MaxElfNotes)
                    throw new MalformedDataException(structure, baseAt + pos,
                        FormattableString.Invariant($"more than {Limits.MaxElfNotes} notes"));
                var r = new FieldReader(region, baseAt, structure);
                uint namesz = r.U32(pos);
                uint descsz = r.U32(pos + 4);
                uint type = r.U32(pos + 8);
                long nameAt = pos + Constants.NoteHeaderSize;
                long descAt = checked(nameAt + Align4(namesz));
                long next = checked(descAt + Align4(descsz));
                if (descAt > region.Length || descAt + descsz > region.Length)
                    throw r.FieldError(pos, "n_namesz + n_descsz",
                        FormattableString.Invariant($"{namesz} + {descsz}"),
                        FormattableString.Invariant($"within the note area of {region.Length} bytes"));
                var name = region.Slice((int)nameAt, (int)namesz);
                var desc = region.Slice((int)descAt, (int)descsz);
                if (name.SequenceEqual("Xen\0"u8))
                    Xen.Add(Decode(type, desc, baseAt + descAt));
                else if (name.SequenceEqual("Linux\0"u8) && type == Constants.LinuxBuildSaltNote && LinuxBuildSalt is null)
                    LinuxBuildSalt = CString(desc);
                if (next >= region.Length) break;
                pos = (int)next;
            }
        }

        private static long Align4(uint v) => ((long)v + 3) & ~3L;

        private static string CString(ReadOnlySpan<byte> b)
        {
            b = b[..Math.Min(b.Length, Limits.MaxNoteStringBytes)];
            int nul = b.IndexOf((byte)0);
            return Encoding.Latin1.GetString(nul >= 0 ? b[..nul] : b);
        }

        private XenElfNote Decode(uint type, ReadOnlySpan<byte> desc, long descOffset)
        {
            ulong? number = null;
            string? text = null;
            var values = new List<ulong>();
            if (XenElfNote.IsString(type))
                text = CString(desc);
            else
            {
                if (desc.Length == 4) number = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(desc);
                else if (desc.Length == 8) number = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(desc);
                // L1_MFN_VALID words are machine words; PHYS32_RELOC words are u32
                int word = type == 13 && is64 && desc.Length % 8 == 0 ? 8 : 4;
                for (int i = 0; i + word <= desc.Length && values.Count < 16; i += word)
                    values.Add(word == 8 ? System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(desc[i..])
                        : System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(desc[i..]));
                if (!XenElfNote.IsNumeric(type) && desc.Length != 4 && desc.Length != 8) number = null;
            }
            return new XenElfNote(type, XenElfNote.NameOf(type), descOffset, (uint)desc.Length, number, text, values);
        }
    }

    /// <summary>"KEY=VALUE,KEY=VALUE" with libelf's limits (name 31, value 127 characters).</summary>
    internal static List<XenGuestPair> ParseXenGuest(string text, long offset)
    {
        var list = new List<XenGuestPair>();
        foreach (var item in text.Split(','))
        {
            if (item.Length == 0) continue;
            int eq = item.IndexOf('=', StringComparison.Ordinal);
            string key = eq >= 0 ? item[..eq] : item;
            string value = eq >= 0 ? item[(eq + 1)..] : "";
            if (key.Length > Limits.MaxXenGuestNameLength)
                throw MalformedDataException.Field("__xen_guest section", offset, "key", Quote.Text(key),
                    FormattableString.Invariant($"at most {Limits.MaxXenGuestNameLength} characters"));
            if (value.Length > Limits.MaxXenGuestValueLength)
                throw MalformedDataException.Field("__xen_guest section", offset, "value of " + Quote.Text(key), Quote.Text(value),
                    FormattableString.Invariant($"at most {Limits.MaxXenGuestValueLength} characters"));
            list.Add(new XenGuestPair(key, value));
        }
        return list;
    }
}
