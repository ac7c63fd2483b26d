using DomBoot.Formats.Errors;

namespace DomBoot.Formats.Cpio;

/// <summary>Which of the two ASCII "new" cpio formats a header uses.</summary>
public enum CpioFormat
{
    /// <summary>"070701": c_chksum is unused (written as 0).</summary>
    Newc,

    /// <summary>"070702": c_chksum is the 32-bit sum of the data bytes.</summary>
    Crc,
}

/// <summary>File type bits of c_mode (S_IFMT), as in &lt;sys/stat.h&gt;.</summary>
public enum CpioFileType
{
    Unknown = 0,
    Fifo = 0x1000,
    CharDevice = 0x2000,
    Directory = 0x4000,
    BlockDevice = 0x6000,
    Regular = 0x8000,
    Symlink = 0xA000,
    Socket = 0xC000,
}

/// <summary>
/// One cpio "newc" (070701) or "crc" (070702) header: 110 ASCII bytes, a 6-byte magic and 13 fields of 8 hex digits
/// (Linux Documentation/driver-api/early-userspace/buffer-format.rst; GNU cpio manual, "Options: -H newc/crc").
/// The name (c_namesize bytes including its NUL) follows at offset 110.
/// </summary>
public sealed partial record CpioNewcHeader
{
    /// <summary>Bytes in a header, before the name.</summary>
    public const int Size = 110;

    public const string NewcMagic = "070701";
    public const string CrcMagic = "070702";

    /// <summary>The old portable ASCII ("odc", -H odc) magic; the kernel refuses it ("use -H newc option").</summary>
    public const string OdcMagic = "070707";

    public const string StructureName = "cpio newc header";

    /// <summary>Field offsets, named as buffer-format.rst names them.</summary>
    public static class Offsets
    {
        public const int Magic = 0;
        public const int Ino = 6;
        public const int Mode = 14;
        public const int Uid = 22;
        public const int Gid = 30;
        public const int NLink = 38;
        public const int MTime = 46;
        public const int FileSize = 54;
        public const int DevMajor = 62;
        public const int DevMinor = 70;
        public const int RDevMajor = 78;
        public const int RDevMinor = 86;
        public const int NameSize = 94;
        public const int Check = 102;
        public const int MagicLength = 6;
        public const int FieldLength = 8;
    }

    /// <summary>Bounds applied while parsing.</summary>
    public static class Limits
    {
        /// <summary>c_namesize including the NUL; the kernel skips entries with a longer name (PATH_MAX).</summary>
        public const int MaxNameSize = 4096;
    }

    /// <summary>Spec names of the 13 fields, in order, for error messages.</summary>
    private static readonly (int Offset, string Name)[] FieldNames =
    [
        (Offsets.Ino, "c_ino"), (Offsets.Mode, "c_mode"), (Offsets.Uid, "c_uid"), (Offsets.Gid, "c_gid"),
        (Offsets.NLink, "c_nlink"), (Offsets.MTime, "c_mtime"), (Offsets.FileSize, "c_filesize"),
        (Offsets.DevMajor, "c_devmajor"), (Offsets.DevMinor, "c_devminor"), (Offsets.RDevMajor, "c_rdevmajor"),
        (Offsets.RDevMinor, "c_rdevminor"), (Offsets.NameSize, "c_namesize"), (Offsets.Check, "c_chksum"),
    ];

    public CpioFormat Format { get; init; }
    public uint Ino { get; init; }
    public uint Mode { get; init; }
    public uint Uid { get; init; }
    public uint Gid { get; init; }
    public uint NLink { get; init; }

    /// <summary>Seconds since the Unix epoch.</summary>
    public uint MTime { get; init; }

    /// <summary>Data bytes after the (padded) name; the symlink target for symlinks.</summary>
    public uint FileSize { get; init; }
    public uint DevMajor { get; init; }
    public uint DevMinor { get; init; }
    public uint RDevMajor { get; init; }
    public uint RDevMinor { get; init; }

    /// <summary>Name length in bytes including the terminating NUL.</summary>
    public uint NameSize { get; init; }

    /// <summary>c_chksum: sum of data bytes for <see cref="CpioFormat.Crc"/>, 0 for newc.</summary>
    public uint Check { get; init; }

    public CpioFileType Type => (Mode & 0xF000) switch
    {
        0x1000 => CpioFileType.Fifo,
        0x2000 => CpioFileType.CharDevice,
        0x4000 => CpioFileType.Directory,
        0x6000 => CpioFileType.BlockDevice,
        0x8000 => CpioFileType.Regular,
        0xA000 => CpioFileType.Symlink,
        0xC000 => CpioFileType.Socket,
        _ => CpioFileType.Unknown,
    };

    /// <summary>Permission bits of c_mode (07777).</summary>
    public UnixFileMode Permissions => (UnixFileMode)(Mode & 0xFFF);

    /// <summary>True when <paramref name="bytes"/> starts with "070701" or "070702".</summary>
    public static bool HasMagic(ReadOnlySpan<byte> bytes) =>
        bytes.Length >= Offsets.MagicLength && (bytes[..6].SequenceEqual("070701"u8) || bytes[..6].SequenceEqual("070702"u8));

    /// <summary>
    /// Parses the 110-byte header at the start of <paramref name="bytes"/>; <paramref name="imageOffset"/> is its
    /// absolute offset, used in errors. Checks magic, that every field is 8 hex digits, and 1 &lt;= c_namesize &lt;=
    /// <see cref="Limits.MaxNameSize"/>. Bounds that need the surrounding archive are the reader's job.
    /// </summary>
    public static CpioNewcHeader Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        if (bytes.Length < Size)
            throw new TruncatedDataException(StructureName, imageOffset, Size, bytes.Length);

        var magic = bytes.Slice(Offsets.Magic, Offsets.MagicLength);
        CpioFormat format;
        if (magic.SequenceEqual("070701"u8)) format = CpioFormat.Newc;
        else if (magic.SequenceEqual("070702"u8)) format = CpioFormat.Crc;
        else if (magic.SequenceEqual("070707"u8))
            throw new MalformedDataException(StructureName, imageOffset + Offsets.Magic,
                "c_magic is \"070707\": old binary/odc cpio; expected newc (\"070701\", as written by cpio -H newc)");
        else
            throw MalformedDataException.Field(StructureName, imageOffset + Offsets.Magic, "c_magic", Quote.Bytes(magic),
                "\"070701\" (newc) or \"070702\" (crc)");

        Span<uint> values = stackalloc uint[FieldNames.Length];
        for (int i = 0; i < FieldNames.Length; i++)
        {
            var (offset, name) = FieldNames[i];
            values[i] = ParseHex(bytes.Slice(offset, Offsets.FieldLength), imageOffset + offset, name);
        }

        var header = new CpioNewcHeader
        {
            Format = format,
            Ino = values[0],
            Mode = values[1],
            Uid = values[2],
            Gid = values[3],
            NLink = values[4],
            MTime = values[5],
            FileSize = values[6],
            DevMajor = values[7],
            DevMinor = values[8],
            RDevMajor = values[9],
            RDevMinor = values[10],
            NameSize = values[11],
            Check = values[12],
        };

        // init/initramfs.c do_header: name_len 0 or > PATH_MAX is not a usable entry
        if (header.NameSize == 0 || header.NameSize > Limits.MaxNameSize)
            throw MalformedDataException.Field(StructureName, imageOffset + Offsets.NameSize, "c_namesize", header.NameSize,
                $"1..{Limits.MaxNameSize} (name length including NUL, at most PATH_MAX)");
        return header;
    }

    private static uint ParseHex(ReadOnlySpan<byte> field, long fieldOffset, string name)
    {
        uint value = 0;
        foreach (byte c in field)
        {
            int digit = c switch
            {
                >= (byte)'0' and <= (byte)'9' => c - '0',
                >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
                >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
                _ => -1,
            };
            if (digit < 0)
                throw MalformedDataException.Field(StructureName, fieldOffset, name, Quote.Bytes(field), "8 hex digits");
            value = (value << 4) | (uint)digit;
        }
        return value;
    }
}
