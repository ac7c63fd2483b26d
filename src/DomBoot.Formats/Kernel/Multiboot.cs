using System.Buffers.Binary;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Formats.Kernel;

/// <summary>
/// Multiboot 1 header (Multiboot Specification 0.6.96, 3.1.1 "The layout of Multiboot header"): within the first
/// 8192 bytes, 4-byte aligned, magic 0x1BADB002, magic + flags + checksum = 0.
/// </summary>
public sealed record Multiboot1Header
{
    internal const string StructureName = "Multiboot header";

    internal static class Offsets
    {
        public const int Magic = 0;
        public const int Flags = 4;
        public const int Checksum = 8;
        public const int HeaderAddr = 12;
        public const int LoadAddr = 16;
        public const int LoadEndAddr = 20;
        public const int BssEndAddr = 24;
        public const int EntryAddr = 28;
        public const int ModeType = 32;
        public const int Width = 36;
        public const int Height = 40;
        public const int Depth = 44;
    }

    internal static class Constants
    {
        public const uint Magic = 0x1BADB002;
        public const int Alignment = 4;
        public const uint FlagPageAlign = 1u << 0;
        public const uint FlagMemoryInfo = 1u << 1;
        public const uint FlagVideoMode = 1u << 2;
        public const uint FlagAoutKludge = 1u << 16;
        public const uint KnownRequiredFlags = FlagPageAlign | FlagMemoryInfo | FlagVideoMode;
    }

    /// <summary>Absolute offset of the magic.</summary>
    public long Offset { get; init; }
    public uint Flags { get; init; }
    public uint Checksum { get; init; }
    public bool PageAlignModules => (Flags & Constants.FlagPageAlign) != 0;
    public bool NeedsMemoryInfo => (Flags & Constants.FlagMemoryInfo) != 0;
    public bool HasVideoFields => (Flags & Constants.FlagVideoMode) != 0;
    public bool HasAddressFields => (Flags & Constants.FlagAoutKludge) != 0;
    /// <summary>Required bits (0-15) this reader does not know; a loader must refuse them.</summary>
    public uint UnknownRequiredFlags => Flags & 0xFFFF & ~Constants.KnownRequiredFlags;
    public uint? HeaderAddr { get; init; }
    public uint? LoadAddr { get; init; }
    public uint? LoadEndAddr { get; init; }
    public uint? BssEndAddr { get; init; }
    public uint? EntryAddr { get; init; }
    public uint? ModeType { get; init; }
    public uint? Width { get; init; }
    public uint? Height { get; init; }
    public uint? Depth { get; init; }

    /// <summary>The first valid header (magic and checksum) in the search window, or null.</summary>
    public static Multiboot1Header? Find(ReadOnlySpan<byte> file, long imageOffset)
    {
        int window = Math.Min(file.Length, Limits.Multiboot1SearchBytes);
        for (int at = 0; at + 12 <= window; at += Constants.Alignment)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(file[at..]) != Constants.Magic) continue;
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(file[(at + 4)..]);
            uint sum = BinaryPrimitives.ReadUInt32LittleEndian(file[(at + 8)..]);
            if (unchecked(Constants.Magic + flags + sum) != 0) continue;
            return Parse(file[at..window], imageOffset + at);
        }
        return null;
    }

    /// <summary>Parses a header starting at <paramref name="bytes"/>[0] (bytes end where the search window ends).</summary>
    public static Multiboot1Header Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, StructureName);
        uint magic = r.U32(Offsets.Magic);
        if (magic != Constants.Magic)
            throw r.FieldError(Offsets.Magic, "magic", FieldReader.Hex(magic), "0x1BADB002");
        uint flags = r.U32(Offsets.Flags);
        uint checksum = r.U32(Offsets.Checksum);
        if (unchecked(magic + flags + checksum) != 0)
            throw r.FieldError(Offsets.Checksum, "checksum", FieldReader.Hex(checksum),
                FieldReader.Hex(unchecked(0u - magic - flags)) + " (magic + flags + checksum = 0)");
        bool address = (flags & Constants.FlagAoutKludge) != 0;
        bool video = (flags & Constants.FlagVideoMode) != 0;
        int size = video ? Offsets.Depth + 4 : address ? Offsets.EntryAddr + 4 : Offsets.Checksum + 4;
        if (!r.Has(0, size))
            throw new TruncatedDataException(StructureName + " (within the first 8192 bytes)", imageOffset, size, bytes.Length);
        return new Multiboot1Header
        {
            Offset = imageOffset,
            Flags = flags,
            Checksum = checksum,
            HeaderAddr = address ? r.U32(Offsets.HeaderAddr) : null,
            LoadAddr = address ? r.U32(Offsets.LoadAddr) : null,
            LoadEndAddr = address ? r.U32(Offsets.LoadEndAddr) : null,
            BssEndAddr = address ? r.U32(Offsets.BssEndAddr) : null,
            EntryAddr = address ? r.U32(Offsets.EntryAddr) : null,
            ModeType = video ? r.U32(Offsets.ModeType) : null,
            Width = video ? r.U32(Offsets.Width) : null,
            Height = video ? r.U32(Offsets.Height) : null,
            Depth = video ? r.U32(Offsets.Depth) : null,
        };
    }
}

/// <summary>One Multiboot 2 header tag: type, flags (bit 0 = optional), size and its u32 payload words.</summary>
public sealed record Multiboot2Tag(long Offset, ushort Type, ushort Flags, uint SizeInBytes, IReadOnlyList<uint> Values)
{
    public bool IsOptional => (Flags & 1) != 0;

    public string TypeName => Type switch
    {
        0 => "end",
        1 => "information request",
        2 => "address",
        3 => "entry address",
        4 => "console flags",
        5 => "framebuffer",
        6 => "module alignment",
        7 => "EFI boot services",
        8 => "EFI i386 entry address",
        9 => "EFI amd64 entry address",
        10 => "relocatable",
        _ => "unknown " + Type.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

/// <summary>
/// Multiboot 2 header (Multiboot2 Specification 3.1 "OS image format"): within the first 32768 bytes, 8-byte
/// aligned, magic 0xE85250D6, magic + architecture + header_length + checksum = 0, then tags up to the end tag.
/// </summary>
public sealed record Multiboot2Header
{
    internal const string StructureName = "Multiboot2 header";

    internal static class Offsets
    {
        public const int Magic = 0;
        public const int Architecture = 4;
        public const int HeaderLength = 8;
        public const int Checksum = 12;
        public const int Tags = 16;
        // relative to a tag
        public const int TagType = 0;
        public const int TagFlags = 2;
        public const int TagSize = 4;
        public const int TagPayload = 8;
    }

    internal static class Constants
    {
        public const uint Magic = 0xE85250D6;
        public const int Alignment = 8;
        public const int MaxValuesPerTag = 64;
    }

    public long Offset { get; init; }
    /// <summary>0 = i386 protected mode, 4 = MIPS32.</summary>
    public uint Architecture { get; init; }
    public uint HeaderLength { get; init; }
    public uint Checksum { get; init; }
    public IReadOnlyList<Multiboot2Tag> Tags { get; init; } = [];
    /// <summary>entry_addr of the entry address tag (type 3), when present.</summary>
    public uint? EntryAddr => Tags.FirstOrDefault(t => t.Type == 3 && t.Values.Count >= 1)?.Values[0];

    public static Multiboot2Header? Find(ReadOnlySpan<byte> file, long imageOffset)
    {
        int window = Math.Min(file.Length, Limits.Multiboot2SearchBytes);
        for (int at = 0; at + 16 <= window; at += Constants.Alignment)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(file[at..]) != Constants.Magic) continue;
            uint arch = BinaryPrimitives.ReadUInt32LittleEndian(file[(at + 4)..]);
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(file[(at + 8)..]);
            uint sum = BinaryPrimitives.ReadUInt32LittleEndian(file[(at + 12)..]);
            if (unchecked(Constants.Magic + arch + len + sum) != 0) continue;
            return Parse(file[at..window], imageOffset + at);
        }
        return null;
    }

    /// <summary>Parses a header at <paramref name="bytes"/>[0]; the whole header must lie inside <paramref name="bytes"/>.</summary>
    public static Multiboot2Header Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, StructureName);
        uint magic = r.U32(Offsets.Magic);
        if (magic != Constants.Magic)
            throw r.FieldError(Offsets.Magic, "magic", FieldReader.Hex(magic), "0xE85250D6");
        uint arch = r.U32(Offsets.Architecture);
        uint length = r.U32(Offsets.HeaderLength);
        uint checksum = r.U32(Offsets.Checksum);
        if (unchecked(magic + arch + length + checksum) != 0)
            throw r.FieldError(Offsets.Checksum, "checksum", FieldReader.Hex(checksum),
                FieldReader.Hex(unchecked(0u - magic - arch - length)) + " (magic + architecture + header_length + checksum = 0)");
        if (length < Offsets.Tags + 8 || length > (uint)bytes.Length)
            throw r.FieldError(Offsets.HeaderLength, "header_length", length,
                FormattableString.Invariant($"between 24 and {bytes.Length} (the header within the first 32768 bytes)"));
        var header = bytes[..(int)length];
        var tags = new List<Multiboot2Tag>();
        int pos = Offsets.Tags;
        bool ended = false;
        while (!ended)
        {
            if (tags.Count >= Limits.MaxMultiboot2Tags)
                throw r.Error(pos, FormattableString.Invariant($"more than {Limits.MaxMultiboot2Tags} tags"));
            var t = new FieldReader(header, imageOffset, StructureName + " tag");
            if (!t.Has(pos, 8))
                throw t.Error(pos, "no end tag (type 0, size 8) before header_length");
            ushort type = t.U16(pos + Offsets.TagType);
            ushort flags = t.U16(pos + Offsets.TagFlags);
            uint size = t.U32(pos + Offsets.TagSize);
            if (size < 8 || size > (uint)(header.Length - pos))
                throw t.FieldError(pos + Offsets.TagSize, "size", size,
                    FormattableString.Invariant($"between 8 and {header.Length - pos} (the rest of the header)"));
            var values = new List<uint>();
            for (int v = Offsets.TagPayload; v + 4 <= size && values.Count < Constants.MaxValuesPerTag; v += 4)
                values.Add(t.U32(pos + v));
            tags.Add(new Multiboot2Tag(imageOffset + pos, type, flags, size, values));
            if (type == 0)
            {
                if (size != 8)
                    throw t.FieldError(pos + Offsets.TagSize, "end tag size", size, "8");
                ended = true;
            }
            else
            {
                pos = checked(pos + (int)((size + 7) & ~7u));
            }
        }
        return new Multiboot2Header
        {
            Offset = imageOffset,
            Architecture = arch,
            HeaderLength = length,
            Checksum = checksum,
            Tags = tags,
        };
    }
}
