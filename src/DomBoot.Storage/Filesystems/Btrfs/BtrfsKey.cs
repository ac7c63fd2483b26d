using DomBoot.Formats.Binary;

namespace DomBoot.Storage.Filesystems.Btrfs;

/// <summary>struct btrfs_disk_key (On-disk Format, "Key"): objectid, type, offset; ordered in that order.</summary>
internal readonly record struct BtrfsKey(ulong ObjectId, byte Type, ulong Offset) : IComparable<BtrfsKey>
{
    public const int Size = 17;

    public static class Offsets
    {
        public const int ObjectId = 0x0;
        public const int Type = 0x8;
        public const int Offset = 0x9;
    }

    public static readonly BtrfsKey Min = new(0, 0, 0);
    public static readonly BtrfsKey Max = new(ulong.MaxValue, byte.MaxValue, ulong.MaxValue);

    public static BtrfsKey Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "btrfs key");
        r.Require(0, Size);
        return new BtrfsKey(r.U64(Offsets.ObjectId), r.U8(Offsets.Type), r.U64(Offsets.Offset));
    }

    public int CompareTo(BtrfsKey other)
    {
        int c = ObjectId.CompareTo(other.ObjectId);
        if (c != 0) return c;
        c = Type.CompareTo(other.Type);
        return c != 0 ? c : Offset.CompareTo(other.Offset);
    }

    public static bool operator <(BtrfsKey a, BtrfsKey b) => a.CompareTo(b) < 0;
    public static bool operator >(BtrfsKey a, BtrfsKey b) => a.CompareTo(b) > 0;
    public static bool operator <=(BtrfsKey a, BtrfsKey b) => a.CompareTo(b) <= 0;
    public static bool operator >=(BtrfsKey a, BtrfsKey b) => a.CompareTo(b) >= 0;

    public override string ToString() => $"({ObjectId} {Type} {Offset})";
}

/// <summary>Item types and well-known object ids (uapi linux/btrfs_tree.h).</summary>
internal static class BtrfsItemType
{
    public const byte InodeItem = 1;
    public const byte InodeRef = 12;
    public const byte InodeExtref = 13;
    public const byte DirItem = 84;
    public const byte DirIndex = 96;
    public const byte ExtentData = 108;
    public const byte ExtentCsum = 128;
    public const byte RootItem = 132;
    public const byte RootBackref = 144;
    public const byte RootRef = 156;
    public const byte ChunkItem = 228;
}

internal static class BtrfsObjectId
{
    public const ulong RootTree = 1;
    public const ulong ChunkTree = 3;
    public const ulong FsTree = 5;
    public const ulong RootTreeDir = 6;
    public const ulong CsumTree = 7;
    public const ulong FirstFree = 256;
    /// <summary>BTRFS_LAST_FREE_OBJECTID (-256).</summary>
    public const ulong LastFree = unchecked((ulong)-256L);
    public const ulong FirstChunkTree = 256;
    /// <summary>BTRFS_EXTENT_CSUM_OBJECTID (-10).</summary>
    public const ulong ExtentCsum = unchecked((ulong)-10L);
}
