using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Text;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Filesystems.Ext;

/// <summary>
/// Read-only ext2/ext3/ext4 (ext4 disk layout, kernel Documentation/filesystems/ext4): block-mapped and
/// extent-mapped files, linear and htree directories (read as linear, as GRUB does), inline data, fast and slow
/// symlinks, 64bit, flex_bg, meta_bg, metadata_csum (superblock checksum verified; other checksums tolerated as
/// GRUB and a read-only kernel mount do). The ext3/ext4 journal is ignored, like GRUB. Thread-safe; never writes.
/// </summary>
public sealed class ExtFileSystem : IFileSystem
{
    /// <summary>Bounds on what one call may read or allocate.</summary>
    internal static class Limits
    {
        public const uint RootInode = 2;
        public const long MaxDirectoryBytes = 1L << 30;
        public const int MaxDirectoryEntries = 1 << 22;
        /// <summary>PATH_MAX: the kernel refuses longer symlink targets.</summary>
        public const int MaxSymlinkBytes = 4096;
        public const int MaxCachedGroupDescriptors = 65536;
        public const int DirectBlocks = 12;
    }

    private const uint XattrMagic = 0xEA020000;
    private const byte XattrIndexSystem = 7;
    private const int XattrEntryHeaderSize = 16;

    private readonly IBlockReader _volume;
    private readonly ConcurrentDictionary<uint, Ext4GroupDescriptor> _groups = new();
    private readonly int _blockSize;

    internal Ext4Superblock Superblock { get; }

    public string TypeName { get; }
    public string? Label { get; }
    public string? Uuid { get; }
    public FsNode Root { get; }

    private ExtFileSystem(IBlockReader volume, Ext4Superblock sb)
    {
        _volume = volume;
        Superblock = sb;
        _blockSize = sb.BlockSize;
        TypeName = BlkidType(sb);
        Label = sb.VolumeName.Length == 0 ? null : sb.VolumeName;
        Uuid = sb.UuidText;
        Root = LoadNode(Limits.RootInode, "ext4 superblock", sb.ImageOffset, checkRange: true);
        if (Root.Type != FsNodeType.Directory)
            throw new MalformedDataException($"ext4 inode {Limits.RootInode}", ((ExtNode)Root.Handle!).Inode.ImageOffset,
                $"the root inode has i_mode 0x{((ExtNode)Root.Handle!).Inode.Mode:X}; expected a directory");
    }

    /// <summary>True when the ext2/3/4 magic 0xEF53 sits at byte 1024 + 0x38.</summary>
    public static bool HasMagic(ReadOnlySpan<byte> firstBlocks)
    {
        int at = (int)Ext4Superblock.VolumeOffset + Ext4Superblock.Offsets.Magic;
        return firstBlocks.Length >= at + 2 && BinaryPrimitives.ReadUInt16LittleEndian(firstBlocks[at..]) == Ext4Superblock.Magic;
    }

    /// <summary>Reads and checks the superblock and the root directory of the ext2/3/4 volume.</summary>
    public static ExtFileSystem Open(IBlockReader volume)
    {
        ArgumentNullException.ThrowIfNull(volume);
        var bytes = new byte[Ext4Superblock.SizeInBytes];
        volume.ReadExactly(Ext4Superblock.VolumeOffset, bytes);
        var sb = Ext4Superblock.Parse(bytes, Ext4Superblock.VolumeOffset);
        // ext4_fill_super: "bad geometry: block count exceeds size of device".
        UInt128 needed = (UInt128)sb.BlocksCount * (uint)sb.BlockSize;
        if (needed > (UInt128)volume.Length)
            throw MalformedDataException.Field(Ext4Superblock.StructureName, sb.ImageOffset + Ext4Superblock.Offsets.BlocksCountLo,
                "s_blocks_count", sb.BlocksCount, $"at most {volume.Length / sb.BlockSize} (the volume holds {volume.Length} bytes)");
        return new ExtFileSystem(volume, sb);
    }

    private static string BlkidType(Ext4Superblock sb)
    {
        // libblkid's rule: anything beyond ext3's feature set is ext4; a journal makes ext3; else ext2.
        const uint ext3Incompat = Ext4Features.IncompatFiletype | Ext4Features.IncompatRecover | Ext4Features.IncompatMetaBg;
        const uint ext3RoCompat = Ext4Features.RoCompatSparseSuper | Ext4Features.RoCompatLargeFile | Ext4Features.RoCompatBtreeDir;
        if ((sb.FeatureIncompat & ~ext3Incompat) != 0 || (sb.FeatureRoCompat & ~ext3RoCompat) != 0) return "ext4";
        return sb.HasCompat(Ext4Features.CompatHasJournal) ? "ext3" : "ext2";
    }

    /// <summary>Reader-private state carried in <see cref="FsNode.Handle"/>.</summary>
    internal sealed record ExtNode(uint Number, Ext4Inode Inode);

    private readonly record struct BlockRun(ulong Physical, long Count, bool Zero);

    // ---------------------------------------------------------------- inodes and group descriptors

    private static ExtNode Node(FsNode node) =>
        node.Handle as ExtNode ?? throw new ArgumentException("the node was not produced by this ext filesystem", nameof(node));

    private bool HasSuper(uint group)
    {
        if (group == 0) return true;
        var sb = Superblock;
        if (sb.HasCompat(Ext4Features.CompatSparseSuper2)) return group == sb.BackupBg0 || group == sb.BackupBg1;
        if (!sb.HasRoCompat(Ext4Features.RoCompatSparseSuper) || group == 1) return true;
        if (group % 2 == 0) return false;
        return IsPower(group, 3) || IsPower(group, 5) || IsPower(group, 7);

        static bool IsPower(uint n, uint b)
        {
            ulong p = b;
            while (p < n) p *= b;
            return p == n;
        }
    }

    /// <summary>Absolute byte offset of group <paramref name="group"/>'s descriptor (kernel descriptor_loc).</summary>
    private long GroupDescriptorOffset(uint group)
    {
        var sb = Superblock;
        uint perBlock = (uint)(_blockSize / sb.DescSize);
        uint metaGroup = group / perBlock;
        ulong block;
        // The table follows the superblock's own block (1 with 1 KiB blocks, else 0), which is not
        // s_first_data_block when bigalloc sets that to 0 on a 1 KiB-block filesystem.
        ulong superblockBlock = (ulong)(Ext4Superblock.VolumeOffset / _blockSize);
        if (!sb.HasIncompat(Ext4Features.IncompatMetaBg) || metaGroup < sb.FirstMetaBg)
        {
            block = superblockBlock + 1 + metaGroup;
        }
        else
        {
            uint first = metaGroup * perBlock;
            uint hasSuper = HasSuper(first) ? 1u : 0u;
            if (_blockSize == 1024 && first == 0 && sb.FirstDataBlock == 0) hasSuper++;
            block = sb.FirstDataBlock + (ulong)first * sb.BlocksPerGroup + hasSuper;
        }
        if (block >= sb.BlocksCount)
            throw new MalformedDataException(Ext4Superblock.StructureName, sb.ImageOffset,
                $"the descriptor of group {group} would sit in block {block}, past s_blocks_count {sb.BlocksCount}");
        return checked((long)block * _blockSize + (long)(group % perBlock) * sb.DescSize);
    }

    /// <summary>
    /// Whether group <paramref name="group"/>'s bg_checksum matches (crc32c with metadata_csum, crc16 with
    /// gdt_csum); null when the filesystem keeps none. Reads do not depend on it: a read-only kernel mount and
    /// GRUB both tolerate a mismatch, and so does this reader.
    /// </summary>
    internal bool? GroupDescriptorChecksumMatches(uint group)
    {
        var sb = Superblock;
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(group, sb.InodesCount / sb.InodesPerGroup);
        bool crc32c = sb.HasMetadataCsum;
        if (!crc32c && !sb.HasRoCompat(Ext4Features.RoCompatGdtCsum)) return null;
        var bytes = new byte[sb.DescSize];
        _volume.ReadExactly(GroupDescriptorOffset(group), bytes);
        Span<byte> le = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(le, group);
        const int at = Ext4GroupDescriptor.Offsets.Checksum;
        ushort stored = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(at));
        ReadOnlySpan<byte> zero = [0, 0];
        uint computed;
        if (crc32c)
        {
            uint c = Crc32c.Update(sb.ChecksumSeed, le);
            c = Crc32c.Update(c, bytes.AsSpan(0, at));
            c = Crc32c.Update(c, zero);
            c = Crc32c.Update(c, bytes.AsSpan(at + 2));
            computed = c & 0xFFFF;
        }
        else
        {
            ushort c = Crc16(0xFFFF, sb.UuidBytes.Span);
            c = Crc16(c, le);
            c = Crc16(c, bytes.AsSpan(0, at));
            if (sb.HasIncompat(Ext4Features.Incompat64Bit)) c = Crc16(c, bytes.AsSpan(at + 2));
            computed = c;
        }
        return computed == stored;
    }

    /// <summary>The kernel's lib/crc16 (polynomial 0x8005, reflected), as gdt_csum uses it.</summary>
    private static ushort Crc16(ushort crc, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (ushort)((crc >> 1) ^ 0xA001) : (ushort)(crc >> 1);
        }
        return crc;
    }

    private Ext4GroupDescriptor Group(uint group)
    {
        if (_groups.TryGetValue(group, out var cached)) return cached;
        var sb = Superblock;
        long offset = GroupDescriptorOffset(group);
        var bytes = new byte[sb.DescSize];
        _volume.ReadExactly(offset, bytes);
        var gd = Ext4GroupDescriptor.Parse(bytes, offset);
        ulong tableBlocks = ((ulong)sb.InodesPerGroup * (uint)sb.InodeSize + (uint)_blockSize - 1) / (uint)_blockSize;
        if (gd.InodeTable <= sb.FirstDataBlock || gd.InodeTable > sb.BlocksCount || sb.BlocksCount - gd.InodeTable < tableBlocks)
            throw MalformedDataException.Field($"ext4 group descriptor {group}", offset + Ext4GroupDescriptor.Offsets.InodeTableLo,
                "bg_inode_table", gd.InodeTable, $"{sb.FirstDataBlock + 1}..{sb.BlocksCount - Math.Min(sb.BlocksCount, tableBlocks)} (the {tableBlocks}-block table inside the volume)");
        if (_groups.Count < Limits.MaxCachedGroupDescriptors) _groups.TryAdd(group, gd);
        return gd;
    }

    private bool ValidInodeNumber(uint ino) => ino == Limits.RootInode || (ino >= Superblock.FirstIno && ino <= Superblock.InodesCount);

    /// <summary>Loads inode <paramref name="ino"/>, referenced by the structure at <paramref name="referrerOffset"/>.</summary>
    private FsNode LoadNode(uint ino, string referrer, long referrerOffset, bool checkRange)
    {
        var sb = Superblock;
        if (checkRange && !ValidInodeNumber(ino))
            throw MalformedDataException.Field(referrer, referrerOffset, "inode number", ino, $"2 or {sb.FirstIno}..{sb.InodesCount}");
        uint group = (ino - 1) / sb.InodesPerGroup;
        uint index = (ino - 1) % sb.InodesPerGroup;
        var gd = Group(group);
        long offset = checked((long)gd.InodeTable * _blockSize + (long)index * sb.InodeSize);
        var bytes = new byte[sb.InodeSize];
        _volume.ReadExactly(offset, bytes);
        var inode = Ext4Inode.Parse(bytes, offset);
        string structure = $"ext4 inode {ino}";
        if (inode.Mode == 0 || inode.LinksCount == 0)
            throw new MalformedDataException(structure, offset,
                $"is unused (i_mode 0x{inode.Mode:X}, i_links_count {inode.LinksCount}) but {referrer} at offset 0x{referrerOffset:X} refers to it");

        var type = inode.FileType switch
        {
            Ext4Inode.ModeBits.Regular => FsNodeType.Regular,
            Ext4Inode.ModeBits.Directory => FsNodeType.Directory,
            Ext4Inode.ModeBits.Symlink => FsNodeType.Symlink,
            Ext4Inode.ModeBits.CharDevice => FsNodeType.CharDevice,
            Ext4Inode.ModeBits.BlockDevice => FsNodeType.BlockDevice,
            Ext4Inode.ModeBits.Fifo => FsNodeType.Fifo,
            Ext4Inode.ModeBits.Socket => FsNodeType.Socket,
            _ => throw MalformedDataException.Field(structure, offset + Ext4Inode.Offsets.Mode, "i_mode file type", $"0x{inode.FileType:X}", "one of S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK"),
        };
        if (type is FsNodeType.Regular or FsNodeType.Directory or FsNodeType.Symlink)
        {
            long max = MaxFileBytes(inode);
            if (inode.SizeInBytes > max)
                throw MalformedDataException.Field(structure, offset + Ext4Inode.Offsets.SizeHigh, "i_size", inode.SizeInBytes,
                    $"at most {max} ({(inode.HasInlineData ? "inline data" : inode.HasExtents ? "extent-mapped" : "block-mapped")}, {_blockSize}-byte blocks)");
            if (type == FsNodeType.Directory && inode.SizeInBytes > Limits.MaxDirectoryBytes)
                throw MalformedDataException.Field(structure, offset + Ext4Inode.Offsets.SizeLo, "directory i_size", inode.SizeInBytes, $"at most {Limits.MaxDirectoryBytes}");
            if (type == FsNodeType.Symlink && inode.SizeInBytes > Limits.MaxSymlinkBytes)
                throw MalformedDataException.Field(structure, offset + Ext4Inode.Offsets.SizeLo, "symlink i_size", inode.SizeInBytes, $"at most {Limits.MaxSymlinkBytes}");
        }
        return new FsNode(ino, type, inode.SizeInBytes, inode.Mode, inode.Uid, inode.Gid, inode.LinksCount, inode.ModifiedTime,
            new ExtNode(ino, inode));
    }

    /// <summary>The largest i_size the inode's mapping can address.</summary>
    private long MaxFileBytes(Ext4Inode inode)
    {
        if (inode.HasInlineData) return Ext4Inode.BlockFieldSize + inode.Raw.Length;
        if (inode.HasExtents) return (1L << 32) * _blockSize; // ee_block is 32 bits
        long p = _blockSize / 4;
        Int128 blocks = Limits.DirectBlocks + p + (Int128)p * p + (Int128)p * p * p;
        Int128 bytes = blocks * _blockSize;
        return bytes > long.MaxValue ? long.MaxValue : (long)bytes;
    }

    // ---------------------------------------------------------------- block mapping

    /// <summary>Maps logical block <paramref name="logical"/> to a run of physical blocks, or a run of zeros.</summary>
    private BlockRun Map(ExtNode node, long logical, ref IndirectCache cache) =>
        node.Inode.HasExtents ? MapExtent(node, logical) : MapIndirect(node, logical, ref cache);

    private void CheckPhysical(ulong start, ulong count, string structure, long offset, string field)
    {
        var sb = Superblock;
        // ext4_inode_block_valid: the range must lie after the first data block and inside s_blocks_count.
        if (start <= sb.FirstDataBlock || start >= sb.BlocksCount || count > sb.BlocksCount - start)
            throw new MalformedDataException(structure, offset,
                $"{field} points to blocks {start}..{start + count - 1}; expected within {sb.FirstDataBlock + 1}..{sb.BlocksCount - 1} (past the volume)");
    }

    private BlockRun MapExtent(ExtNode node, long logical)
    {
        const long logicalSpace = 1L << 32;
        if (logical >= logicalSpace) return new BlockRun(0, 1, true);
        var inode = node.Inode;
        ReadOnlySpan<byte> data = inode.Block.Span;
        long dataOffset = inode.BlockFieldOffset;
        var header = Ext4ExtentHeader.Parse(data, dataOffset);
        long limit = logicalSpace; // exclusive end of what the current node covers
        Span<ulong> path = stackalloc ulong[Ext4ExtentHeader.MaxDepth + 1];
        int pathLength = 0;
        byte[]? buffer = null;
        while (true)
        {
            if (header.Depth == 0)
            {
                for (int i = 0; i < header.Entries; i++)
                {
                    int at = Ext4ExtentHeader.Size + i * Ext4Extent.Size;
                    var e = Ext4Extent.Parse(data.Slice(at, Ext4Extent.Size), dataOffset + at);
                    if (logical < e.LogicalBlock) return new BlockRun(0, Math.Max(1, Math.Min(e.LogicalBlock, limit) - logical), true);
                    long end = (long)e.LogicalBlock + e.Length;
                    if (logical < end)
                    {
                        CheckPhysical(e.Start, e.Length, "ext4 extent", e.ImageOffset, "ee_start");
                        long skip = logical - e.LogicalBlock;
                        return new BlockRun(e.Start + (ulong)skip, end - logical, e.Uninitialized);
                    }
                }
                return new BlockRun(0, Math.Max(1, limit - logical), true);
            }

            int chosen = -1;
            for (int i = 0; i < header.Entries; i++)
            {
                int at = Ext4ExtentHeader.Size + i * Ext4ExtentIndex.Size;
                uint first = BinaryPrimitives.ReadUInt32LittleEndian(data[at..]);
                if (first > logical)
                {
                    if (chosen < 0) return new BlockRun(0, Math.Max(1, Math.Min(first, limit) - logical), true);
                    limit = Math.Min(limit, first);
                    break;
                }
                chosen = i;
            }
            if (chosen < 0) return new BlockRun(0, Math.Max(1, limit - logical), true);
            if (limit <= logical) limit = logical + 1;
            int indexAt = Ext4ExtentHeader.Size + chosen * Ext4ExtentIndex.Size;
            var index = Ext4ExtentIndex.Parse(data.Slice(indexAt, Ext4ExtentIndex.Size), dataOffset + indexAt);
            CheckPhysical(index.Leaf, 1, "ext4 extent index", index.ImageOffset, "ei_leaf");
            if (path[..pathLength].Contains(index.Leaf))
                throw new MalformedDataException("ext4 extent index", index.ImageOffset, $"ei_leaf {index.Leaf} cycles back to a node already on the path");
            path[pathLength++] = index.Leaf;

            buffer ??= new byte[_blockSize];
            long childOffset = (long)index.Leaf * _blockSize;
            _volume.ReadExactly(childOffset, buffer);
            var child = Ext4ExtentHeader.Parse(buffer, childOffset);
            if (child.Depth != header.Depth - 1)
                throw MalformedDataException.Field("ext4 extent header", childOffset + Ext4ExtentHeader.Offsets.Depth, "eh_depth", child.Depth, $"{header.Depth - 1} (one less than its parent)");
            header = child;
            data = buffer;
            dataOffset = childOffset;
        }
    }

    /// <summary>The indirect blocks last read at each level, so sequential reads fetch each one once.</summary>
    private struct IndirectCache
    {
        public ulong Block1, Block2, Block3;
        public byte[]? Data1, Data2, Data3;

        public byte[] Get(int level, ulong block, IBlockReader volume, int blockSize)
        {
            ref ulong b = ref level == 1 ? ref Block1 : ref level == 2 ? ref Block2 : ref Block3;
            ref byte[]? d = ref level == 1 ? ref Data1 : ref level == 2 ? ref Data2 : ref Data3;
            if (d is null || b != block)
            {
                d ??= new byte[blockSize];
                b = 0;
                volume.ReadExactly(checked((long)block * blockSize), d);
                b = block;
            }
            return d;
        }
    }

    private BlockRun MapIndirect(ExtNode node, long logical, ref IndirectCache cache)
    {
        var inode = node.Inode;
        var iblock = inode.Block.Span;
        string structure = $"ext4 inode {node.Number}";
        if (logical < Limits.DirectBlocks)
        {
            int i = (int)logical;
            uint ptr = BinaryPrimitives.ReadUInt32LittleEndian(iblock[(i * 4)..]);
            int count = 1;
            while (i + count < Limits.DirectBlocks)
            {
                uint next = BinaryPrimitives.ReadUInt32LittleEndian(iblock[((i + count) * 4)..]);
                if (ptr == 0 ? next != 0 : next != ptr + (uint)count) break;
                count++;
            }
            if (ptr == 0) return new BlockRun(0, count, true);
            CheckPhysical(ptr, (ulong)count, structure, inode.BlockFieldOffset + i * 4, "i_block[" + i + "]");
            return new BlockRun(ptr, count, false);
        }

        long p = _blockSize / 4;
        long rel = logical - Limits.DirectBlocks;
        long span = p;
        int levels = 1;
        while (rel >= span)
        {
            rel -= span;
            if (++levels > 3) return new BlockRun(0, 1, true);
            span *= p;
        }
        int rootIndex = Limits.DirectBlocks + levels - 1;
        ulong pointer = BinaryPrimitives.ReadUInt32LittleEndian(iblock[(rootIndex * 4)..]);
        long pointerOffset = inode.BlockFieldOffset + rootIndex * 4;
        string field = "i_block[" + rootIndex + "]";
        for (int level = levels; level >= 1; level--)
        {
            if (pointer == 0) return new BlockRun(0, span - rel, true);
            CheckPhysical(pointer, 1, structure, pointerOffset, field);
            long childSpan = span / p;
            int slot = (int)(rel / childSpan);
            var block = cache.Get(level, pointer, _volume, _blockSize);
            long blockOffset = (long)pointer * _blockSize;
            pointerOffset = blockOffset + slot * 4;
            structure = "ext4 indirect block";
            field = "block pointer " + slot;
            ulong next = BinaryPrimitives.ReadUInt32LittleEndian(block.AsSpan(slot * 4));
            rel %= childSpan;
            span = childSpan;
            if (level == 1)
            {
                // Extend over neighbouring pointers that continue the same run (or the same hole).
                int count = 1;
                while (slot + count < p)
                {
                    uint n = BinaryPrimitives.ReadUInt32LittleEndian(block.AsSpan((slot + count) * 4));
                    if (next == 0 ? n != 0 : n != next + (ulong)count) break;
                    count++;
                }
                if (next == 0) return new BlockRun(0, count, true);
                CheckPhysical(next, (ulong)count, structure, pointerOffset, field);
                return new BlockRun(next, count, false);
            }
            pointer = next;
        }
        return new BlockRun(0, 1, true);
    }

    // ---------------------------------------------------------------- file data

    public int Read(FsNode file, long offset, Span<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        var node = Node(file);
        if (file.Type is not (FsNodeType.Regular or FsNodeType.Directory or FsNodeType.Symlink)) return 0;
        long size = node.Inode.SizeInBytes;
        if (offset >= size || destination.IsEmpty) return 0;
        int want = (int)Math.Min(destination.Length, size - offset);
        if (node.Inode.HasInlineData)
        {
            ReadInline(node, offset, destination[..want]);
            return want;
        }
        if (file.Type == FsNodeType.Symlink && IsFastSymlink(node.Inode))
        {
            node.Inode.Block.Span.Slice((int)offset, want).CopyTo(destination);
            return want;
        }
        var cache = default(IndirectCache);
        int done = 0;
        long pos = offset;
        while (done < want)
        {
            long logical = pos / _blockSize;
            int inBlock = (int)(pos % _blockSize);
            var run = Map(node, logical, ref cache);
            long runBytes = run.Count * _blockSize - inBlock;
            int n = (int)Math.Min(runBytes, want - done);
            var slice = destination.Slice(done, n);
            if (run.Zero) slice.Clear();
            else _volume.ReadExactly(checked((long)run.Physical * _blockSize + inBlock), slice);
            done += n;
            pos += n;
        }
        return done;
    }

    private static bool IsFastSymlink(Ext4Inode inode) =>
        !inode.HasInlineData && inode.SizeInBytes < Ext4Inode.BlockFieldSize; // ext4_inode_is_fast_symlink

    private static void ReadInline(ExtNode node, long offset, Span<byte> destination)
    {
        var inode = node.Inode;
        var head = inode.Block.Span;
        var tail = InlineXattrValue(node, out _);
        if (inode.SizeInBytes > head.Length + tail.Length)
            throw MalformedDataException.Field($"ext4 inode {node.Number}", inode.ImageOffset + Ext4Inode.Offsets.SizeLo, "i_size", inode.SizeInBytes,
                $"at most {head.Length + tail.Length} (i_block plus the system.data attribute)");
        int pos = (int)offset;
        int done = 0;
        if (pos < head.Length)
        {
            int n = Math.Min(head.Length - pos, destination.Length);
            head.Slice(pos, n).CopyTo(destination);
            done = n;
            pos += n;
        }
        if (done < destination.Length) tail.Slice(pos - head.Length, destination.Length - done).CopyTo(destination[done..]);
    }

    /// <summary>The value of the in-inode "system.data" attribute (inline data past i_block), or empty.</summary>
    private static ReadOnlySpan<byte> InlineXattrValue(ExtNode node, out long valueOffset)
    {
        var inode = node.Inode;
        var raw = inode.Raw.Span;
        valueOffset = 0;
        int area = Ext4Inode.GoodOldSize + inode.ExtraIsize;
        if (raw.Length < area + 4 || BinaryPrimitives.ReadUInt32LittleEndian(raw[area..]) != XattrMagic) return default;
        int first = area + 4;
        int pos = first;
        string structure = $"ext4 inode {node.Number} extended attribute";
        while (pos + 4 <= raw.Length && BinaryPrimitives.ReadUInt32LittleEndian(raw[pos..]) != 0)
        {
            var r = new FieldReader(raw[pos..], inode.ImageOffset + pos, structure);
            byte nameLen = r.U8(0);
            byte nameIndex = r.U8(1);
            ushort valueOffs = r.U16(2);
            uint valueInum = r.U32(4);
            uint valueSize = r.U32(8);
            var name = r.Bytes(XattrEntryHeaderSize, nameLen);
            if (nameIndex == XattrIndexSystem && name.SequenceEqual("data"u8))
            {
                if (valueInum != 0)
                    throw r.FieldError(4, "e_value_inum", valueInum, "0 (system.data lives inside the inode)");
                long start = (long)first + valueOffs;
                if (start + valueSize > raw.Length)
                    throw r.FieldError(2, "e_value_offs + e_value_size", start + valueSize - first, $"at most {raw.Length - first} (the in-inode attribute area)");
                valueOffset = inode.ImageOffset + start;
                return raw.Slice((int)start, (int)valueSize);
            }
            pos += (XattrEntryHeaderSize + nameLen + 3) & ~3;
        }
        return default;
    }

    public string ReadLink(FsNode symlink)
    {
        var node = Node(symlink);
        if (symlink.Type != FsNodeType.Symlink) throw new IOException($"inode {node.Number} is not a symbolic link");
        var bytes = new byte[node.Inode.SizeInBytes]; // bounded by Limits.MaxSymlinkBytes at load
        int n = Read(symlink, 0, bytes);
        return Encoding.UTF8.GetString(bytes, 0, n);
    }

    // ---------------------------------------------------------------- directories

    /// <summary>Visits every live entry (inode != 0) of <paramref name="dir"/>, in on-disk order, until <paramref name="visit"/> returns false.</summary>
    private void ForEachEntry(FsNode dir, Func<Ext4DirEntry, bool> visit)
    {
        var node = Node(dir);
        if (dir.Type != FsNodeType.Directory) throw new IOException($"inode {node.Number} is not a directory");
        bool fileType = Superblock.HasIncompat(Ext4Features.IncompatFiletype);
        int count = 0;
        if (node.Inode.HasInlineData)
        {
            // i_block: 4-byte parent inode, then entries; the system.data value holds more entries.
            var head = node.Inode.Block.Span[4..];
            if (!VisitRegion(head, node.Inode.BlockFieldOffset + 4, fileType, visit, ref count)) return;
            var tail = InlineXattrValue(node, out long tailOffset);
            if (tail.Length > 0) VisitRegion(tail, tailOffset, fileType, visit, ref count);
            return;
        }
        long blocks = (node.Inode.SizeInBytes + _blockSize - 1) / _blockSize;
        var cache = default(IndirectCache);
        var buffer = new byte[_blockSize];
        long logical = 0;
        while (logical < blocks)
        {
            var run = Map(node, logical, ref cache);
            if (run.Zero)
            {
                logical += run.Count;
                continue;
            }
            long end = Math.Min(blocks, logical + run.Count);
            for (long b = logical; b < end; b++)
            {
                long at = checked((long)(run.Physical + (ulong)(b - logical)) * _blockSize);
                _volume.ReadExactly(at, buffer);
                if (!VisitRegion(buffer, at, fileType, visit, ref count)) return;
            }
            logical = end;
        }
    }

    private bool VisitRegion(ReadOnlySpan<byte> region, long regionOffset, bool fileType, Func<Ext4DirEntry, bool> visit, ref int count)
    {
        int pos = 0;
        while (pos < region.Length)
        {
            var e = Ext4DirEntry.Parse(region[pos..], regionOffset + pos, fileType, _blockSize);
            pos += e.RecLen; // at least 12: the walk always advances and ends at the region's end
            if (e.Inode == 0) continue;
            if (++count > Limits.MaxDirectoryEntries)
                throw new MalformedDataException("ext4 directory entry", e.ImageOffset, $"the directory has more than {Limits.MaxDirectoryEntries} entries");
            if (!visit(e)) return false;
        }
        return true;
    }

    public IReadOnlyList<FsDirEntry> ListDirectory(FsNode directory)
    {
        var result = new List<FsDirEntry>();
        bool fileType = Superblock.HasIncompat(Ext4Features.IncompatFiletype);
        ForEachEntry(directory, e =>
        {
            var name = e.Name.Span;
            if (name.SequenceEqual("."u8) || name.SequenceEqual(".."u8)) return true;
            if (!ValidInodeNumber(e.Inode))
                throw MalformedDataException.Field("ext4 directory entry", e.ImageOffset, "inode", e.Inode, $"2 or {Superblock.FirstIno}..{Superblock.InodesCount}");
            var type = fileType ? EntryType(e.FileType) : LoadNode(e.Inode, "ext4 directory entry", e.ImageOffset, checkRange: true).Type;
            result.Add(new FsDirEntry(Encoding.UTF8.GetString(name), e.Inode, type));
            return true;
        });
        return result;
    }

    private static FsNodeType EntryType(byte fileType) => fileType switch
    {
        Ext4DirEntry.FileTypes.Regular => FsNodeType.Regular,
        Ext4DirEntry.FileTypes.Directory => FsNodeType.Directory,
        Ext4DirEntry.FileTypes.CharDevice => FsNodeType.CharDevice,
        Ext4DirEntry.FileTypes.BlockDevice => FsNodeType.BlockDevice,
        Ext4DirEntry.FileTypes.Fifo => FsNodeType.Fifo,
        Ext4DirEntry.FileTypes.Socket => FsNodeType.Socket,
        Ext4DirEntry.FileTypes.Symlink => FsNodeType.Symlink,
        _ => FsNodeType.Unknown,
    };

    public FsNode? Lookup(FsNode directory, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var wanted = Encoding.UTF8.GetBytes(name);
        if (wanted.Length == 0 || wanted.Length > Ext4DirEntry.MaxNameLen || wanted.AsSpan().IndexOfAny((byte)'/', (byte)0) >= 0)
        {
            Node(directory);
            return null;
        }
        // The hash tree finds most names in two or three block reads; when it is absent, unusable or silent
        // (hash collisions spanning leaves), the linear scan GRUB always does gives the answer.
        var found = HtreeFind(directory, wanted);
        if (found is null)
        {
            ForEachEntry(directory, e =>
            {
                if (!e.Name.Span.SequenceEqual(wanted)) return true;
                found = e;
                return false;
            });
        }
        return found is null ? null : LoadNode(found.Inode, "ext4 directory entry", found.ImageOffset, checkRange: true);
    }

    /// <summary>Looks a name up through the htree index only (tests use it to prove the index path works).</summary>
    internal FsNode? HtreeLookup(FsNode directory, string name)
    {
        var found = HtreeFind(directory, Encoding.UTF8.GetBytes(name));
        return found is null ? null : LoadNode(found.Inode, "ext4 directory entry", found.ImageOffset, checkRange: true);
    }

    private const int DxRootInfoOffset = 0x18;
    private const int DxRootInfoLength = 8;
    private const int DxNodeEntriesOffset = 8;
    private const int DxEntrySize = 8;
    private const uint DxBlockMask = 0x0FFFFFFF;

    /// <summary>
    /// dx_probe: walks the hash tree (ext4 disk layout, "Hash Tree Directories") from the dx_root in block 0 to
    /// the leaf block whose hash range holds the name, and scans that leaf. Null when not found there.
    /// </summary>
    private Ext4DirEntry? HtreeFind(FsNode directory, byte[] name)
    {
        var node = Node(directory);
        if (directory.Type != FsNodeType.Directory) throw new IOException($"inode {node.Number} is not a directory");
        var inode = node.Inode;
        var sb = Superblock;
        if ((inode.Flags & Ext4Inode.FlagBits.Index) == 0 || inode.HasInlineData || !sb.HasCompat(Ext4Features.CompatDirIndex)) return null;
        long blocks = (inode.SizeInBytes + _blockSize - 1) / _blockSize;
        var cache = default(IndirectCache);
        var buffer = new byte[_blockSize];
        if (!ReadDirBlock(node, 0, blocks, buffer, ref cache, out _)) return null;
        if (BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(DxRootInfoOffset)) != 0) return null; // reserved_zero
        byte version = buffer[DxRootInfoOffset + 4];
        byte infoLength = buffer[DxRootInfoOffset + 5];
        byte levels = buffer[DxRootInfoOffset + 6];
        int maxLevels = sb.HasIncompat(Ext4Features.IncompatLargeDir) ? 3 : 2; // ext4_dir_htree_level
        if (infoLength != DxRootInfoLength || levels >= maxLevels) return null;
        if (version <= Ext4DirHash.Tea && (sb.Flags & Ext4Superblock.FlagUnsignedHash) != 0) version += 3;
        if (Ext4DirHash.MajorHash(name, version, sb.HashSeed.Span) is not uint hash) return null;
        bool fileType = sb.HasIncompat(Ext4Features.IncompatFiletype);
        int entriesAt = DxRootInfoOffset + infoLength;
        for (int level = 0; level <= levels; level++)
        {
            if (DxChoose(buffer, entriesAt, hash) is not uint next) return null;
            if (!ReadDirBlock(node, next, blocks, buffer, ref cache, out long at)) return null;
            if (level < levels)
            {
                // An interior dx_node hides behind one empty entry spanning the block.
                if (BinaryPrimitives.ReadUInt32LittleEndian(buffer) != 0) return null;
                entriesAt = DxNodeEntriesOffset;
                continue;
            }
            Ext4DirEntry? found = null;
            int count = 0;
            VisitRegion(buffer, at, fileType, e =>
            {
                if (!e.Name.Span.SequenceEqual(name)) return true;
                found = e;
                return false;
            }, ref count);
            return found;
        }
        return null;
    }

    /// <summary>The block of the last dx_entry whose hash is at most <paramref name="hash"/>; null when count/limit are inconsistent.</summary>
    private static uint? DxChoose(ReadOnlySpan<byte> block, int at, uint hash)
    {
        if (at + 4 > block.Length) return null;
        int limit = BinaryPrimitives.ReadUInt16LittleEndian(block[at..]);
        int count = BinaryPrimitives.ReadUInt16LittleEndian(block[(at + 2)..]);
        if (count == 0 || count > limit || at + limit * DxEntrySize > block.Length) return null;
        int chosen = 0; // entry 0 carries count/limit instead of a hash and covers everything below entry 1
        for (int i = 1; i < count; i++)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(block[(at + i * DxEntrySize)..]) > hash) break;
            chosen = i;
        }
        return BinaryPrimitives.ReadUInt32LittleEndian(block[(at + chosen * DxEntrySize + 4)..]) & DxBlockMask;
    }

    /// <summary>Reads logical block <paramref name="logical"/> of a directory; false for a hole or a block past i_size.</summary>
    private bool ReadDirBlock(ExtNode node, long logical, long blocks, byte[] buffer, ref IndirectCache cache, out long offset)
    {
        offset = 0;
        if (logical >= blocks) return false;
        var run = Map(node, logical, ref cache);
        if (run.Zero) return false;
        offset = checked((long)run.Physical * _blockSize);
        _volume.ReadExactly(offset, buffer);
        return true;
    }

    public FsNode Parent(FsNode directory)
    {
        var node = Node(directory);
        if (directory.Type != FsNodeType.Directory) throw new IOException($"inode {node.Number} is not a directory");
        if (node.Number == Limits.RootInode) return Root;
        if (node.Inode.HasInlineData)
        {
            uint parent = BinaryPrimitives.ReadUInt32LittleEndian(node.Inode.Block.Span);
            return LoadNode(parent, $"ext4 inode {node.Number} inline directory", node.Inode.BlockFieldOffset, checkRange: true);
        }
        Ext4DirEntry? dotdot = null;
        ForEachEntry(directory, e =>
        {
            if (!e.Name.Span.SequenceEqual(".."u8)) return true;
            dotdot = e;
            return false;
        });
        if (dotdot is null)
            throw new MalformedDataException($"ext4 inode {node.Number}", node.Inode.ImageOffset, "the directory has no \"..\" entry");
        var result = LoadNode(dotdot.Inode, "ext4 directory entry", dotdot.ImageOffset, checkRange: true);
        if (result.Type != FsNodeType.Directory)
            throw new MalformedDataException("ext4 directory entry", dotdot.ImageOffset, $"\"..\" refers to inode {dotdot.Inode}, which is not a directory");
        return result;
    }
}
