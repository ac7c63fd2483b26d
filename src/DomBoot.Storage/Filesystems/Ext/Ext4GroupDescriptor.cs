using DomBoot.Formats.Binary;

namespace DomBoot.Storage.Filesystems.Ext;

/// <summary>
/// One block group descriptor (ext4 disk layout, "Block Group Descriptors", struct ext4_group_desc): 32 bytes,
/// or s_desc_size (64..1024) bytes with the 64bit feature, whose _hi halves then apply.
/// </summary>
internal sealed record Ext4GroupDescriptor
{
    public const int Size32 = 32;
    public const int Size64 = 64;

    public static class Offsets
    {
        public const int BlockBitmapLo = 0x0;
        public const int InodeBitmapLo = 0x4;
        public const int InodeTableLo = 0x8;
        public const int FreeBlocksCountLo = 0xC;
        public const int FreeInodesCountLo = 0xE;
        public const int UsedDirsCountLo = 0x10;
        public const int Flags = 0x12;
        public const int ItableUnusedLo = 0x1C;
        public const int Checksum = 0x1E;
        public const int BlockBitmapHi = 0x20;
        public const int InodeBitmapHi = 0x24;
        public const int InodeTableHi = 0x28;
        public const int ItableUnusedHi = 0x32;
    }

    public required ulong BlockBitmap { get; init; }
    public required ulong InodeBitmap { get; init; }
    public required ulong InodeTable { get; init; }
    public required ushort Flags { get; init; }
    public required uint ItableUnused { get; init; }
    public required ushort Checksum { get; init; }
    public required long ImageOffset { get; init; }

    /// <summary><paramref name="bytes"/> is exactly one descriptor: 32 bytes, or 64 and more for the 64bit layout.</summary>
    public static Ext4GroupDescriptor Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "ext4 group descriptor");
        r.Require(0, Size32);
        bool wide = bytes.Length >= Size64;
        return new Ext4GroupDescriptor
        {
            BlockBitmap = Wide(ref r, wide, Offsets.BlockBitmapLo, Offsets.BlockBitmapHi),
            InodeBitmap = Wide(ref r, wide, Offsets.InodeBitmapLo, Offsets.InodeBitmapHi),
            InodeTable = Wide(ref r, wide, Offsets.InodeTableLo, Offsets.InodeTableHi),
            Flags = r.U16(Offsets.Flags),
            ItableUnused = wide ? r.U16(Offsets.ItableUnusedLo) | ((uint)r.U16(Offsets.ItableUnusedHi) << 16) : r.U16(Offsets.ItableUnusedLo),
            Checksum = r.U16(Offsets.Checksum),
            ImageOffset = imageOffset,
        };
    }

    private static ulong Wide(ref FieldReader r, bool wide, int lo, int hi) => wide ? r.U32(lo) | ((ulong)r.U32(hi) << 32) : r.U32(lo);
}
