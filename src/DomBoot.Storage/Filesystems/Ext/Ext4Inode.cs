using DomBoot.Formats.Binary;

namespace DomBoot.Storage.Filesystems.Ext;

/// <summary>
/// One on-disk inode (ext4 disk layout, "Index Nodes", struct ext4_inode): the 128-byte base, then
/// i_extra_isize bytes of extra fields, then in-inode extended attributes up to s_inode_size.
/// </summary>
internal sealed record Ext4Inode
{
    public const int GoodOldSize = 128;
    public const int BlockFieldSize = 60;

    public static class Offsets
    {
        public const int Mode = 0x0;
        public const int Uid = 0x2;
        public const int SizeLo = 0x4;
        public const int Mtime = 0x10;
        public const int Dtime = 0x14;
        public const int Gid = 0x18;
        public const int LinksCount = 0x1A;
        public const int BlocksLo = 0x1C;
        public const int Flags = 0x20;
        public const int Block = 0x28;
        public const int FileAclLo = 0x68;
        public const int SizeHigh = 0x6C;
        public const int UidHigh = 0x78;
        public const int GidHigh = 0x7A;
        public const int ExtraIsize = 0x80;
        public const int MtimeExtra = 0x88;
    }

    /// <summary>i_flags bits (EXT4_*_FL).</summary>
    public static class FlagBits
    {
        public const uint Index = 0x1000;
        public const uint Extents = 0x80000;
        public const uint EaInode = 0x200000;
        public const uint InlineData = 0x10000000;
    }

    /// <summary>i_mode file types (S_IF*).</summary>
    public static class ModeBits
    {
        public const ushort TypeMask = 0xF000;
        public const ushort Fifo = 0x1000;
        public const ushort CharDevice = 0x2000;
        public const ushort Directory = 0x4000;
        public const ushort BlockDevice = 0x6000;
        public const ushort Regular = 0x8000;
        public const ushort Symlink = 0xA000;
        public const ushort Socket = 0xC000;
    }

    public required ushort Mode { get; init; }
    public required uint Uid { get; init; }
    public required uint Gid { get; init; }
    /// <summary>i_size_lo | i_size_high &lt;&lt; 32, checked to be non-negative.</summary>
    public required long SizeInBytes { get; init; }
    public required ushort LinksCount { get; init; }
    public required uint Flags { get; init; }
    public required ReadOnlyMemory<byte> Block { get; init; }
    public required int ExtraIsize { get; init; }
    public required DateTimeOffset? ModifiedTime { get; init; }
    /// <summary>The whole on-disk inode (s_inode_size bytes), for the in-inode extended attribute area.</summary>
    public required ReadOnlyMemory<byte> Raw { get; init; }
    public required long ImageOffset { get; init; }

    public ushort FileType => (ushort)(Mode & ModeBits.TypeMask);
    public bool HasExtents => (Flags & FlagBits.Extents) != 0;
    public bool HasInlineData => (Flags & FlagBits.InlineData) != 0;
    public long BlockFieldOffset => ImageOffset + Offsets.Block;

    public static Ext4Inode Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "ext4 inode");
        r.Require(0, GoodOldSize);

        ulong size = r.U32(Offsets.SizeLo) | ((ulong)r.U32(Offsets.SizeHigh) << 32);
        if (size > long.MaxValue)
            throw r.FieldError(Offsets.SizeHigh, "i_size", size, $"at most {long.MaxValue}");

        int extra = 0;
        DateTimeOffset? mtime = null;
        long mtimeSeconds = (int)r.U32(Offsets.Mtime);
        if (bytes.Length > GoodOldSize)
        {
            extra = r.U16(Offsets.ExtraIsize);
            // ext4_iget: "bad extra_isize" when it overruns the inode or is not 4-aligned.
            if (extra % 4 != 0 || GoodOldSize + extra > bytes.Length)
                throw r.FieldError(Offsets.ExtraIsize, "i_extra_isize", extra, $"a multiple of 4, at most {bytes.Length - GoodOldSize}");
        }
        long nanoseconds = 0;
        if (extra >= Offsets.MtimeExtra + 4 - GoodOldSize)
        {
            uint mx = r.U32(Offsets.MtimeExtra);
            mtimeSeconds += (long)(mx & 3) << 32; // epoch bits extend the signed 32-bit seconds
            nanoseconds = mx >> 2;
        }
        mtime = DateTimeOffset.FromUnixTimeSeconds(mtimeSeconds).AddTicks(Math.Min(nanoseconds, 999_999_999) / 100);

        return new Ext4Inode
        {
            Mode = r.U16(Offsets.Mode),
            Uid = r.U16(Offsets.Uid) | ((uint)r.U16(Offsets.UidHigh) << 16),
            Gid = r.U16(Offsets.Gid) | ((uint)r.U16(Offsets.GidHigh) << 16),
            SizeInBytes = (long)size,
            LinksCount = r.U16(Offsets.LinksCount),
            Flags = r.U32(Offsets.Flags),
            Block = r.Bytes(Offsets.Block, BlockFieldSize).ToArray(),
            ExtraIsize = extra,
            ModifiedTime = mtime,
            Raw = bytes.ToArray(),
            ImageOffset = imageOffset,
        };
    }
}
