using DomBoot.Formats.Binary;

namespace DomBoot.Storage.Filesystems.Xfs;

/// <summary>
/// A long-format btree block header as the bmap btree uses it (struct xfs_btree_block, long form; XFS Algorithms
/// &amp; Data Structures, "B+tree Extent List"): "BMAP" (v4, 24 bytes) or "BMA3" (v5, 72 bytes with crc and owner).
/// </summary>
internal sealed record XfsBtreeBlock(uint Magic, ushort Level, ushort NumRecs, ulong Owner, int HeaderSize)
{
    public const uint BmapMagic = 0x424D4150; // "BMAP"
    public const uint Bma3Magic = 0x424D4133; // "BMA3"

    internal static class Offsets
    {
        public const int bb_magic = 0;
        public const int bb_level = 4;
        public const int bb_numrecs = 6;
        public const int bb_owner = 56;
        public const int bb_crc = 64;
        public const int V4HeaderSize = 24;
        public const int V5HeaderSize = 72;
    }

    public static XfsBtreeBlock Parse(ReadOnlySpan<byte> bytes, long imageOffset, XfsSuperblock sb, ulong ownerIno)
    {
        var r = new FieldReader(bytes, imageOffset, "XFS bmap btree block");
        uint want = sb.IsV5 ? Bma3Magic : BmapMagic;
        uint magic = r.U32BE(Offsets.bb_magic);
        if (magic != want) throw r.FieldError(Offsets.bb_magic, "bb_magic", FieldReader.Hex(magic), sb.IsV5 ? "0x424D4133 (\"BMA3\")" : "0x424D4150 (\"BMAP\")");
        int header = Offsets.V4HeaderSize;
        ulong owner = ownerIno;
        if (sb.IsV5)
        {
            header = Offsets.V5HeaderSize;
            r.Require(0, header);
            uint stored = XfsCrc32c.Stored(bytes, Offsets.bb_crc);
            uint computed = XfsCrc32c.Compute(bytes, Offsets.bb_crc);
            if (stored != computed) throw r.FieldError(Offsets.bb_crc, "bb_crc", FieldReader.Hex(stored), $"{FieldReader.Hex(computed)} (crc32c of the block)");
            owner = r.U64BE(Offsets.bb_owner);
            if (owner != ownerIno) throw r.FieldError(Offsets.bb_owner, "bb_owner", owner, $"{ownerIno} (the inode owning the fork)");
        }
        return new XfsBtreeBlock(magic, r.U16BE(Offsets.bb_level), r.U16BE(Offsets.bb_numrecs), owner, header);
    }
}
