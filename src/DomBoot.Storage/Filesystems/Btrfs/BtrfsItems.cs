using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Filesystems.Btrfs;

/// <summary>struct btrfs_inode_item (On-disk Format, "INODE_ITEM").</summary>
internal sealed record BtrfsInodeItem(ulong Generation, ulong TransId, ulong Size, ulong NBytes, uint NLink, uint Uid, uint Gid,
    uint Mode, ulong Rdev, ulong Flags, long MtimeSec, uint MtimeNsec)
{
    public const int ItemSize = 160;

    public static class Offsets
    {
        public const int Generation = 0;
        public const int Transid = 8;
        public const int Size = 16;
        public const int Nbytes = 24;
        public const int BlockGroup = 32;
        public const int Nlink = 40;
        public const int Uid = 44;
        public const int Gid = 48;
        public const int Mode = 52;
        public const int Rdev = 56;
        public const int Flags = 64;
        public const int Sequence = 72;
        public const int Atime = 112;
        public const int Ctime = 124;
        public const int Mtime = 136;
        public const int Otime = 148;
    }

    public static BtrfsInodeItem Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "btrfs inode item");
        r.Require(0, ItemSize);
        return new BtrfsInodeItem(r.U64(Offsets.Generation), r.U64(Offsets.Transid), r.U64(Offsets.Size), r.U64(Offsets.Nbytes),
            r.U32(Offsets.Nlink), r.U32(Offsets.Uid), r.U32(Offsets.Gid), r.U32(Offsets.Mode), r.U64(Offsets.Rdev), r.U64(Offsets.Flags),
            (long)r.U64(Offsets.Mtime), r.U32(Offsets.Mtime + 8));
    }

    public FsNodeType NodeType => (Mode & 0xF000) switch
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

    public DateTimeOffset? ModifiedTime =>
        MtimeSec >= -62135596800L && MtimeSec <= 253402300799L && MtimeNsec < 1_000_000_000
            ? DateTimeOffset.FromUnixTimeSeconds(MtimeSec).AddTicks(MtimeNsec / 100)
            : null;
}

/// <summary>
/// struct btrfs_dir_item (On-disk Format, "DIR_ITEM"/"DIR_INDEX"): a location key, then name and data bytes.
/// Several may be packed into one DIR_ITEM on a name-hash collision.
/// </summary>
internal sealed record BtrfsDirItem(BtrfsKey Location, ulong TransId, ushort DataLen, byte[] Name, byte Type)
{
    public const int FixedSize = 30;

    public static class Offsets
    {
        public const int Location = 0;
        public const int Transid = 17;
        public const int DataLen = 25;
        public const int NameLen = 27;
        public const int Type = 29;
        public const int Name = 30;
    }

    public const byte FtXattr = 8;

    public FsNodeType NodeType => Type switch
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

    /// <summary>Parses every entry packed into one item.</summary>
    public static List<BtrfsDirItem> ParseAll(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var list = new List<BtrfsDirItem>();
        int pos = 0;
        while (pos < bytes.Length)
        {
            var r = new FieldReader(bytes[pos..], imageOffset + pos, "btrfs dir item");
            r.Require(0, FixedSize);
            ushort nameLen = r.U16(Offsets.NameLen), dataLen = r.U16(Offsets.DataLen);
            byte type = r.U8(Offsets.Type);
            if (nameLen == 0 || (type != FtXattr && nameLen > BtrfsLimits.MaxNameBytes))
                throw r.FieldError(Offsets.NameLen, "name_len", nameLen, $"between 1 and {BtrfsLimits.MaxNameBytes}");
            int total = FixedSize + nameLen + dataLen;
            r.Require(0, total);
            list.Add(new BtrfsDirItem(BtrfsKey.Parse(r.Bytes(Offsets.Location, BtrfsKey.Size), imageOffset + pos), r.U64(Offsets.Transid),
                dataLen, r.Bytes(Offsets.Name, nameLen).ToArray(), type));
            pos += total;
        }
        return list;
    }
}

/// <summary>struct btrfs_inode_ref (On-disk Format, "INODE_REF"): index and name of a link; key offset = parent inode.</summary>
internal sealed record BtrfsInodeRef(ulong Index, byte[] Name)
{
    public const int FixedSize = 10;

    public static class Offsets
    {
        public const int Index = 0;
        public const int NameLen = 8;
        public const int Name = 10;
    }

    public static BtrfsInodeRef ParseFirst(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "btrfs inode ref");
        r.Require(0, FixedSize);
        ushort n = r.U16(Offsets.NameLen);
        if (n > BtrfsLimits.MaxNameBytes) throw r.FieldError(Offsets.NameLen, "name_len", n, $"at most {BtrfsLimits.MaxNameBytes}");
        return new BtrfsInodeRef(r.U64(Offsets.Index), r.Bytes(Offsets.Name, n).ToArray());
    }
}

/// <summary>struct btrfs_inode_extref (INODE_EXTREF): a link whose parent is named inside the item.</summary>
internal sealed record BtrfsInodeExtref(ulong ParentObjectId, ulong Index, byte[] Name)
{
    public const int FixedSize = 18;

    public static class Offsets
    {
        public const int ParentObjectid = 0;
        public const int Index = 8;
        public const int NameLen = 16;
        public const int Name = 18;
    }

    public static BtrfsInodeExtref ParseFirst(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "btrfs inode extref");
        r.Require(0, FixedSize);
        ushort n = r.U16(Offsets.NameLen);
        if (n > BtrfsLimits.MaxNameBytes) throw r.FieldError(Offsets.NameLen, "name_len", n, $"at most {BtrfsLimits.MaxNameBytes}");
        return new BtrfsInodeExtref(r.U64(Offsets.ParentObjectid), r.U64(Offsets.Index), r.Bytes(Offsets.Name, n).ToArray());
    }
}

/// <summary>struct btrfs_root_item (On-disk Format, "ROOT_ITEM"): where a tree's root block is.</summary>
internal sealed record BtrfsRootItem(ulong Generation, ulong RootDirId, ulong Bytenr, ulong Flags, uint Refs, byte Level)
{
    /// <summary>The oldest root items end after drop_level/level; newer ones are 439 bytes.</summary>
    public const int MinSize = 239;

    public static class Offsets
    {
        public const int Inode = 0;
        public const int Generation = 160;
        public const int RootDirid = 168;
        public const int Bytenr = 176;
        public const int ByteLimit = 184;
        public const int BytesUsed = 192;
        public const int LastSnapshot = 200;
        public const int Flags = 208;
        public const int Refs = 216;
        public const int DropProgress = 220;
        public const int DropLevel = 237;
        public const int Level = 238;
    }

    public static BtrfsRootItem Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "btrfs root item");
        r.Require(0, MinSize);
        byte level = r.U8(Offsets.Level);
        if (level > BtrfsLimits.MaxLevel) throw r.FieldError(Offsets.Level, "level", level, $"at most {BtrfsLimits.MaxLevel}");
        return new BtrfsRootItem(r.U64(Offsets.Generation), r.U64(Offsets.RootDirid), r.U64(Offsets.Bytenr), r.U64(Offsets.Flags),
            r.U32(Offsets.Refs), level);
    }
}

/// <summary>struct btrfs_root_ref (ROOT_REF / ROOT_BACKREF): the directory and name a subvolume is linked under.</summary>
internal sealed record BtrfsRootRef(ulong DirId, ulong Sequence, byte[] Name)
{
    public const int FixedSize = 18;

    public static class Offsets
    {
        public const int Dirid = 0;
        public const int Sequence = 8;
        public const int NameLen = 16;
        public const int Name = 18;
    }

    public static BtrfsRootRef Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "btrfs root ref");
        r.Require(0, FixedSize);
        ushort n = r.U16(Offsets.NameLen);
        if (n == 0 || n > BtrfsLimits.MaxNameBytes) throw r.FieldError(Offsets.NameLen, "name_len", n, $"between 1 and {BtrfsLimits.MaxNameBytes}");
        return new BtrfsRootRef(r.U64(Offsets.Dirid), r.U64(Offsets.Sequence), r.Bytes(Offsets.Name, n).ToArray());
    }
}

/// <summary>
/// struct btrfs_file_extent_item (On-disk Format, "EXTENT_DATA"): inline data, or a reference to
/// [disk_bytenr, +disk_num_bytes) of which [offset, +num_bytes) is the file's, maybe compressed.
/// </summary>
internal sealed record BtrfsFileExtentItem(ulong FileOffset, ulong Generation, ulong RamBytes, byte Compression, byte Encryption,
    ushort OtherEncoding, byte Type, ulong DiskBytenr, ulong DiskNumBytes, ulong Offset, ulong NumBytes, ReadOnlyMemory<byte> InlineData,
    long ImageOffset)
{
    public const int InlineHeaderSize = 21;
    public const int RegularSize = 53;
    public const byte TypeInline = 0, TypeRegular = 1, TypePrealloc = 2;
    public const byte CompressNone = 0, CompressZlib = 1, CompressLzo = 2, CompressZstd = 3;

    public static class Offsets
    {
        public const int Generation = 0;
        public const int RamBytes = 8;
        public const int Compression = 16;
        public const int Encryption = 17;
        public const int OtherEncoding = 18;
        public const int Type = 20;
        public const int DiskBytenr = 21;
        public const int DiskNumBytes = 29;
        public const int Offset = 37;
        public const int NumBytes = 45;
    }

    /// <summary>Bytes of the file this extent covers (inline: ram_bytes).</summary>
    public ulong Length => Type == TypeInline ? RamBytes : NumBytes;

    public static BtrfsFileExtentItem Parse(ReadOnlySpan<byte> bytes, long imageOffset, ulong fileOffset, ReadOnlyMemory<byte> item, uint sectorSize)
    {
        var r = new FieldReader(bytes, imageOffset, "btrfs file extent item");
        r.Require(0, InlineHeaderSize);
        byte compression = r.U8(Offsets.Compression), type = r.U8(Offsets.Type);
        ulong ram = r.U64(Offsets.RamBytes);
        if (type > TypePrealloc) throw r.FieldError(Offsets.Type, "type", type, "0 (inline), 1 (regular) or 2 (prealloc)");
        if (compression > CompressZstd) throw r.FieldError(Offsets.Compression, "compression", compression, "0 (none), 1 (zlib), 2 (lzo) or 3 (zstd)");
        byte enc = r.U8(Offsets.Encryption);
        ushort other = r.U16(Offsets.OtherEncoding);
        if (enc != 0 || other != 0)
            throw new UnsupportedFeatureException($"btrfs file extent item at offset 0x{imageOffset:X}: encryption {enc} / other_encoding {other} is not supported");
        if (type == TypeInline)
        {
            if (fileOffset != 0) throw r.Error(Offsets.Type, $"inline extent at file offset {fileOffset}; expected 0");
            int dataLen = bytes.Length - InlineHeaderSize;
            if (compression == CompressNone && ram != (ulong)dataLen)
                throw r.FieldError(Offsets.RamBytes, "ram_bytes", ram, $"{dataLen} (the inline data length)");
            if (ram > sectorSize) throw r.FieldError(Offsets.RamBytes, "ram_bytes", ram, $"at most sectorsize {sectorSize} for an inline extent");
            return new BtrfsFileExtentItem(fileOffset, r.U64(Offsets.Generation), ram, compression, enc, other, type, 0, 0, 0, ram,
                item[InlineHeaderSize..], imageOffset);
        }
        r.Require(0, RegularSize);
        ulong diskBytenr = r.U64(Offsets.DiskBytenr), diskNum = r.U64(Offsets.DiskNumBytes), offset = r.U64(Offsets.Offset), num = r.U64(Offsets.NumBytes);
        if (num == 0 || num % sectorSize != 0) throw r.FieldError(Offsets.NumBytes, "num_bytes", FieldReader.Hex(num), $"a non-zero multiple of sectorsize {sectorSize}");
        if (fileOffset % sectorSize != 0) throw r.Error(0, $"extent starts at file offset {FieldReader.Hex(fileOffset)}; expected a multiple of sectorsize {sectorSize}");
        if (fileOffset > (ulong)BtrfsLimits.MaxFileSize - num)
            throw r.FieldError(Offsets.NumBytes, "num_bytes", FieldReader.Hex(num), $"at most {FieldReader.Hex((ulong)BtrfsLimits.MaxFileSize - fileOffset)} (file offset + num_bytes below 2^63)");
        if (diskBytenr != 0)
        {
            if (compression != CompressNone)
            {
                if (diskNum == 0 || diskNum > BtrfsLimits.MaxCompressedBytes)
                    throw r.FieldError(Offsets.DiskNumBytes, "disk_num_bytes", FieldReader.Hex(diskNum), $"between 1 and {BtrfsLimits.MaxCompressedBytes} for a compressed extent");
                if (ram == 0 || ram > BtrfsLimits.MaxCompressedBytes)
                    throw r.FieldError(Offsets.RamBytes, "ram_bytes", FieldReader.Hex(ram), $"between 1 and {BtrfsLimits.MaxCompressedBytes} for a compressed extent");
                if (offset > ram || num > ram - offset)
                    throw r.FieldError(Offsets.NumBytes, "num_bytes", FieldReader.Hex(num), $"at most ram_bytes - offset ({FieldReader.Hex(ram)} - {FieldReader.Hex(offset)})");
            }
            else if (offset > diskNum || num > diskNum - offset)
            {
                throw r.FieldError(Offsets.NumBytes, "num_bytes", FieldReader.Hex(num), $"at most disk_num_bytes - offset ({FieldReader.Hex(diskNum)} - {FieldReader.Hex(offset)})");
            }
            if (diskBytenr > ulong.MaxValue - diskNum)
                throw r.FieldError(Offsets.DiskBytenr, "disk_bytenr", FieldReader.Hex(diskBytenr), "an extent that ends below 2^64");
        }
        return new BtrfsFileExtentItem(fileOffset, r.U64(Offsets.Generation), ram, compression, enc, other, type, diskBytenr, diskNum, offset, num,
            ReadOnlyMemory<byte>.Empty, imageOffset);
    }
}
