using DomBoot.Formats.Binary;

namespace DomBoot.Storage.Filesystems.Ext;

/// <summary>
/// Extent tree node header (ext4 disk layout, "Extent Tree", struct ext4_extent_header): 12 bytes at the start
/// of i_block and of every tree block. Parse checks magic, eh_max against the node's capacity, eh_entries against
/// eh_max and eh_depth against the kernel's limit.
/// </summary>
internal sealed record Ext4ExtentHeader(ushort Entries, ushort Max, ushort Depth, long ImageOffset)
{
    public const int Size = 12;
    public const ushort Magic = 0xF30A;
    /// <summary>The kernel's EXT4_MAX_EXTENT_DEPTH.</summary>
    public const int MaxDepth = 5;

    public static class Offsets
    {
        public const int Magic = 0x0;
        public const int Entries = 0x2;
        public const int Max = 0x4;
        public const int Depth = 0x6;
        public const int Generation = 0x8;
    }

    /// <summary><paramref name="bytes"/> is the whole node (60 bytes of i_block or one block); capacity follows from its length.</summary>
    public static Ext4ExtentHeader Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "ext4 extent header");
        r.Require(0, Size);
        ushort magic = r.U16(Offsets.Magic);
        if (magic != Magic) throw r.FieldError(Offsets.Magic, "eh_magic", FieldReader.Hex(magic), FieldReader.Hex(Magic));
        int capacity = (bytes.Length - Size) / Ext4Extent.Size;
        ushort max = r.U16(Offsets.Max);
        if (max == 0 || max > capacity) throw r.FieldError(Offsets.Max, "eh_max", max, $"1..{capacity}");
        ushort entries = r.U16(Offsets.Entries);
        if (entries > max) throw r.FieldError(Offsets.Entries, "eh_entries", entries, $"at most eh_max ({max})");
        ushort depth = r.U16(Offsets.Depth);
        if (depth > MaxDepth) throw r.FieldError(Offsets.Depth, "eh_depth", depth, $"at most {MaxDepth}");
        return new Ext4ExtentHeader(entries, max, depth, imageOffset);
    }
}

/// <summary>An interior extent tree entry (struct ext4_extent_idx): covers logical blocks from ei_block, child at ei_leaf.</summary>
internal sealed record Ext4ExtentIndex(uint LogicalBlock, ulong Leaf, long ImageOffset)
{
    public const int Size = 12;

    public static class Offsets
    {
        public const int Block = 0x0;
        public const int LeafLo = 0x4;
        public const int LeafHi = 0x8;
    }

    public static Ext4ExtentIndex Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "ext4 extent index");
        r.Require(0, Size);
        return new Ext4ExtentIndex(r.U32(Offsets.Block), r.U32(Offsets.LeafLo) | ((ulong)r.U16(Offsets.LeafHi) << 32), imageOffset);
    }
}

/// <summary>
/// A leaf extent (struct ext4_extent): ee_len blocks from logical ee_block at physical ee_start. An ee_len above
/// 32768 marks an uninitialized extent of ee_len - 32768 blocks, which reads as zeros.
/// </summary>
internal sealed record Ext4Extent(uint LogicalBlock, ushort Length, bool Uninitialized, ulong Start, long ImageOffset)
{
    public const int Size = 12;
    public const int MaxInitializedLength = 32768;

    public static class Offsets
    {
        public const int Block = 0x0;
        public const int Len = 0x4;
        public const int StartHi = 0x6;
        public const int StartLo = 0x8;
    }

    public static Ext4Extent Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "ext4 extent");
        r.Require(0, Size);
        ushort raw = r.U16(Offsets.Len);
        bool uninit = raw > MaxInitializedLength;
        ushort len = uninit ? (ushort)(raw - MaxInitializedLength) : raw;
        if (len == 0) throw r.FieldError(Offsets.Len, "ee_len", raw, "1..65535 except 32768+0");
        ulong start = r.U32(Offsets.StartLo) | ((ulong)r.U16(Offsets.StartHi) << 32);
        return new Ext4Extent(r.U32(Offsets.Block), len, uninit, start, imageOffset);
    }
}
