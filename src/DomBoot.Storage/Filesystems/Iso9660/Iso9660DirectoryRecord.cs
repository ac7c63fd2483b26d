using DomBoot.Formats.Binary;

namespace DomBoot.Storage.Filesystems.Iso9660;

/// <summary>
/// A directory record (ECMA-119 4th ed., section 9.1). Both-endian fields are read from their little-endian
/// half, as Linux isofs does. The System Use field (9.1.13) carries the SUSP/Rock Ridge entries.
/// </summary>
public sealed record Iso9660DirectoryRecord
{
    public static class Offsets
    {
        public const int LengthOfDirectoryRecord = 0;
        public const int ExtendedAttributeRecordLength = 1;
        public const int LocationOfExtent = 2;
        public const int DataLength = 10;
        public const int RecordingDateAndTime = 18;
        public const int FileFlags = 25;
        public const int FileUnitSize = 26;
        public const int InterleaveGapSize = 27;
        public const int VolumeSequenceNumber = 28;
        public const int LengthOfFileIdentifier = 32;
        public const int FileIdentifier = 33;
    }

    public static class Limits
    {
        /// <summary>The fixed part plus a one-byte identifier.</summary>
        public const int MinLength = 34;
    }

    [Flags]
    public enum FileFlagBits : byte
    {
        None = 0,
        Existence = 0x01,
        Directory = 0x02,
        AssociatedFile = 0x04,
        Record = 0x08,
        Protection = 0x10,
        MultiExtent = 0x80,
    }

    public required byte Length { get; init; }
    public required byte ExtendedAttributeRecordLength { get; init; }
    public required uint LocationOfExtent { get; init; }
    public required uint DataLength { get; init; }
    public required DateTimeOffset? RecordingTime { get; init; }
    public required FileFlagBits FileFlags { get; init; }
    public required byte FileUnitSize { get; init; }
    public required byte InterleaveGapSize { get; init; }
    public required ReadOnlyMemory<byte> FileIdentifier { get; init; }
    public required ReadOnlyMemory<byte> SystemUse { get; init; }
    public required long ImageOffset { get; init; }

    public bool IsDirectory => (FileFlags & FileFlagBits.Directory) != 0;
    public bool IsMultiExtent => (FileFlags & FileFlagBits.MultiExtent) != 0;
    public bool IsSelf => FileIdentifier.Length == 1 && FileIdentifier.Span[0] == 0;
    public bool IsParent => FileIdentifier.Length == 1 && FileIdentifier.Span[0] == 1;

    /// <summary>Parses one record; <paramref name="bytes"/> starts at the record and may run past it.</summary>
    public static Iso9660DirectoryRecord Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "ISO9660 directory record");
        byte len = r.U8(Offsets.LengthOfDirectoryRecord);
        if (len < Limits.MinLength)
            throw r.FieldError(Offsets.LengthOfDirectoryRecord, "length of directory record", len, $"at least {Limits.MinLength}");
        if (len > bytes.Length)
            throw r.FieldError(Offsets.LengthOfDirectoryRecord, "length of directory record", len, $"at most the {bytes.Length} bytes left in the directory");
        byte lenFi = r.U8(Offsets.LengthOfFileIdentifier);
        if (lenFi == 0 || Offsets.FileIdentifier + lenFi > len)
            throw r.FieldError(Offsets.LengthOfFileIdentifier, "length of file identifier", lenFi, $"1 to {len - Offsets.FileIdentifier}");
        int suStart = Offsets.FileIdentifier + lenFi + ((lenFi & 1) == 0 ? 1 : 0); // 9.1.12 padding after an even-length identifier
        if (suStart > len) suStart = len;
        return new Iso9660DirectoryRecord
        {
            Length = len,
            ExtendedAttributeRecordLength = r.U8(Offsets.ExtendedAttributeRecordLength),
            LocationOfExtent = r.U32(Offsets.LocationOfExtent),
            DataLength = r.U32(Offsets.DataLength),
            RecordingTime = ShortTime(r.Bytes(Offsets.RecordingDateAndTime, 7)),
            FileFlags = (FileFlagBits)r.U8(Offsets.FileFlags),
            FileUnitSize = r.U8(Offsets.FileUnitSize),
            InterleaveGapSize = r.U8(Offsets.InterleaveGapSize),
            FileIdentifier = r.Bytes(Offsets.FileIdentifier, lenFi).ToArray(),
            SystemUse = r.Bytes(suStart, len - suStart).ToArray(),
            ImageOffset = imageOffset,
        };
    }

    /// <summary>The 7-byte recording time (9.1.5): years since 1900, month, day, h, m, s, offset in 15-minute units.</summary>
    internal static DateTimeOffset? ShortTime(ReadOnlySpan<byte> t)
    {
        if (t.Length < 7) return null;
        int year = 1900 + t[0], month = t[1], day = t[2], hour = t[3], min = t[4], sec = t[5];
        int offsetQuarters = (sbyte)t[6];
        if (month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23 || min > 59 || sec > 59
            || offsetQuarters is < -48 or > 52)
            return null;
        return new DateTimeOffset(year, month, day, hour, min, sec, TimeSpan.FromMinutes(15 * offsetQuarters));
    }

    /// <summary>The 17-byte volume time (8.4.26.1): 16 ASCII digits and an offset; null when not a valid date.</summary>
    internal static DateTimeOffset? LongTime(ReadOnlySpan<byte> t)
    {
        if (t.Length < 17) return null;
        int year = Digits(t, 0, 4), month = Digits(t, 4, 2), day = Digits(t, 6, 2), hour = Digits(t, 8, 2), min = Digits(t, 10, 2),
            sec = Digits(t, 12, 2), cs = Digits(t, 14, 2);
        int off = (sbyte)t[16];
        if (year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour is < 0 or > 23
            || min is < 0 or > 59 || sec is < 0 or > 59 || cs < 0 || off is < -48 or > 52)
            return null;
        return new DateTimeOffset(year, month, day, hour, min, sec, cs * 10, TimeSpan.FromMinutes(15 * off));
    }

    private static int Digits(ReadOnlySpan<byte> t, int at, int n)
    {
        int v = 0;
        for (int i = 0; i < n; i++)
        {
            byte c = t[at + i];
            if (c is < (byte)'0' or > (byte)'9') return -1;
            v = v * 10 + (c - '0');
        }
        return v;
    }
}
