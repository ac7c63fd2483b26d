using DomBoot.Formats.Binary;

namespace DomBoot.Storage.Filesystems.Iso9660;

public enum ElToritoPlatform : byte { X86 = 0, PowerPc = 1, Mac = 2, Efi = 0xEF }

public enum ElToritoMediaType : byte { NoEmulation = 0, Floppy12M = 1, Floppy144M = 2, Floppy288M = 3, HardDisk = 4 }

/// <summary>
/// One boot image of the El Torito catalog ("El Torito" Bootable CD-ROM Format Specification 1.0, section 2:
/// 2.1 validation entry, 2.2 initial/default entry, 2.3 section header, 2.4 section entry).
/// <see cref="SectorCount"/> counts 512-byte virtual sectors; <see cref="LoadRba"/> is a 2048-byte CD sector.
/// </summary>
public sealed record ElToritoBootEntry(
    ElToritoPlatform Platform,
    bool Bootable,
    ElToritoMediaType BootMediaType,
    ushort LoadSegment,
    byte SystemType,
    ushort SectorCount,
    uint LoadRba,
    long ImageOffset)
{
    public const int EntrySize = 32;

    public static class Offsets
    {
        // Validation entry.
        public const int HeaderId = 0;
        public const int PlatformId = 1;
        public const int Checksum = 28;
        public const int KeyByte55 = 30;
        public const int KeyByteAA = 31;
        // Initial / section entry.
        public const int BootIndicator = 0;
        public const int BootMediaType = 1;
        public const int LoadSegment = 2;
        public const int SystemType = 4;
        public const int SectorCount = 6;
        public const int LoadRba = 8;
        // Section header.
        public const int SectionEntryCount = 2;
    }

    public static class Limits
    {
        /// <summary>Catalog bytes read: four CD sectors hold 255 entries, more than any firmware looks at.</summary>
        public const int MaxCatalogBytes = 4 * 2048;
    }

    /// <summary>Parses a boot catalog; <paramref name="bytes"/> may extend past its end.</summary>
    public static IReadOnlyList<ElToritoBootEntry> ParseCatalog(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "El Torito validation entry");
        r.Require(0, EntrySize);
        if (r.U8(Offsets.HeaderId) != 1) throw r.FieldError(Offsets.HeaderId, "header ID", r.U8(Offsets.HeaderId), "1");
        if (r.U8(Offsets.KeyByte55) != 0x55 || r.U8(Offsets.KeyByteAA) != 0xAA)
            throw r.FieldError(Offsets.KeyByte55, "key bytes", FieldReader.Hex(r.U16BE(Offsets.KeyByte55)), "0x55AA");
        ushort sum = 0;
        for (int i = 0; i < EntrySize; i += 2) sum = (ushort)(sum + r.U16(i));
        if (sum != 0) throw r.FieldError(Offsets.Checksum, "checksum (sum of words)", FieldReader.Hex(sum), "0x0");
        var platform = (ElToritoPlatform)r.U8(Offsets.PlatformId);

        var list = new List<ElToritoBootEntry> { Entry(bytes, EntrySize, imageOffset, platform, "El Torito initial entry") };
        int pos = 2 * EntrySize;
        while (pos + EntrySize <= bytes.Length)
        {
            var h = new FieldReader(bytes.Slice(pos, EntrySize), imageOffset + pos, "El Torito section header");
            byte id = h.U8(Offsets.HeaderId);
            if (id is not (0x90 or 0x91)) break; // end of catalog
            var sectionPlatform = (ElToritoPlatform)h.U8(Offsets.PlatformId);
            int count = h.U16(Offsets.SectionEntryCount);
            pos += EntrySize;
            for (int i = 0; i < count; i++)
            {
                if (pos + EntrySize > bytes.Length)
                    throw h.FieldError(Offsets.SectionEntryCount, "section entry count", count, $"at most {(bytes.Length - pos) / EntrySize + i} within the catalog");
                if (bytes[pos] == 0x44) { pos += EntrySize; i--; continue; } // section entry extension
                list.Add(Entry(bytes, pos, imageOffset, sectionPlatform, "El Torito section entry"));
                pos += EntrySize;
            }
            if (id == 0x91) break; // final header
        }
        return list;
    }

    private static ElToritoBootEntry Entry(ReadOnlySpan<byte> bytes, int at, long imageOffset, ElToritoPlatform platform, string structure)
    {
        var e = new FieldReader(bytes.Slice(at, Math.Min(EntrySize, Math.Max(0, bytes.Length - at))), imageOffset + at, structure);
        e.Require(0, EntrySize);
        byte indicator = e.U8(Offsets.BootIndicator);
        if (indicator is not (0x88 or 0x00))
            throw e.FieldError(Offsets.BootIndicator, "boot indicator", FieldReader.Hex(indicator), "0x88 or 0x0");
        return new ElToritoBootEntry(platform, indicator == 0x88, (ElToritoMediaType)(e.U8(Offsets.BootMediaType) & 0x0F),
            e.U16(Offsets.LoadSegment), e.U8(Offsets.SystemType), e.U16(Offsets.SectorCount), e.U32(Offsets.LoadRba), imageOffset + at);
    }
}
