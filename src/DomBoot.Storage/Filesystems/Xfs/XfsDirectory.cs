using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Filesystems.Xfs;

/// <summary>One raw directory entry as stored; <see cref="FileType"/> is XFS_DIR3_FT_* or 0 without ftype.</summary>
internal delegate bool XfsDirEntryVisitor(ReadOnlySpan<byte> name, ulong ino, byte fileType, long entryOffset);

/// <summary>
/// XFS version 2/3 directories (XFS Algorithms &amp; Data Structures, "Directories"; xfs_da_format.h): short-form in
/// the inode (struct xfs_dir2_sf_hdr), block directories (XD2B/XDB3 with leaf and tail in the one block), and
/// leaf/node directories whose data blocks (XD2D/XDD3) sit below XFS_DIR2_LEAF_OFFSET. Entries are found by
/// walking the data blocks; the hash index in leaf/node blocks is not needed for that.
/// </summary>
internal static class XfsDirectory
{
    public const uint Xd2bMagic = 0x58443242; // "XD2B"
    public const uint Xd2dMagic = 0x58443244; // "XD2D"
    public const uint Xdb3Magic = 0x58444233; // "XDB3"
    public const uint Xdd3Magic = 0x58444433; // "XDD3"
    public const ulong LeafOffsetBytes = 32UL << 30; // XFS_DIR2_LEAF_OFFSET

    internal static class Limits
    {
        public const int MaxEntries = 1 << 22;
        /// <summary>Data bytes walked per directory; the format's own bound is 32 GiB.</summary>
        public const long MaxDataBytes = 1L << 30;
    }

    /// <summary>struct xfs_dir2_sf_hdr and entry fields.</summary>
    internal static class SfOffsets
    {
        public const int count = 0;
        public const int i8count = 1;
        public const int parent = 2;
        public const int namelen = 0;
        public const int offset = 1;
        public const int name = 3;
    }

    /// <summary>struct xfs_dir2_data_hdr / xfs_dir3_data_hdr, entries, and the block tail.</summary>
    internal static class DataOffsets
    {
        public const int magic = 0;
        public const int crc = 4;
        public const int owner = 40;
        public const int V4HeaderSize = 16;
        public const int V5HeaderSize = 64;
        public const int inumber = 0;
        public const int namelen = 8;
        public const int name = 9;
        public const int freetag = 0;
        public const int length = 2;
        public const ushort FreeTag = 0xFFFF;
        public const int TailSize = 8; // struct xfs_dir2_block_tail: count, stale
    }

    /// <summary>Calls <paramref name="visit"/> for each entry (including "." and ".." in block-form data) until it returns true.</summary>
    public static void Walk(XfsVolume vol, XfsDinode dir, Func<XfsExtentMap> map, XfsDirEntryVisitor visit)
    {
        if (dir.Format == XfsDinodeFormat.Local) { WalkShortForm(vol.Superblock, dir, visit); return; }
        var sb = vol.Superblock;
        uint dirBlockSize = sb.DirBlockSize;
        int fsbPerDirBlock = 1 << sb.DirBlkLog;
        bool isBlockForm = dir.Size == dirBlockSize;
        if (dir.Size % dirBlockSize != 0 && !isBlockForm)
            throw MalformedDataException.Field($"XFS inode {dir.Ino}", dir.ImageOffset + XfsDinode.Offsets.di_size, "di_size", dir.Size,
                $"a multiple of the {dirBlockSize}-byte directory block");
        ulong leafOffsetFsb = LeafOffsetBytes >> sb.BlockLog;
        var m = map();
        var buf = new byte[dirBlockSize];
        long walked = 0;
        int entries = 0;
        ulong nextDirBlock = 0;
        foreach (var e in m.Extents)
        {
            if (e.StartOff >= leafOffsetFsb) break;
            ulong first = Math.Max(e.StartOff >> sb.DirBlkLog, nextDirBlock);
            ulong end = (Math.Min(e.EndOff, leafOffsetFsb) + (ulong)fsbPerDirBlock - 1) >> sb.DirBlkLog;
            for (ulong db = first; db < end; db++)
            {
                nextDirBlock = db + 1;
                if (e.Unwritten) continue;
                walked += dirBlockSize;
                if (walked > Limits.MaxDataBytes)
                    throw new MalformedDataException($"XFS inode {dir.Ino} directory", e.ImageOffset, $"more than {Limits.MaxDataBytes} bytes of directory data");
                long blockOffset = ReadDirBlock(vol, dir, m, db << sb.DirBlkLog, fsbPerDirBlock, buf);
                if (isBlockForm && db != 0)
                    throw new MalformedDataException($"XFS inode {dir.Ino} directory", e.ImageOffset, $"block directory maps directory block {db}");
                if (WalkDataBlock(sb, dir.Ino, buf, blockOffset, isBlockForm, visit, ref entries)) return;
            }
        }
    }

    /// <summary>Reads one directory block (possibly several fs blocks from several extents); returns the byte offset of its first fs block.</summary>
    private static long ReadDirBlock(XfsVolume vol, XfsDinode dir, XfsExtentMap map, ulong firstFsb, int count, byte[] buf)
    {
        var sb = vol.Superblock;
        long first = -1;
        for (int i = 0; i < count; i++)
        {
            ulong fileBlock = firstFsb + (ulong)i;
            int idx = map.Find(fileBlock);
            if (idx < 0 || map.Extents[idx].Unwritten)
                throw new MalformedDataException($"XFS inode {dir.Ino} directory", dir.ImageOffset, $"directory block at file block {firstFsb} is partly unmapped");
            var e = map.Extents[idx];
            ulong linear = sb.FsbToLinear(e.StartBlock, e.BlockCount)!.Value + (fileBlock - e.StartOff);
            long at = vol.BlockOffset(linear, e.ImageOffset, "XFS extent record");
            if (i == 0) first = at;
            vol.Read(at, buf.AsSpan(i * (int)sb.BlockSize, (int)sb.BlockSize));
        }
        return first;
    }

    private static bool WalkDataBlock(XfsSuperblock sb, ulong ino, byte[] buf, long blockOffset, bool isBlockForm, XfsDirEntryVisitor visit, ref int entries)
    {
        var r = new FieldReader(buf, blockOffset, $"XFS inode {ino} directory block");
        uint magic = r.U32BE(DataOffsets.magic);
        uint want = isBlockForm ? (sb.IsV5 ? Xdb3Magic : Xd2bMagic) : (sb.IsV5 ? Xdd3Magic : Xd2dMagic);
        if (magic != want)
            throw r.FieldError(DataOffsets.magic, "magic", FieldReader.Hex(magic), $"{FieldReader.Hex(want)} (\"{MagicText(want)}\")");
        int header = DataOffsets.V4HeaderSize;
        if (sb.IsV5)
        {
            header = DataOffsets.V5HeaderSize;
            uint stored = XfsCrc32c.Stored(buf, DataOffsets.crc);
            uint computed = XfsCrc32c.Compute(buf, DataOffsets.crc);
            if (stored != computed) throw r.FieldError(DataOffsets.crc, "crc", FieldReader.Hex(stored), $"{FieldReader.Hex(computed)} (crc32c of the directory block)");
            ulong owner = r.U64BE(DataOffsets.owner);
            if (owner != ino) throw r.FieldError(DataOffsets.owner, "owner", owner, $"{ino} (the directory inode)");
        }
        int end = buf.Length;
        if (isBlockForm)
        {
            int tail = buf.Length - DataOffsets.TailSize;
            uint count = r.U32BE(tail);
            long leafStart = tail - (long)count * 8;
            if (leafStart < header)
                throw r.FieldError(tail, "block tail count", count, $"at most {(tail - header) / 8} leaf entries");
            end = (int)leafStart;
        }
        bool ftype = sb.HasFtype;
        int p = header;
        while (p < end)
        {
            if (r.U16BE(p + DataOffsets.freetag) == DataOffsets.FreeTag)
            {
                int len = r.U16BE(p + DataOffsets.length);
                if (len < 8 || len % 8 != 0 || len > end - p)
                    throw r.FieldError(p + DataOffsets.length, "unused entry length", len, $"a multiple of 8 in 8..{end - p}");
                p += len;
                continue;
            }
            if (end - p < 16) throw r.Error(p, $"directory entry overruns the data area ending at block offset {end}");
            ulong entryIno = r.U64BE(p + DataOffsets.inumber);
            int nameLen = r.U8(p + DataOffsets.namelen);
            if (nameLen == 0) throw r.FieldError(p + DataOffsets.namelen, "namelen", 0, "1..255");
            int size = (DataOffsets.name + nameLen + (ftype ? 1 : 0) + 2 + 7) & ~7;
            if (size > end - p) throw r.FieldError(p + DataOffsets.namelen, "namelen", nameLen, $"an entry within the data area ({end - p} bytes left)");
            byte fileType = ftype ? r.U8(p + DataOffsets.name + nameLen) : (byte)0;
            if (++entries > Limits.MaxEntries) throw r.Error(p, $"more than {Limits.MaxEntries} directory entries");
            if (visit(r.Bytes(p + DataOffsets.name, nameLen), entryIno, fileType, r.Absolute(p))) return true;
            p += size;
        }
        return false;
    }

    private static void WalkShortForm(XfsSuperblock sb, XfsDinode dir, XfsDirEntryVisitor visit)
    {
        long forkOffset = dir.ImageOffset + dir.DataForkOffset;
        var r = new FieldReader(dir.DataFork.AsSpan(0, (int)dir.Size), forkOffset, $"XFS inode {dir.Ino} short-form directory");
        int count = r.U8(SfOffsets.count);
        int i8count = r.U8(SfOffsets.i8count);
        int inoSize = i8count != 0 ? 8 : 4;
        int p = SfOffsets.parent + inoSize;
        r.Require(0, p);
        bool ftype = sb.HasFtype;
        for (int i = 0; i < count; i++)
        {
            int nameLen = r.U8(p + SfOffsets.namelen);
            if (nameLen == 0) throw r.FieldError(p + SfOffsets.namelen, "namelen", 0, "1..255");
            int nameAt = p + SfOffsets.name;
            int after = nameAt + nameLen + (ftype ? 1 : 0);
            r.Require(nameAt, nameLen + (ftype ? 1 : 0) + inoSize);
            byte fileType = ftype ? r.U8(nameAt + nameLen) : (byte)0;
            ulong ino = inoSize == 8 ? r.U64BE(after) : r.U32BE(after);
            if (visit(r.Bytes(nameAt, nameLen), ino, fileType, r.Absolute(p))) return;
            p = after + inoSize;
        }
    }

    /// <summary>The short-form header's parent inode number and its offset.</summary>
    public static (ulong Ino, long Offset) ShortFormParent(XfsDinode dir)
    {
        var r = new FieldReader(dir.DataFork.AsSpan(0, (int)dir.Size), dir.ImageOffset + dir.DataForkOffset, $"XFS inode {dir.Ino} short-form directory");
        bool i8 = r.U8(SfOffsets.i8count) != 0;
        return (i8 ? r.U64BE(SfOffsets.parent) : r.U32BE(SfOffsets.parent), r.Absolute(SfOffsets.parent));
    }

    private static string MagicText(uint m) => new([(char)(m >> 24), (char)((m >> 16) & 0xFF), (char)((m >> 8) & 0xFF), (char)(m & 0xFF)]);

    /// <summary>XFS_DIR3_FT_* to a node type.</summary>
    public static FsNodeType TypeOfFtype(byte ft) => ft switch
    {
        1 => FsNodeType.Regular,
        2 => FsNodeType.Directory,
        3 => FsNodeType.CharDevice,
        4 => FsNodeType.BlockDevice,
        5 => FsNodeType.Fifo,
        6 => FsNodeType.Socket,
        7 => FsNodeType.Symlink,
        _ => FsNodeType.Unknown,
    };
}
