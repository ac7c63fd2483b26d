using System.Text;
using DomBoot.Formats.Binary;

namespace DomBoot.Storage.Filesystems.Fat;

/// <summary>
/// A 32-byte short (8.3) directory entry (Microsoft FAT spec v1.03, section 6: DIR_Name .. DIR_FileSize),
/// with the Windows NT case bits in DIR_NTRes (0x08 lower-case base, 0x10 lower-case extension) that Linux
/// vfat honours.
/// </summary>
public sealed record FatDirectoryEntry
{
    public const int Size = 32;

    public static class Offsets
    {
        public const int Name = 0;
        public const int Attr = 11;
        public const int NTRes = 12;
        public const int CrtTimeTenth = 13;
        public const int CrtTime = 14;
        public const int CrtDate = 16;
        public const int LstAccDate = 18;
        public const int FstClusHI = 20;
        public const int WrtTime = 22;
        public const int WrtDate = 24;
        public const int FstClusLO = 26;
        public const int FileSize = 28;
    }

    [Flags]
    public enum Attributes : byte
    {
        None = 0,
        ReadOnly = 0x01,
        Hidden = 0x02,
        System = 0x04,
        VolumeId = 0x08,
        Directory = 0x10,
        Archive = 0x20,
        LongName = 0x0F,
    }

    public const byte NTResLowerBase = 0x08;
    public const byte NTResLowerExt = 0x10;
    public const byte FreeMarker = 0xE5;
    public const byte KanjiE5Marker = 0x05;

    private static readonly Encoding Oem = CreateOemEncoding();

    public required ReadOnlyMemory<byte> Name { get; init; }
    public required Attributes Attr { get; init; }
    public required byte NTRes { get; init; }
    public required ushort WrtTime { get; init; }
    public required ushort WrtDate { get; init; }
    public required ushort FstClusHI { get; init; }
    public required ushort FstClusLO { get; init; }
    public required uint FileSize { get; init; }

    /// <summary>Absolute byte offset of this entry in the image.</summary>
    public required long ImageOffset { get; init; }

    public uint FirstCluster => (uint)FstClusHI << 16 | FstClusLO;
    public bool IsDirectory => (Attr & Attributes.Directory) != 0;
    public bool IsVolumeLabel => (Attr & (Attributes.VolumeId | Attributes.Directory)) == Attributes.VolumeId;

    /// <summary>The 8.3 name as Linux vfat shows it: code page 437, padding removed, NT lower-case bits applied.</summary>
    public string ShortName
    {
        get
        {
            var raw = Name.Span;
            Span<byte> b = stackalloc byte[11];
            raw.CopyTo(b);
            if (b[0] == KanjiE5Marker) b[0] = FreeMarker;
            string baseName = Oem.GetString(b[..8]).TrimEnd(' ');
            string ext = Oem.GetString(b[8..11]).TrimEnd(' ');
            if ((NTRes & NTResLowerBase) != 0) baseName = AsciiLower(baseName);
            if ((NTRes & NTResLowerExt) != 0) ext = AsciiLower(ext);
            return ext.Length == 0 ? baseName : baseName + "." + ext;
        }
    }

    /// <summary>The raw 11 name bytes as a volume label (padding removed).</summary>
    public string LabelText => Oem.GetString(Name.Span).TrimEnd(' ');

    /// <summary>DIR_WrtDate/DIR_WrtTime as a time with no zone (taken as UTC); null when the fields are not a valid date.</summary>
    public DateTimeOffset? ModifiedTime => DosTime(WrtDate, WrtTime);

    public static FatDirectoryEntry Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "FAT directory entry");
        r.Require(0, Size);
        return new FatDirectoryEntry
        {
            Name = r.Bytes(Offsets.Name, 11).ToArray(),
            Attr = (Attributes)r.U8(Offsets.Attr),
            NTRes = r.U8(Offsets.NTRes),
            WrtTime = r.U16(Offsets.WrtTime),
            WrtDate = r.U16(Offsets.WrtDate),
            FstClusHI = r.U16(Offsets.FstClusHI),
            FstClusLO = r.U16(Offsets.FstClusLO),
            FileSize = r.U32(Offsets.FileSize),
            ImageOffset = imageOffset,
        };
    }

    /// <summary>The checksum an LFN entry carries for its short entry (spec section 7, ChkSum()).</summary>
    public static byte ShortNameChecksum(ReadOnlySpan<byte> name11)
    {
        byte sum = 0;
        for (int i = 0; i < 11; i++) sum = (byte)((((sum & 1) << 7) | (sum >> 1)) + name11[i]);
        return sum;
    }

    internal static DateTimeOffset? DosTime(ushort date, ushort time)
    {
        int day = date & 0x1F, month = (date >> 5) & 0xF, year = 1980 + (date >> 9);
        int sec = (time & 0x1F) * 2, min = (time >> 5) & 0x3F, hour = time >> 11;
        if (day == 0 || month == 0 || month > 12 || day > DateTime.DaysInMonth(year, month) || hour > 23 || min > 59 || sec > 59)
            return null;
        return new DateTimeOffset(year, month, day, hour, min, sec, TimeSpan.Zero);
    }

    internal static string AsciiLower(string s)
    {
        var c = s.ToCharArray();
        for (int i = 0; i < c.Length; i++) if (c[i] is >= 'A' and <= 'Z') c[i] = (char)(c[i] + 32);
        return new string(c);
    }

    private static Encoding CreateOemEncoding()
    {
        Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);
        return Encoding.GetEncoding(437);
    }
}

/// <summary>A long-file-name entry (Microsoft FAT spec v1.03, section 7: LDIR_Ord, LDIR_Name1..3, LDIR_Chksum).</summary>
public sealed record FatLongNameEntry
{
    public static class Offsets
    {
        public const int Ord = 0;
        public const int Name1 = 1;
        public const int Attr = 11;
        public const int Type = 12;
        public const int Chksum = 13;
        public const int Name2 = 14;
        public const int FstClusLO = 26;
        public const int Name3 = 28;
    }

    public const byte LastLongEntry = 0x40;
    public const int CharsPerEntry = 13;
    /// <summary>255 UTF-16 units need at most 20 entries.</summary>
    public const int MaxEntries = 20;

    public required byte Ord { get; init; }
    public required byte Chksum { get; init; }
    /// <summary>The 13 UTF-16 code units of this piece, unfiltered.</summary>
    public required ReadOnlyMemory<char> Chars { get; init; }

    public int Sequence => Ord & 0x3F;
    public bool IsLast => (Ord & LastLongEntry) != 0;

    public static FatLongNameEntry Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "FAT long-name entry");
        r.Require(0, FatDirectoryEntry.Size);
        var chars = new char[CharsPerEntry];
        int k = 0;
        for (int i = 0; i < 5; i++) chars[k++] = (char)r.U16(Offsets.Name1 + 2 * i);
        for (int i = 0; i < 6; i++) chars[k++] = (char)r.U16(Offsets.Name2 + 2 * i);
        for (int i = 0; i < 2; i++) chars[k++] = (char)r.U16(Offsets.Name3 + 2 * i);
        return new FatLongNameEntry { Ord = r.U8(Offsets.Ord), Chksum = r.U8(Offsets.Chksum), Chars = chars };
    }
}
