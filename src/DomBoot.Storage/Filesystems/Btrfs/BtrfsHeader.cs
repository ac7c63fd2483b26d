using DomBoot.Formats.Binary;

namespace DomBoot.Storage.Filesystems.Btrfs;

/// <summary>struct btrfs_header (On-disk Format, "Tree blocks"): the 101-byte header of every tree node and leaf.</summary>
internal sealed record BtrfsHeader(uint Csum, Guid FsId, ulong Bytenr, ulong Flags, Guid ChunkTreeUuid, ulong Generation,
    ulong Owner, uint NrItems, byte Level)
{
    public const int Size = 0x65;
    public const int CsumSize = 32;

    public static class Offsets
    {
        public const int Csum = 0x0;
        public const int Fsid = 0x20;
        public const int Bytenr = 0x30;
        public const int Flags = 0x38;
        public const int ChunkTreeUuid = 0x40;
        public const int Generation = 0x50;
        public const int Owner = 0x58;
        public const int Nritems = 0x60;
        public const int Level = 0x64;
    }

    public static BtrfsHeader Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "btrfs tree block header");
        r.Require(0, Size);
        return new BtrfsHeader(r.U32(Offsets.Csum), new Guid(r.Bytes(Offsets.Fsid, 16), bigEndian: true), r.U64(Offsets.Bytenr),
            r.U64(Offsets.Flags), new Guid(r.Bytes(Offsets.ChunkTreeUuid, 16), bigEndian: true), r.U64(Offsets.Generation),
            r.U64(Offsets.Owner), r.U32(Offsets.Nritems), r.U8(Offsets.Level));
    }
}

/// <summary>struct btrfs_item: a leaf item header; <see cref="DataOffset"/> is relative to the end of the block header.</summary>
internal sealed record BtrfsItem(BtrfsKey Key, uint DataOffset, uint DataSize)
{
    public const int Size = 25;

    public static class Offsets
    {
        public const int Key = 0x0;
        public const int Offset = 0x11;
        public const int Size = 0x15;
    }

    public static BtrfsItem Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "btrfs item");
        r.Require(0, Size);
        return new BtrfsItem(BtrfsKey.Parse(bytes, imageOffset), r.U32(Offsets.Offset), r.U32(Offsets.Size));
    }
}

/// <summary>struct btrfs_key_ptr: one child pointer of an internal node.</summary>
internal sealed record BtrfsKeyPtr(BtrfsKey Key, ulong BlockPtr, ulong Generation)
{
    public const int Size = 33;

    public static class Offsets
    {
        public const int Key = 0x0;
        public const int Blockptr = 0x11;
        public const int Generation = 0x19;
    }

    public static BtrfsKeyPtr Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "btrfs key pointer");
        r.Require(0, Size);
        return new BtrfsKeyPtr(BtrfsKey.Parse(bytes, imageOffset), r.U64(Offsets.Blockptr), r.U64(Offsets.Generation));
    }
}

/// <summary>One leaf item with its data; <see cref="DataImageOffset"/> is the data's absolute byte on the volume.</summary>
internal readonly record struct BtrfsLeafItem(BtrfsKey Key, ReadOnlyMemory<byte> Data, long DataImageOffset, long ItemImageOffset, long NodeImageOffset);

/// <summary>A checked, decoded tree block: a leaf (items) or an internal node (key pointers).</summary>
internal sealed class BtrfsNode
{
    public required BtrfsHeader Header { get; init; }
    public required ulong Logical { get; init; }
    public required long Physical { get; init; }
    public required byte[] Block { get; init; }
    public BtrfsItem[] Items { get; init; } = [];
    public BtrfsKeyPtr[] Pointers { get; init; } = [];

    public bool IsLeaf => Header.Level == 0;
    public int Count => IsLeaf ? Items.Length : Pointers.Length;
    public BtrfsKey KeyAt(int i) => IsLeaf ? Items[i].Key : Pointers[i].Key;

    public BtrfsLeafItem LeafItem(int i)
    {
        var it = Items[i];
        int at = BtrfsHeader.Size + (int)it.DataOffset;
        return new BtrfsLeafItem(it.Key, Block.AsMemory(at, (int)it.DataSize), Physical + at, Physical + BtrfsHeader.Size + (long)i * BtrfsItem.Size, Physical);
    }

    /// <summary>Largest index whose key is &lt;= <paramref name="key"/>, or -1.</summary>
    public int LastAtOrBefore(BtrfsKey key)
    {
        int lo = 0, hi = Count - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (KeyAt(mid) <= key) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        return found;
    }

    /// <summary>Verifies checksum, address, fsid and layout of a tree block read from <paramref name="physical"/>.</summary>
    public static BtrfsNode Parse(byte[] block, ulong logical, long physical, Guid fsId)
    {
        const string S = "btrfs tree block";
        var r = new FieldReader(block, physical, S);
        var h = BtrfsHeader.Parse(block, physical);
        uint actual = BtrfsCrc32C.Compute(block.AsSpan(BtrfsHeader.CsumSize));
        if (h.Csum != actual)
            throw r.FieldError(BtrfsHeader.Offsets.Csum, "csum", FieldReader.Hex(h.Csum), $"{FieldReader.Hex(actual)} (crc32c of the block)");
        if (h.Bytenr != logical)
            throw r.FieldError(BtrfsHeader.Offsets.Bytenr, "bytenr", FieldReader.Hex(h.Bytenr), $"{FieldReader.Hex(logical)} (the address it was read from)");
        if (h.FsId != fsId)
            throw r.FieldError(BtrfsHeader.Offsets.Fsid, "fsid", h.FsId, $"{fsId} (the superblock's)");
        if (h.Level > BtrfsLimits.MaxLevel)
            throw r.FieldError(BtrfsHeader.Offsets.Level, "level", h.Level, $"at most {BtrfsLimits.MaxLevel}");
        int room = block.Length - BtrfsHeader.Size;
        if (h.Level == 0)
        {
            int max = room / BtrfsItem.Size;
            if (h.NrItems > max) throw r.FieldError(BtrfsHeader.Offsets.Nritems, "nritems", h.NrItems, $"at most {max} for a {block.Length}-byte leaf");
            var items = new BtrfsItem[h.NrItems];
            int tableEnd = (int)h.NrItems * BtrfsItem.Size;
            for (int i = 0; i < items.Length; i++)
            {
                int at = BtrfsHeader.Size + i * BtrfsItem.Size;
                var it = BtrfsItem.Parse(block.AsSpan(at, BtrfsItem.Size), physical + at);
                if (it.DataOffset < tableEnd || it.DataOffset > room || it.DataSize > room - it.DataOffset)
                    throw r.Error(at + BtrfsItem.Offsets.Offset,
                        $"item {i} data [{it.DataOffset}, +{it.DataSize}) lies outside the leaf data area [{tableEnd}, {room})");
                if (i > 0 && items[i - 1].Key >= it.Key)
                    throw r.Error(at, $"item {i} key {it.Key} is not greater than the previous key {items[i - 1].Key}");
                items[i] = it;
            }
            return new BtrfsNode { Header = h, Logical = logical, Physical = physical, Block = block, Items = items };
        }
        else
        {
            int max = room / BtrfsKeyPtr.Size;
            if (h.NrItems == 0 || h.NrItems > max)
                throw r.FieldError(BtrfsHeader.Offsets.Nritems, "nritems", h.NrItems, $"between 1 and {max} for a {block.Length}-byte node");
            var ptrs = new BtrfsKeyPtr[h.NrItems];
            for (int i = 0; i < ptrs.Length; i++)
            {
                int at = BtrfsHeader.Size + i * BtrfsKeyPtr.Size;
                var p = BtrfsKeyPtr.Parse(block.AsSpan(at, BtrfsKeyPtr.Size), physical + at);
                if (i > 0 && ptrs[i - 1].Key >= p.Key)
                    throw r.Error(at, $"key pointer {i} key {p.Key} is not greater than the previous key {ptrs[i - 1].Key}");
                ptrs[i] = p;
            }
            return new BtrfsNode { Header = h, Logical = logical, Physical = physical, Block = block, Pointers = ptrs };
        }
    }
}
