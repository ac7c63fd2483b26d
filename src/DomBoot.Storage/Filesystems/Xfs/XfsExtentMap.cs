using System.Buffers.Binary;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Filesystems.Xfs;

/// <summary>
/// The data-fork block map of one inode: the extent list (di_format extents) or the leaves of its bmap btree
/// (di_format btree, root in the inode as struct xfs_bmdr_block), validated, sorted and non-overlapping.
/// </summary>
internal sealed class XfsExtentMap
{
    internal static class Limits
    {
        /// <summary>XFS_BM_MAXLEVELS is at most 9 for any geometry; deeper claims are corrupt.</summary>
        public const int MaxBtreeDepth = 9;
        public const int MaxBtreeBlocks = 1 << 16;
        public const int MaxExtents = 1 << 21;
    }

    /// <summary>Fields of the in-inode btree root (struct xfs_bmdr_block).</summary>
    internal static class RootOffsets
    {
        public const int bb_level = 0;
        public const int bb_numrecs = 2;
        public const int Keys = 4;
    }

    private readonly XfsBmbtRecord[] _extents;

    private XfsExtentMap(XfsBmbtRecord[] extents) => _extents = extents;

    public IReadOnlyList<XfsBmbtRecord> Extents => _extents;

    public static XfsExtentMap Empty { get; } = new([]);

    public static XfsExtentMap Load(XfsVolume vol, XfsDinode inode)
    {
        var list = new List<XfsBmbtRecord>();
        long forkOffset = inode.ImageOffset + inode.DataForkOffset;
        switch (inode.Format)
        {
            case XfsDinodeFormat.Extents:
                for (int i = 0; i < (int)inode.NExtents; i++)
                    Add(vol, list, XfsBmbtRecord.Parse(inode.DataFork.AsSpan(i * XfsBmbtRecord.Size, XfsBmbtRecord.Size), forkOffset + i * XfsBmbtRecord.Size));
                break;
            case XfsDinodeFormat.Btree:
                LoadBtree(vol, inode, list);
                break;
            default:
                return Empty;
        }
        return new XfsExtentMap([.. list]);
    }

    private static void LoadBtree(XfsVolume vol, XfsDinode inode, List<XfsBmbtRecord> list)
    {
        var r = new FieldReader(inode.DataFork, inode.ImageOffset + inode.DataForkOffset, $"XFS inode {inode.Ino} bmap btree root");
        int level = r.U16BE(RootOffsets.bb_level);
        int numRecs = r.U16BE(RootOffsets.bb_numrecs);
        if (level < 1 || level > Limits.MaxBtreeDepth)
            throw r.FieldError(RootOffsets.bb_level, "bb_level", level, $"1..{Limits.MaxBtreeDepth}");
        int maxRecs = (inode.DataForkSize - RootOffsets.Keys) / 16;
        if (numRecs < 1 || numRecs > maxRecs)
            throw r.FieldError(RootOffsets.bb_numrecs, "bb_numrecs", numRecs, $"1..{maxRecs} (pointers fitting the data fork)");
        var visited = new HashSet<ulong>();
        int ptrBase = RootOffsets.Keys + maxRecs * 8;
        for (int i = 0; i < numRecs; i++)
        {
            int at = ptrBase + i * 8;
            Descend(vol, inode.Ino, r.U64BE(at), r.Absolute(at), level - 1, visited, list);
        }
    }

    private static void Descend(XfsVolume vol, ulong ino, ulong fsb, long ptrOffset, int expectLevel, HashSet<ulong> visited, List<XfsBmbtRecord> list)
    {
        var sb = vol.Superblock;
        ulong linear = sb.FsbToLinear(fsb, 1)
            ?? throw new MalformedDataException($"XFS inode {ino} bmap btree", ptrOffset, $"block pointer {fsb} is outside the filesystem");
        if (!visited.Add(fsb))
            throw new MalformedDataException($"XFS inode {ino} bmap btree", ptrOffset, $"block pointer {fsb} revisits a block (cycle)");
        if (visited.Count > Limits.MaxBtreeBlocks)
            throw new MalformedDataException($"XFS inode {ino} bmap btree", ptrOffset, $"more than {Limits.MaxBtreeBlocks} blocks");

        long blockOffset = vol.BlockOffset(linear, ptrOffset, $"XFS inode {ino} bmap btree");
        var buf = new byte[sb.BlockSize];
        vol.Read(blockOffset, buf);
        var hdr = XfsBtreeBlock.Parse(buf, blockOffset, sb, ino);
        var r = new FieldReader(buf, blockOffset, "XFS bmap btree block");
        if (hdr.Level != expectLevel)
            throw r.FieldError(XfsBtreeBlock.Offsets.bb_level, "bb_level", hdr.Level, $"{expectLevel} (one below its parent)");
        int maxRecs = ((int)sb.BlockSize - hdr.HeaderSize) / 16;
        if (hdr.NumRecs < 1 || hdr.NumRecs > maxRecs)
            throw r.FieldError(XfsBtreeBlock.Offsets.bb_numrecs, "bb_numrecs", hdr.NumRecs, $"1..{maxRecs}");
        if (expectLevel == 0)
        {
            for (int i = 0; i < hdr.NumRecs; i++)
            {
                int at = hdr.HeaderSize + i * XfsBmbtRecord.Size;
                Add(vol, list, XfsBmbtRecord.Parse(buf.AsSpan(at, XfsBmbtRecord.Size), blockOffset + at));
            }
            return;
        }
        int ptrBase = hdr.HeaderSize + maxRecs * 8;
        for (int i = 0; i < hdr.NumRecs; i++)
        {
            int at = ptrBase + i * 8;
            Descend(vol, ino, BinaryPrimitives.ReadUInt64BigEndian(buf.AsSpan(at)), blockOffset + at, expectLevel - 1, visited, list);
        }
    }

    private static void Add(XfsVolume vol, List<XfsBmbtRecord> list, XfsBmbtRecord rec)
    {
        const string structure = "XFS extent record";
        if (list.Count >= Limits.MaxExtents)
            throw new MalformedDataException(structure, rec.ImageOffset, $"more than {Limits.MaxExtents} extents in one fork");
        if (rec.BlockCount == 0)
            throw MalformedDataException.Field(structure, rec.ImageOffset, "br_blockcount", 0, "at least 1");
        ulong linear = vol.Superblock.FsbToLinear(rec.StartBlock, rec.BlockCount)
            ?? throw MalformedDataException.Field(structure, rec.ImageOffset, "br_startblock", $"{rec.StartBlock} (+{rec.BlockCount} blocks)", "an extent inside one AG of the filesystem");
        if (checked((long)(linear + rec.BlockCount)) > vol.Length / vol.Superblock.BlockSize)
            throw MalformedDataException.Field(structure, rec.ImageOffset, "br_startblock", $"{rec.StartBlock} (+{rec.BlockCount} blocks)",
                $"an extent inside the {vol.Length}-byte volume");
        if (list.Count > 0 && rec.StartOff < list[^1].EndOff)
            throw MalformedDataException.Field(structure, rec.ImageOffset, "br_startoff", rec.StartOff,
                $"at least {list[^1].EndOff} (extents sorted and not overlapping)");
        list.Add(rec);
    }

    /// <summary>Index of the extent containing <paramref name="fileBlock"/>, or ~(index of the next extent) when in a hole.</summary>
    public int Find(ulong fileBlock)
    {
        int lo = 0, hi = _extents.Length - 1;
        while (lo <= hi)
        {
            int mid = lo + ((hi - lo) >> 1);
            var e = _extents[mid];
            if (fileBlock < e.StartOff) hi = mid - 1;
            else if (fileBlock >= e.EndOff) lo = mid + 1;
            else return mid;
        }
        return ~lo;
    }

    /// <summary>Linear filesystem block of <paramref name="fileBlock"/>, or null in a hole or unwritten extent.</summary>
    public ulong? Map(XfsSuperblock sb, ulong fileBlock)
    {
        int i = Find(fileBlock);
        if (i < 0 || _extents[i].Unwritten) return null;
        var e = _extents[i];
        return sb.FsbToLinear(e.StartBlock, e.BlockCount)!.Value + (fileBlock - e.StartOff);
    }
}
