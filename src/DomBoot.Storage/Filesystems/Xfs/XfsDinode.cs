using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Filesystems.Xfs;

/// <summary>Inode fork formats (enum xfs_dinode_fmt).</summary>
internal enum XfsDinodeFormat : byte { Dev = 0, Local = 1, Extents = 2, Btree = 3, Uuid = 4, Rmap = 5 }

/// <summary>
/// An on-disk inode (struct xfs_dinode; XFS Algorithms &amp; Data Structures, "On-disk Inode"): the v1/v2 core of
/// 100 bytes or the v3 core of 176 bytes with crc, then the data fork and the attribute fork. Timestamps are
/// classic (seconds, nanoseconds) or bigtime (nanoseconds since 1901-12-13); extent counts are 32-bit or, with
/// nrext64 (di_flags2 bit 4), the 64-bit di_big_nextents.
/// </summary>
internal sealed record XfsDinode(
    ulong Ino,
    long ImageOffset,
    ushort Mode,
    byte Version,
    XfsDinodeFormat Format,
    uint Uid,
    uint Gid,
    uint NLink,
    DateTimeOffset MTime,
    ulong Size,
    ulong NBlocks,
    ulong NExtents,
    byte ForkOff,
    ushort Flags,
    ulong Flags2,
    int DataForkOffset,
    int DataForkSize,
    byte[] DataFork)
{
    public const ushort Magic = 0x494E; // "IN"

    /// <summary>Field offsets in struct xfs_dinode.</summary>
    internal static class Offsets
    {
        public const int di_magic = 0;
        public const int di_mode = 2;
        public const int di_version = 4;
        public const int di_format = 5;
        public const int di_onlink = 6;
        public const int di_uid = 8;
        public const int di_gid = 12;
        public const int di_nlink = 16;
        public const int di_big_nextents = 24;
        public const int di_mtime = 40;
        public const int di_size = 56;
        public const int di_nblocks = 64;
        public const int di_nextents = 76;
        public const int di_forkoff = 82;
        public const int di_aformat = 83;
        public const int di_flags = 90;
        public const int di_crc = 100;
        public const int di_flags2 = 120;
        public const int di_ino = 152;
        public const int di_uuid = 160;
        public const int V2CoreSize = 100;
        public const int V3CoreSize = 176;
    }

    internal static class Limits
    {
        /// <summary>XFS_MAXIOFFSET: the largest file offset XFS can address.</summary>
        public const ulong MaxFileSize = long.MaxValue;
        /// <summary>XFS_SYMLINK_MAXLEN.</summary>
        public const int MaxSymlinkLength = 1024;
    }

    public const ushort DiflagRealtime = 0x0001;
    public const ulong Diflag2Bigtime = 0x08;
    public const ulong Diflag2Nrext64 = 0x10;

    public FsNodeType NodeType => TypeOfMode(Mode);
    public bool IsRealtime => (Flags & DiflagRealtime) != 0;

    public static FsNodeType TypeOfMode(ushort mode) => (mode & 0xF000) switch
    {
        0x8000 => FsNodeType.Regular,
        0x4000 => FsNodeType.Directory,
        0xA000 => FsNodeType.Symlink,
        0x2000 => FsNodeType.CharDevice,
        0x6000 => FsNodeType.BlockDevice,
        0x1000 => FsNodeType.Fifo,
        0xC000 => FsNodeType.Socket,
        _ => FsNodeType.Unknown,
    };

    /// <summary>Parses inode <paramref name="ino"/> from its sb_inodesize bytes.</summary>
    public static XfsDinode Parse(ReadOnlySpan<byte> bytes, long imageOffset, ulong ino, XfsSuperblock sb)
    {
        var r = new FieldReader(bytes, imageOffset, $"XFS inode {ino}");
        r.Require(0, sb.InodeSize);
        ushort magic = r.U16BE(Offsets.di_magic);
        if (magic != Magic) throw r.FieldError(Offsets.di_magic, "di_magic", FieldReader.Hex(magic), "0x494E (\"IN\")");
        byte version = r.U8(Offsets.di_version);
        if (sb.IsV5 ? version != 3 : version is not (1 or 2))
            throw r.FieldError(Offsets.di_version, "di_version", version, sb.IsV5 ? "3 on a v5 filesystem" : "1 or 2 on a v4 filesystem");
        int coreSize = version == 3 ? Offsets.V3CoreSize : Offsets.V2CoreSize;

        ulong flags2 = 0;
        if (version == 3)
        {
            uint stored = XfsCrc32c.Stored(bytes, Offsets.di_crc);
            uint computed = XfsCrc32c.Compute(bytes[..sb.InodeSize], Offsets.di_crc);
            if (stored != computed)
                throw r.FieldError(Offsets.di_crc, "di_crc", FieldReader.Hex(stored), $"{FieldReader.Hex(computed)} (crc32c of the inode)");
            ulong selfIno = r.U64BE(Offsets.di_ino);
            if (selfIno != ino) throw r.FieldError(Offsets.di_ino, "di_ino", selfIno, $"{ino} (the inode's own number)");
            flags2 = r.U64BE(Offsets.di_flags2);
        }

        ushort mode = r.U16BE(Offsets.di_mode);
        var format = (XfsDinodeFormat)r.U8(Offsets.di_format);
        uint nlink = version == 1 ? r.U16BE(Offsets.di_onlink) : r.U32BE(Offsets.di_nlink);
        ulong size = r.U64BE(Offsets.di_size);
        if (size > Limits.MaxFileSize) throw r.FieldError(Offsets.di_size, "di_size", size, $"at most {Limits.MaxFileSize} (XFS_MAXIOFFSET)");

        bool nrext64 = (flags2 & Diflag2Nrext64) != 0;
        if (nrext64 && !sb.HasNrext64)
            throw r.FieldError(Offsets.di_flags2, "di_flags2", FieldReader.Hex(flags2), "no NREXT64 flag without the nrext64 feature");
        ulong nextents = nrext64 ? r.U64BE(Offsets.di_big_nextents) : r.U32BE(Offsets.di_nextents);

        byte forkOff = r.U8(Offsets.di_forkoff);
        int literal = sb.InodeSize - coreSize;
        int dataForkSize = forkOff == 0 ? literal : forkOff * 8;
        if (dataForkSize > literal)
            throw r.FieldError(Offsets.di_forkoff, "di_forkoff", forkOff, $"at most {literal / 8} (the inode literal area)");

        var type = TypeOfMode(mode);
        bool formatOk = type switch
        {
            FsNodeType.Regular => format is XfsDinodeFormat.Extents or XfsDinodeFormat.Btree,
            FsNodeType.Directory => format is XfsDinodeFormat.Local or XfsDinodeFormat.Extents or XfsDinodeFormat.Btree,
            FsNodeType.Symlink => format is XfsDinodeFormat.Local or XfsDinodeFormat.Extents or XfsDinodeFormat.Btree,
            FsNodeType.CharDevice or FsNodeType.BlockDevice or FsNodeType.Fifo or FsNodeType.Socket => format == XfsDinodeFormat.Dev,
            _ => false,
        };
        if (type == FsNodeType.Unknown) throw r.FieldError(Offsets.di_mode, "di_mode", "0" + Convert.ToString(mode, 8), "a known file type");
        if (!formatOk) throw r.FieldError(Offsets.di_format, "di_format", format, $"a fork format valid for a {type} inode");

        if (format == XfsDinodeFormat.Extents && nextents > (ulong)(dataForkSize / XfsBmbtRecord.Size))
            throw r.FieldError(nrext64 ? Offsets.di_big_nextents : Offsets.di_nextents, "di_nextents", nextents,
                $"at most {dataForkSize / XfsBmbtRecord.Size} (extent records fitting the {dataForkSize}-byte data fork)");
        if (format == XfsDinodeFormat.Local && size > (ulong)dataForkSize)
            throw r.FieldError(Offsets.di_size, "di_size", size, $"at most {dataForkSize} for an inline (local) fork");
        if (type == FsNodeType.Symlink && size > Limits.MaxSymlinkLength)
            throw r.FieldError(Offsets.di_size, "di_size", size, $"at most {Limits.MaxSymlinkLength} for a symlink (XFS_SYMLINK_MAXLEN)");

        var mtime = ReadTime(r, Offsets.di_mtime, (flags2 & Diflag2Bigtime) != 0);
        return new XfsDinode(ino, imageOffset, mode, version, format, r.U32BE(Offsets.di_uid), r.U32BE(Offsets.di_gid), nlink, mtime,
            size, r.U64BE(Offsets.di_nblocks), nextents, forkOff, r.U16BE(Offsets.di_flags), flags2, coreSize, dataForkSize,
            r.Bytes(coreSize, dataForkSize).ToArray());
    }

    /// <summary>Classic: signed seconds + nanoseconds; bigtime: unsigned nanoseconds since -2^31 s (XFS_BIGTIME_EPOCH_OFFSET).</summary>
    private static DateTimeOffset ReadTime(FieldReader r, int offset, bool bigtime)
    {
        long seconds;
        long nanos;
        if (bigtime)
        {
            ulong ns = r.U64BE(offset);
            seconds = (long)(ns / 1_000_000_000UL) - (1L << 31);
            nanos = (long)(ns % 1_000_000_000UL);
        }
        else
        {
            seconds = (int)r.U32BE(offset);
            nanos = Math.Min(r.U32BE(offset + 4), 999_999_999u);
        }
        return DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(nanos / 100);
    }
}
