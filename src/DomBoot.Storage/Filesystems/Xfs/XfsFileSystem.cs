using System.Text;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Filesystems.Xfs;

/// <summary>
/// A read-only XFS v4/v5 filesystem (XFS Algorithms &amp; Data Structures; Linux fs/xfs/libxfs/xfs_format.h,
/// xfs_da_format.h). Reads the primary superblock, inodes on demand, extent lists and bmap btrees, short-form,
/// block, leaf and node directories, local and remote symlinks. v5 metadata checksums (superblock, inodes,
/// directory data blocks, bmap btree blocks, remote symlink blocks) are verified as the kernel's verifiers do;
/// a mismatch is a <see cref="MalformedDataException"/> at the crc field. Realtime files are refused on read.
/// </summary>
public sealed class XfsFileSystem : IFileSystem
{
    private readonly XfsVolume _vol;

    internal static class SymlinkOffsets
    {
        public const int sl_magic = 0;
        public const int sl_offset = 4;
        public const int sl_bytes = 8;
        public const int sl_crc = 12;
        public const int sl_owner = 32;
        public const int HeaderSize = 56;
        public const uint Magic = 0x58534C4D; // "XSLM"
    }

    private XfsFileSystem(XfsVolume vol)
    {
        _vol = vol;
        Root = NodeOf(LoadInode(vol.Superblock.RootIno, XfsSuperblock.Offsets.sb_rootino, "XFS superblock"));
        if (Root.Type != FsNodeType.Directory)
            throw MalformedDataException.Field("XFS superblock", XfsSuperblock.Offsets.sb_rootino, "sb_rootino", vol.Superblock.RootIno, "a directory inode");
    }

    internal XfsSuperblock Superblock => _vol.Superblock;

    public string TypeName => "xfs";
    public string? Label => Superblock.Label.Length == 0 ? null : Superblock.Label;
    public string? Uuid => Superblock.UuidText;
    public FsNode Root { get; }

    /// <summary>True when <paramref name="bytes"/> (the volume's first sector) starts with "XFSB".</summary>
    public static bool HasMagic(ReadOnlySpan<byte> bytes) => XfsSuperblock.HasMagic(bytes);

    /// <summary>Reads and checks the primary superblock and the root inode.</summary>
    public static XfsFileSystem Open(IBlockReader volume)
    {
        ArgumentNullException.ThrowIfNull(volume);
        if (volume.Length < XfsSuperblock.Offsets.Size)
            throw new TruncatedDataException("XFS superblock", 0, XfsSuperblock.Offsets.Size, volume.Length);
        var head = new byte[512];
        volume.ReadExactly(0, head.AsSpan(0, (int)Math.Min(512, volume.Length)));
        int sectSize = 512;
        if (XfsSuperblock.HasMagic(head))
        {
            int s = (head[XfsSuperblock.Offsets.sb_sectsize] << 8) | head[XfsSuperblock.Offsets.sb_sectsize + 1];
            if (s > 512 && s <= XfsSuperblock.Limits.MaxSectSize && (s & (s - 1)) == 0 && s <= volume.Length) sectSize = s;
        }
        var sector = head;
        if (sectSize > 512)
        {
            sector = new byte[sectSize];
            volume.ReadExactly(0, sector);
        }
        var sb = XfsSuperblock.Parse(sector, 0);
        return new XfsFileSystem(new XfsVolume(volume, sb));
    }

    internal XfsDinode LoadInode(ulong ino, long refOffset, string refStructure)
    {
        var sb = Superblock;
        if (!sb.IsValidIno(ino))
            throw new MalformedDataException(refStructure, refOffset, $"inode number {ino} is out of range ({sb.AgCount} AGs of {sb.AgBlocks} blocks)");
        long at = sb.InodeByteOffset(ino);
        if (at > _vol.Length - sb.InodeSize)
            throw new MalformedDataException(refStructure, refOffset, $"inode {ino} at byte {at} is past the end of the {_vol.Length}-byte volume");
        var buf = new byte[sb.InodeSize];
        _vol.Read(at, buf);
        return XfsDinode.Parse(buf, at, ino, sb);
    }

    private FsNode NodeOf(XfsDinode inode)
    {
        var handle = new NodeHandle(inode, new Lazy<XfsExtentMap>(() => XfsExtentMap.Load(_vol, inode)));
        return new FsNode(inode.Ino, inode.NodeType, (long)inode.Size, inode.Mode, inode.Uid, inode.Gid, inode.NLink, inode.MTime, handle);
    }

    internal sealed record NodeHandle(XfsDinode Inode, Lazy<XfsExtentMap> Map);

    private static NodeHandle HandleOf(FsNode node, FsNodeType expected)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (node.Handle is not NodeHandle h) throw new ArgumentException("the node does not belong to an XFS filesystem", nameof(node));
        if (expected != FsNodeType.Unknown && h.Inode.NodeType != expected)
            throw new IOException($"XFS inode {h.Inode.Ino} is a {h.Inode.NodeType}, not a {expected}");
        return h;
    }

    /// <summary>The extent map of a node's data fork (for inspection and tests).</summary>
    internal static IReadOnlyList<XfsBmbtRecord> ExtentsOf(FsNode node) => HandleOf(node, FsNodeType.Unknown).Map.Value.Extents;

    internal static XfsExtentMap ExtentsMapOf(FsNode node) => HandleOf(node, FsNodeType.Unknown).Map.Value;

    internal XfsVolume Volume => _vol;

    internal static XfsDinode InodeOf(FsNode node) => ((NodeHandle)node.Handle!).Inode;

    public IReadOnlyList<FsDirEntry> ListDirectory(FsNode directory)
    {
        var h = HandleOf(directory, FsNodeType.Directory);
        var list = new List<FsDirEntry>();
        XfsDirectory.Walk(_vol, h.Inode, () => h.Map.Value, (name, ino, ft, at) =>
        {
            if (IsDot(name)) return false;
            string text = CheckName(name, at, h.Inode.Ino);
            if (!Superblock.IsValidIno(ino))
                throw new MalformedDataException($"XFS inode {h.Inode.Ino} directory entry", at, $"inode number {ino} is out of range");
            FsNodeType type = Superblock.HasFtype ? XfsDirectory.TypeOfFtype(ft) : LoadInode(ino, at, $"XFS inode {h.Inode.Ino} directory entry").NodeType;
            list.Add(new FsDirEntry(text, ino, type));
            return false;
        });
        return list;
    }

    public FsNode? Lookup(FsNode directory, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var h = HandleOf(directory, FsNodeType.Directory);
        if (name == ".") return directory;
        if (name == "..") return Parent(directory);
        var want = Encoding.UTF8.GetBytes(name);
        bool ci = Superblock.HasAsciiCi;
        ulong found = 0;
        long foundAt = -1;
        XfsDirectory.Walk(_vol, h.Inode, () => h.Map.Value, (entry, ino, _, at) =>
        {
            if (!(ci ? AsciiEqualsIgnoreCase(entry, want) : entry.SequenceEqual(want))) return false;
            found = ino;
            foundAt = at;
            return true;
        });
        return foundAt < 0 ? null : NodeOf(LoadInode(found, foundAt, $"XFS inode {h.Inode.Ino} directory entry"));
    }

    public FsNode Parent(FsNode directory)
    {
        var h = HandleOf(directory, FsNodeType.Directory);
        if (h.Inode.Ino == Superblock.RootIno) return Root;
        ulong parent;
        long at;
        if (h.Inode.Format == XfsDinodeFormat.Local)
        {
            (parent, at) = XfsDirectory.ShortFormParent(h.Inode);
        }
        else
        {
            ulong p = 0;
            long pAt = -1;
            XfsDirectory.Walk(_vol, h.Inode, () => h.Map.Value, (entry, ino, _, off) =>
            {
                if (entry.Length != 2 || entry[0] != (byte)'.' || entry[1] != (byte)'.') return false;
                p = ino;
                pAt = off;
                return true;
            });
            if (pAt < 0) throw new MalformedDataException($"XFS inode {h.Inode.Ino} directory", h.Inode.ImageOffset, "has no \"..\" entry");
            (parent, at) = (p, pAt);
        }
        var node = NodeOf(LoadInode(parent, at, $"XFS inode {h.Inode.Ino} directory"));
        if (node.Type != FsNodeType.Directory)
            throw new MalformedDataException($"XFS inode {h.Inode.Ino} directory", at, $"parent inode {parent} is a {node.Type}, not a directory");
        return node;
    }

    public int Read(FsNode file, long offset, Span<byte> destination)
    {
        var h = HandleOf(file, FsNodeType.Regular);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        var inode = h.Inode;
        if (inode.IsRealtime)
            throw new UnsupportedFeatureException($"XFS inode {inode.Ino}: realtime files (di_flags REALTIME, data on the realtime device) are not supported");
        if ((ulong)offset >= inode.Size || destination.IsEmpty) return 0;
        int total = (int)Math.Min((ulong)destination.Length, inode.Size - (ulong)offset);
        var map = h.Map.Value;
        var sb = Superblock;
        int blockLog = sb.BlockLog;
        int done = 0;
        while (done < total)
        {
            ulong pos = (ulong)offset + (ulong)done;
            ulong fileBlock = pos >> blockLog;
            ulong inBlock = pos & (sb.BlockSize - 1);
            int idx = map.Find(fileBlock);
            int chunk;
            if (idx < 0)
            {
                int next = ~idx;
                ulong nextStart = next < map.Extents.Count ? map.Extents[next].StartOff : ulong.MaxValue;
                ulong holeEnd = nextStart > (ulong.MaxValue >> blockLog) ? ulong.MaxValue : nextStart << blockLog; // saturate: 54-bit offsets
                chunk = (int)Math.Min((ulong)(total - done), holeEnd - pos);
                destination.Slice(done, chunk).Clear();
            }
            else
            {
                var e = map.Extents[idx];
                ulong extentEnd = e.EndOff << blockLog;
                chunk = (int)Math.Min((ulong)(total - done), extentEnd - pos);
                if (e.Unwritten)
                {
                    destination.Slice(done, chunk).Clear();
                }
                else
                {
                    ulong linear = sb.FsbToLinear(e.StartBlock, e.BlockCount)!.Value + (fileBlock - e.StartOff);
                    long at = checked(_vol.BlockOffset(linear, e.ImageOffset, "XFS extent record") + (long)inBlock);
                    _vol.Read(at, destination.Slice(done, chunk));
                }
            }
            done += chunk;
        }
        return total;
    }

    public string ReadLink(FsNode symlink)
    {
        var h = HandleOf(symlink, FsNodeType.Symlink);
        var inode = h.Inode;
        int size = (int)inode.Size;
        if (inode.Format == XfsDinodeFormat.Local) return Encoding.UTF8.GetString(inode.DataFork.AsSpan(0, size));
        if (size == 0) return "";
        var sb = Superblock;
        var map = h.Map.Value;
        var target = new byte[size];
        var block = new byte[sb.BlockSize];
        int done = 0;
        for (ulong fileBlock = 0; done < size; fileBlock++)
        {
            ulong linear = map.Map(sb, fileBlock)
                ?? throw new MalformedDataException($"XFS inode {inode.Ino} symlink", inode.ImageOffset, $"remote symlink block {fileBlock} is unmapped");
            int idx = map.Find(fileBlock);
            long at = _vol.BlockOffset(linear, map.Extents[idx].ImageOffset, "XFS extent record");
            _vol.Read(at, block);
            int payload = block.Length;
            int start = 0;
            if (sb.IsV5)
            {
                var r = new FieldReader(block, at, $"XFS inode {inode.Ino} remote symlink block");
                uint magic = r.U32BE(SymlinkOffsets.sl_magic);
                if (magic != SymlinkOffsets.Magic) throw r.FieldError(SymlinkOffsets.sl_magic, "sl_magic", FieldReader.Hex(magic), "0x58534C4D (\"XSLM\")");
                uint stored = XfsCrc32c.Stored(block, SymlinkOffsets.sl_crc);
                uint computed = XfsCrc32c.Compute(block, SymlinkOffsets.sl_crc);
                if (stored != computed) throw r.FieldError(SymlinkOffsets.sl_crc, "sl_crc", FieldReader.Hex(stored), $"{FieldReader.Hex(computed)} (crc32c of the block)");
                ulong owner = r.U64BE(SymlinkOffsets.sl_owner);
                if (owner != inode.Ino) throw r.FieldError(SymlinkOffsets.sl_owner, "sl_owner", owner, $"{inode.Ino} (the symlink inode)");
                uint slOffset = r.U32BE(SymlinkOffsets.sl_offset);
                if (slOffset != (uint)done) throw r.FieldError(SymlinkOffsets.sl_offset, "sl_offset", slOffset, $"{done}");
                start = SymlinkOffsets.HeaderSize;
                payload -= start;
                uint slBytes = r.U32BE(SymlinkOffsets.sl_bytes);
                int want = Math.Min(payload, size - done);
                if (slBytes != (uint)want) throw r.FieldError(SymlinkOffsets.sl_bytes, "sl_bytes", slBytes, $"{want}");
            }
            int n = Math.Min(payload, size - done);
            block.AsSpan(start, n).CopyTo(target.AsSpan(done));
            done += n;
        }
        return Encoding.UTF8.GetString(target);
    }

    private static bool IsDot(ReadOnlySpan<byte> name) =>
        (name.Length == 1 && name[0] == (byte)'.') || (name.Length == 2 && name[0] == (byte)'.' && name[1] == (byte)'.');

    private static string CheckName(ReadOnlySpan<byte> name, long at, ulong dirIno)
    {
        if (name.IndexOf((byte)'/') >= 0 || name.IndexOf((byte)0) >= 0)
            throw new MalformedDataException($"XFS inode {dirIno} directory entry", at, $"name {Quote.Bytes(name)} contains '/' or NUL");
        return Encoding.UTF8.GetString(name);
    }

    private static bool AsciiEqualsIgnoreCase(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        if (a.Length != b.Length) return false;
        for (int i = 0; i < a.Length; i++)
        {
            int x = a[i], y = b[i];
            if (x is >= 'A' and <= 'Z') x += 32;
            if (y is >= 'A' and <= 'Z') y += 32;
            if (x != y) return false;
        }
        return true;
    }
}
