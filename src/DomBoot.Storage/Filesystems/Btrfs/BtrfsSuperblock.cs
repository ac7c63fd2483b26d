using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Filesystems.Btrfs;

/// <summary>
/// struct btrfs_super_block (btrfs docs, On-disk Format, "Superblock"; kernel uapi btrfs_tree.h): the primary copy
/// at 64 KiB. Only crc32c checksums are verified; the sys_chunk_array is decoded into <see cref="SystemChunks"/>.
/// </summary>
public sealed record BtrfsSuperblock(
    Guid FsId,
    Guid MetadataUuid,
    ulong Bytenr,
    ulong Flags,
    ulong Generation,
    ulong Root,
    ulong ChunkRoot,
    ulong LogRoot,
    ulong TotalBytes,
    ulong BytesUsed,
    ulong RootDirObjectId,
    ulong NumDevices,
    uint SectorSize,
    uint NodeSize,
    uint StripeSize,
    uint SysChunkArraySize,
    ulong ChunkRootGeneration,
    ulong CompatFlags,
    ulong CompatRoFlags,
    ulong IncompatFlags,
    ushort CsumType,
    byte RootLevel,
    byte ChunkRootLevel,
    byte LogRootLevel,
    ulong DevItemDevId,
    Guid DevItemUuid,
    string Label)
{
    /// <summary>Byte offset of the primary superblock on the device.</summary>
    public const long PrimaryOffset = 0x10000;
    public const int Size = 4096;
    public const int CsumSize = 32;
    public static ReadOnlySpan<byte> MagicBytes => "_BHRfS_M"u8;

    /// <summary>Field offsets as struct btrfs_super_block names them.</summary>
    public static class Offsets
    {
        public const int Csum = 0x0;
        public const int Fsid = 0x20;
        public const int Bytenr = 0x30;
        public const int Flags = 0x38;
        public const int Magic = 0x40;
        public const int Generation = 0x48;
        public const int Root = 0x50;
        public const int ChunkRoot = 0x58;
        public const int LogRoot = 0x60;
        public const int TotalBytes = 0x70;
        public const int BytesUsed = 0x78;
        public const int RootDirObjectid = 0x80;
        public const int NumDevices = 0x88;
        public const int Sectorsize = 0x90;
        public const int Nodesize = 0x94;
        public const int Stripesize = 0x9C;
        public const int SysChunkArraySize = 0xA0;
        public const int ChunkRootGeneration = 0xA4;
        public const int CompatFlags = 0xAC;
        public const int CompatRoFlags = 0xB4;
        public const int IncompatFlags = 0xBC;
        public const int CsumType = 0xC4;
        public const int RootLevel = 0xC6;
        public const int ChunkRootLevel = 0xC7;
        public const int LogRootLevel = 0xC8;
        public const int DevItem = 0xC9;
        public const int DevItemDevid = DevItem + 0x0;
        public const int DevItemUuid = DevItem + 0x42;
        public const int Label = 0x12B;
        public const int MetadataUuid = 0x23B;
        public const int SysChunkArray = 0x32B;
    }

    public const int LabelSize = 256;
    public const ushort CsumTypeCrc32C = 0;

    /// <summary>Incompatible feature bits (BTRFS_FEATURE_INCOMPAT_*).</summary>
    public static class Incompat
    {
        public const ulong MixedBackref = 0x1;
        public const ulong DefaultSubvol = 0x2;
        public const ulong MixedGroups = 0x4;
        public const ulong CompressLzo = 0x8;
        public const ulong CompressZstd = 0x10;
        public const ulong BigMetadata = 0x20;
        public const ulong ExtendedIref = 0x40;
        public const ulong Raid56 = 0x80;
        public const ulong SkinnyMetadata = 0x100;
        public const ulong NoHoles = 0x200;
        public const ulong MetadataUuid = 0x400;
        public const ulong Raid1C34 = 0x800;
        public const ulong Zoned = 0x1000;
        public const ulong ExtentTreeV2 = 0x2000;
        public const ulong RaidStripeTree = 0x4000;
        public const ulong SimpleQuota = 0x10000;

        /// <summary>Bits that do not change how a read-only single-device reader walks the trees.</summary>
        public const ulong Readable = MixedBackref | DefaultSubvol | MixedGroups | CompressLzo | CompressZstd | BigMetadata
            | ExtendedIref | Raid56 | SkinnyMetadata | NoHoles | MetadataUuid | Raid1C34 | SimpleQuota;
    }

    public static bool HasMagic(ReadOnlySpan<byte> volumeStart) =>
        volumeStart.Length >= PrimaryOffset + Offsets.Magic + 8
        && volumeStart.Slice((int)PrimaryOffset + Offsets.Magic, 8).SequenceEqual(MagicBytes);

    /// <summary>The UUID the tree blocks carry (metadata_uuid when METADATA_UUID is set, else fsid).</summary>
    public Guid TreeFsId => (IncompatFlags & Incompat.MetadataUuid) != 0 ? MetadataUuid : FsId;

    /// <summary>Raw sys_chunk_array bytes, kept for bootstrap decoding.</summary>
    internal ReadOnlyMemory<byte> SysChunkArray { get; init; }

    /// <summary>The system chunks the sys_chunk_array bootstraps (needed to read the chunk tree).</summary>
    internal IReadOnlyList<BtrfsChunk> SystemChunks { get; init; } = [];

    public static BtrfsSuperblock Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        const string S = "btrfs superblock";
        var r = new FieldReader(bytes, imageOffset, S);
        r.Require(0, Size);
        if (!r.Bytes(Offsets.Magic, 8).SequenceEqual(MagicBytes))
            throw r.FieldError(Offsets.Magic, "magic", Quote.Bytes(r.Bytes(Offsets.Magic, 8)), "\"_BHRfS_M\"");
        ushort csumType = r.U16(Offsets.CsumType);
        if (csumType != CsumTypeCrc32C)
        {
            string name = csumType switch { 1 => "xxhash64", 2 => "sha256", 3 => "blake2b", _ => "" };
            if (name.Length == 0) throw r.FieldError(Offsets.CsumType, "csum_type", csumType, "0 (crc32c), 1, 2 or 3");
            throw new UnsupportedFeatureException($"{S} at offset 0x{imageOffset + Offsets.CsumType:X}: checksum type {name} is not supported (only crc32c)");
        }
        uint stored = r.U32(Offsets.Csum);
        uint actual = BtrfsCrc32C.Compute(r.Bytes(CsumSize, Size - CsumSize));
        if (stored != actual)
            throw r.FieldError(Offsets.Csum, "csum", FieldReader.Hex(stored), $"{FieldReader.Hex(actual)} (crc32c of bytes 0x20..0x1000)");
        ulong bytenr = r.U64(Offsets.Bytenr);
        if (bytenr != (ulong)PrimaryOffset && imageOffset == PrimaryOffset)
            throw r.FieldError(Offsets.Bytenr, "bytenr", FieldReader.Hex(bytenr), FieldReader.Hex((ulong)PrimaryOffset));
        uint sectorSize = r.U32(Offsets.Sectorsize);
        if (sectorSize < BtrfsLimits.MinSectorSize || sectorSize > BtrfsLimits.MaxSectorSize || !uint.IsPow2(sectorSize))
            throw r.FieldError(Offsets.Sectorsize, "sectorsize", sectorSize, $"a power of two in [{BtrfsLimits.MinSectorSize}, {BtrfsLimits.MaxSectorSize}]");
        uint nodeSize = r.U32(Offsets.Nodesize);
        if (nodeSize < sectorSize || nodeSize < BtrfsLimits.MinNodeSize || nodeSize > BtrfsLimits.MaxNodeSize || !uint.IsPow2(nodeSize))
            throw r.FieldError(Offsets.Nodesize, "nodesize", nodeSize, $"a power of two in [max(sectorsize, {BtrfsLimits.MinNodeSize}), {BtrfsLimits.MaxNodeSize}]");
        uint arraySize = r.U32(Offsets.SysChunkArraySize);
        if (arraySize > BtrfsLimits.SysChunkArraySize)
            throw r.FieldError(Offsets.SysChunkArraySize, "sys_chunk_array_size", arraySize, $"at most {BtrfsLimits.SysChunkArraySize}");
        byte rootLevel = r.U8(Offsets.RootLevel), chunkRootLevel = r.U8(Offsets.ChunkRootLevel);
        if (rootLevel > BtrfsLimits.MaxLevel) throw r.FieldError(Offsets.RootLevel, "root_level", rootLevel, $"at most {BtrfsLimits.MaxLevel}");
        if (chunkRootLevel > BtrfsLimits.MaxLevel) throw r.FieldError(Offsets.ChunkRootLevel, "chunk_root_level", chunkRootLevel, $"at most {BtrfsLimits.MaxLevel}");
        ulong root = r.U64(Offsets.Root), chunkRoot = r.U64(Offsets.ChunkRoot);
        if (root % sectorSize != 0) throw r.FieldError(Offsets.Root, "root", FieldReader.Hex(root), $"a multiple of sectorsize {sectorSize}");
        if (chunkRoot % sectorSize != 0) throw r.FieldError(Offsets.ChunkRoot, "chunk_root", FieldReader.Hex(chunkRoot), $"a multiple of sectorsize {sectorSize}");
        ulong incompat = r.U64(Offsets.IncompatFlags);
        ulong unknown = incompat & ~Incompat.Readable;
        if (unknown != 0)
        {
            var names = new List<string>();
            if ((unknown & Incompat.Zoned) != 0) names.Add("zoned");
            if ((unknown & Incompat.ExtentTreeV2) != 0) names.Add("extent-tree-v2");
            if ((unknown & Incompat.RaidStripeTree) != 0) names.Add("raid-stripe-tree");
            ulong rest = unknown & ~(Incompat.Zoned | Incompat.ExtentTreeV2 | Incompat.RaidStripeTree);
            if (rest != 0) names.Add("unknown bits " + FieldReader.Hex(rest));
            throw new UnsupportedFeatureException($"{S} at offset 0x{imageOffset + Offsets.IncompatFlags:X}: incompatible features not supported: {string.Join(", ", names)}");
        }

        var label = System.Text.Encoding.UTF8.GetString(TrimNul(r.Bytes(Offsets.Label, LabelSize)));
        var sysArray = r.Bytes(Offsets.SysChunkArray, (int)arraySize).ToArray();
        var sb = new BtrfsSuperblock(
            new Guid(r.Bytes(Offsets.Fsid, 16), bigEndian: true),
            new Guid(r.Bytes(Offsets.MetadataUuid, 16), bigEndian: true),
            bytenr, r.U64(Offsets.Flags), r.U64(Offsets.Generation), root, chunkRoot, r.U64(Offsets.LogRoot),
            r.U64(Offsets.TotalBytes), r.U64(Offsets.BytesUsed), r.U64(Offsets.RootDirObjectid), r.U64(Offsets.NumDevices),
            sectorSize, nodeSize, r.U32(Offsets.Stripesize), arraySize, r.U64(Offsets.ChunkRootGeneration),
            r.U64(Offsets.CompatFlags), r.U64(Offsets.CompatRoFlags), incompat, csumType, rootLevel, chunkRootLevel,
            r.U8(Offsets.LogRootLevel), r.U64(Offsets.DevItemDevid), new Guid(r.Bytes(Offsets.DevItemUuid, 16), bigEndian: true), label)
        {
            SysChunkArray = sysArray,
        };
        return sb with { SystemChunks = ParseSysChunkArray(sysArray, imageOffset + Offsets.SysChunkArray) };
    }

    private static ReadOnlySpan<byte> TrimNul(ReadOnlySpan<byte> b)
    {
        int n = b.IndexOf((byte)0);
        return n >= 0 ? b[..n] : b;
    }

    /// <summary>The sys_chunk_array: (btrfs_disk_key, btrfs_chunk with stripes) pairs, CHUNK_ITEM keys only.</summary>
    private static List<BtrfsChunk> ParseSysChunkArray(ReadOnlySpan<byte> array, long imageOffset)
    {
        var chunks = new List<BtrfsChunk>();
        int pos = 0;
        while (pos < array.Length)
        {
            if (array.Length - pos < BtrfsKey.Size)
                throw new TruncatedDataException("btrfs sys_chunk_array key", imageOffset + pos, BtrfsKey.Size, array.Length - pos);
            var key = BtrfsKey.Parse(array[pos..], imageOffset + pos);
            if (key.Type != BtrfsItemType.ChunkItem)
                throw MalformedDataException.Field("btrfs sys_chunk_array key", imageOffset + pos + BtrfsKey.Offsets.Type, "type", key.Type, $"{BtrfsItemType.ChunkItem} (CHUNK_ITEM)");
            pos += BtrfsKey.Size;
            var chunk = BtrfsChunk.Parse(array[pos..], imageOffset + pos, key.Offset, out int used);
            chunks.Add(chunk);
            pos += used;
        }
        if (chunks.Count == 0)
            throw new MalformedDataException("btrfs sys_chunk_array", imageOffset, "holds no chunk; expected at least the system chunk");
        return chunks;
    }
}
