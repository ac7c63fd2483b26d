using System.Globalization;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Filesystems.Ext;

/// <summary>
/// The ext2/3/4 superblock (ext4 disk layout, "Super Block", struct ext4_super_block): 1024 bytes at byte 1024
/// of the volume. Parse checks magic, revision, geometry against <see cref="Limits"/>, cross-field consistency,
/// incompatible features (refused by name) and, with metadata_csum, the crc32c of the superblock itself.
/// </summary>
internal sealed record Ext4Superblock
{
    public const int SizeInBytes = 1024;
    public const long VolumeOffset = 1024;
    public const ushort Magic = 0xEF53;
    public const string StructureName = "ext4 superblock";
    public const uint FlagUnsignedHash = 0x2;

    /// <summary>Field offsets of struct ext4_super_block, named as the disk layout names them.</summary>
    public static class Offsets
    {
        public const int InodesCount = 0x0;
        public const int BlocksCountLo = 0x4;
        public const int FirstDataBlock = 0x14;
        public const int LogBlockSize = 0x18;
        public const int LogClusterSize = 0x1C;
        public const int BlocksPerGroup = 0x20;
        public const int ClustersPerGroup = 0x24;
        public const int InodesPerGroup = 0x28;
        public const int Magic = 0x38;
        public const int State = 0x3A;
        public const int RevLevel = 0x4C;
        public const int FirstIno = 0x54;
        public const int InodeSize = 0x58;
        public const int FeatureCompat = 0x5C;
        public const int FeatureIncompat = 0x60;
        public const int FeatureRoCompat = 0x64;
        public const int Uuid = 0x68;
        public const int VolumeName = 0x78;
        public const int HashSeed = 0xEC;
        public const int DefHashVersion = 0xFC;
        public const int DescSize = 0xFE;
        public const int FirstMetaBg = 0x104;
        public const int BlocksCountHi = 0x150;
        public const int MinExtraIsize = 0x15C;
        public const int Flags = 0x160;
        public const int LogGroupsPerFlex = 0x174;
        public const int ChecksumType = 0x175;
        public const int BackupBgs = 0x24C;
        public const int ChecksumSeed = 0x270;
        public const int Checksum = 0x3FC;
    }

    /// <summary>Bounds from the disk layout and the kernel's ext4_fill_super checks.</summary>
    public static class Limits
    {
        /// <summary>Block size is 2^(10 + s_log_block_size): 1 KiB .. 64 KiB.</summary>
        public const uint MaxLogBlockSize = 6;
        public const int MinInodeSize = 128;
        public const int GoodOldInodeSize = 128;
        public const uint GoodOldFirstIno = 11;
        public const int MinDescSize64Bit = 64;
        public const int MaxDescSize = 1024;
        public const int DescSize32 = 32;
        public const uint MaxRevLevel = 1;
        public const byte ChecksumTypeCrc32c = 1;
    }

    public required uint InodesCount { get; init; }
    public required ulong BlocksCount { get; init; }
    public required uint FirstDataBlock { get; init; }
    public required uint LogBlockSize { get; init; }
    public required uint BlocksPerGroup { get; init; }
    public required uint InodesPerGroup { get; init; }
    public required uint RevLevel { get; init; }
    public required uint FirstIno { get; init; }
    public required int InodeSize { get; init; }
    public required uint FeatureCompat { get; init; }
    public required uint FeatureIncompat { get; init; }
    public required uint FeatureRoCompat { get; init; }
    public required Guid Uuid { get; init; }
    public required ReadOnlyMemory<byte> UuidBytes { get; init; }
    public required string UuidText { get; init; }
    public required string VolumeName { get; init; }
    public required int DescSize { get; init; }
    public required uint FirstMetaBg { get; init; }
    public required uint BackupBg0 { get; init; }
    public required uint BackupBg1 { get; init; }
    public required uint ChecksumSeed { get; init; }
    /// <summary>s_hash_seed: the htree hash seed (all zeros means the default).</summary>
    public required ReadOnlyMemory<uint> HashSeed { get; init; }
    /// <summary>s_flags: EXT2_FLAGS_SIGNED_HASH (0x1), EXT2_FLAGS_UNSIGNED_HASH (0x2), EXT2_FLAGS_TEST_FILESYS (0x4).</summary>
    public required uint Flags { get; init; }
    public required uint Checksum { get; init; }
    public required long ImageOffset { get; init; }

    public int BlockSize => 1024 << (int)LogBlockSize;
    public uint GroupCount => checked((uint)((BlocksCount - FirstDataBlock + BlocksPerGroup - 1) / BlocksPerGroup));
    public bool HasIncompat(uint bit) => (FeatureIncompat & bit) != 0;
    public bool HasRoCompat(uint bit) => (FeatureRoCompat & bit) != 0;
    public bool HasCompat(uint bit) => (FeatureCompat & bit) != 0;
    public bool HasMetadataCsum => HasRoCompat(Ext4Features.RoCompatMetadataCsum);

    public static Ext4Superblock Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, StructureName);
        r.Require(0, SizeInBytes);

        ushort magic = r.U16(Offsets.Magic);
        if (magic != Magic)
            throw r.FieldError(Offsets.Magic, "s_magic", FieldReader.Hex(magic), FieldReader.Hex(Magic));

        uint rev = r.U32(Offsets.RevLevel);
        if (rev > Limits.MaxRevLevel)
            throw new UnsupportedFeatureException($"{StructureName} at offset 0x{r.Absolute(Offsets.RevLevel):X}: s_rev_level {rev} is not supported (at most {Limits.MaxRevLevel})");

        uint logBlockSize = r.U32(Offsets.LogBlockSize);
        if (logBlockSize > Limits.MaxLogBlockSize)
            throw r.FieldError(Offsets.LogBlockSize, "s_log_block_size", logBlockSize, $"at most {Limits.MaxLogBlockSize} (block size 1024..65536)");
        int blockSize = 1024 << (int)logBlockSize;
        uint bitsPerBitmap = checked((uint)blockSize * 8);

        uint incompat = r.U32(Offsets.FeatureIncompat);
        uint roCompat = r.U32(Offsets.FeatureRoCompat);
        uint compat = r.U32(Offsets.FeatureCompat);
        bool is64 = (incompat & Ext4Features.Incompat64Bit) != 0;

        uint inodesCount = r.U32(Offsets.InodesCount);
        if (inodesCount == 0) throw r.FieldError(Offsets.InodesCount, "s_inodes_count", 0, "at least 1");

        ulong blocksCount = r.U32(Offsets.BlocksCountLo);
        if (is64) blocksCount |= (ulong)r.U32(Offsets.BlocksCountHi) << 32;

        uint firstDataBlock = r.U32(Offsets.FirstDataBlock);
        if (firstDataBlock > 1)
            throw r.FieldError(Offsets.FirstDataBlock, "s_first_data_block", firstDataBlock, "0 or 1");
        if (blocksCount <= firstDataBlock)
            throw r.FieldError(Offsets.BlocksCountLo, "s_blocks_count", blocksCount, $"more than s_first_data_block ({firstDataBlock})");

        uint blocksPerGroup = r.U32(Offsets.BlocksPerGroup);
        bool bigalloc = (roCompat & Ext4Features.RoCompatBigalloc) != 0;
        if (bigalloc)
        {
            uint logCluster = r.U32(Offsets.LogClusterSize);
            uint clustersPerGroup = r.U32(Offsets.ClustersPerGroup);
            if (logCluster < logBlockSize || logCluster > logBlockSize + 16)
                throw r.FieldError(Offsets.LogClusterSize, "s_log_cluster_size", logCluster, $"{logBlockSize}..{logBlockSize + 16}");
            if (clustersPerGroup == 0 || clustersPerGroup > bitsPerBitmap)
                throw r.FieldError(Offsets.ClustersPerGroup, "s_clusters_per_group", clustersPerGroup, $"1..{bitsPerBitmap}");
            if (blocksPerGroup == 0)
                throw r.FieldError(Offsets.BlocksPerGroup, "s_blocks_per_group", blocksPerGroup, "at least 1");
        }
        else if (blocksPerGroup == 0 || blocksPerGroup > bitsPerBitmap)
        {
            throw r.FieldError(Offsets.BlocksPerGroup, "s_blocks_per_group", blocksPerGroup, $"1..{bitsPerBitmap}");
        }

        uint inodesPerGroup = r.U32(Offsets.InodesPerGroup);
        if (inodesPerGroup == 0 || inodesPerGroup > bitsPerBitmap)
            throw r.FieldError(Offsets.InodesPerGroup, "s_inodes_per_group", inodesPerGroup, $"1..{bitsPerBitmap}");

        ulong groups = (blocksCount - firstDataBlock + blocksPerGroup - 1) / blocksPerGroup;
        if (groups > uint.MaxValue || groups * inodesPerGroup != inodesCount)
            throw r.FieldError(Offsets.InodesCount, "s_inodes_count", inodesCount,
                $"{groups} groups x {inodesPerGroup} inodes per group = {groups * inodesPerGroup}");

        int inodeSize = Limits.GoodOldInodeSize;
        uint firstIno = Limits.GoodOldFirstIno;
        if (rev >= 1)
        {
            inodeSize = r.U16(Offsets.InodeSize);
            if (inodeSize < Limits.MinInodeSize || inodeSize > blockSize || (inodeSize & (inodeSize - 1)) != 0)
                throw r.FieldError(Offsets.InodeSize, "s_inode_size", inodeSize, $"a power of two in {Limits.MinInodeSize}..{blockSize}");
            firstIno = r.U32(Offsets.FirstIno);
            if (firstIno < Limits.GoodOldFirstIno || firstIno > inodesCount)
                throw r.FieldError(Offsets.FirstIno, "s_first_ino", firstIno, $"{Limits.GoodOldFirstIno}..{inodesCount}");
        }

        int descSize = Limits.DescSize32;
        if (is64)
        {
            descSize = r.U16(Offsets.DescSize);
            if (descSize < Limits.MinDescSize64Bit || descSize > Limits.MaxDescSize || (descSize & (descSize - 1)) != 0)
                throw r.FieldError(Offsets.DescSize, "s_desc_size", descSize, $"a power of two in {Limits.MinDescSize64Bit}..{Limits.MaxDescSize}");
        }

        // Feature gate: refuse every incompatible bit we do not implement, naming it (like the kernel's ext4_feature_set_ok).
        uint unsupported = incompat & ~Ext4Features.IncompatSupported;
        if (unsupported != 0)
        {
            uint bit = unsupported & (uint)-(int)unsupported;
            throw new UnsupportedFeatureException(
                $"{StructureName} at offset 0x{imageOffset:X}: incompatible feature 0x{bit:X} ({Ext4Features.IncompatName(bit)}) is not supported");
        }

        var uuidBytes = r.Bytes(Offsets.Uuid, 16);
        uint checksum = r.U32(Offsets.Checksum);
        uint seed = 0;
        if ((roCompat & Ext4Features.RoCompatMetadataCsum) != 0)
        {
            byte type = r.U8(Offsets.ChecksumType);
            if (type != Limits.ChecksumTypeCrc32c)
                throw r.FieldError(Offsets.ChecksumType, "s_checksum_type", type, $"{Limits.ChecksumTypeCrc32c} (crc32c)");
            uint computed = Crc32c.Update(uint.MaxValue, bytes[..Offsets.Checksum]);
            if (computed != checksum)
                throw r.FieldError(Offsets.Checksum, "s_checksum", FieldReader.Hex(checksum), $"{FieldReader.Hex(computed)} (crc32c of the superblock)");
            seed = (incompat & Ext4Features.IncompatCsumSeed) != 0
                ? r.U32(Offsets.ChecksumSeed)
                : Crc32c.Update(uint.MaxValue, uuidBytes);
        }

        return new Ext4Superblock
        {
            InodesCount = inodesCount,
            BlocksCount = blocksCount,
            FirstDataBlock = firstDataBlock,
            LogBlockSize = logBlockSize,
            BlocksPerGroup = blocksPerGroup,
            InodesPerGroup = inodesPerGroup,
            RevLevel = rev,
            FirstIno = firstIno,
            InodeSize = inodeSize,
            FeatureCompat = compat,
            FeatureIncompat = incompat,
            FeatureRoCompat = roCompat,
            Uuid = new Guid(uuidBytes, bigEndian: true),
            UuidBytes = uuidBytes.ToArray(),
            UuidText = FormatUuid(uuidBytes),
            VolumeName = DecodeLabel(r.Bytes(Offsets.VolumeName, 16)),
            DescSize = descSize,
            FirstMetaBg = r.U32(Offsets.FirstMetaBg),
            BackupBg0 = r.U32(Offsets.BackupBgs),
            BackupBg1 = r.U32(Offsets.BackupBgs + 4),
            ChecksumSeed = seed,
            HashSeed = new[] { r.U32(Offsets.HashSeed), r.U32(Offsets.HashSeed + 4), r.U32(Offsets.HashSeed + 8), r.U32(Offsets.HashSeed + 12) },
            Flags = r.U32(Offsets.Flags),
            Checksum = checksum,
            ImageOffset = imageOffset,
        };
    }

    private static string FormatUuid(ReadOnlySpan<byte> b)
    {
        var hex = Convert.ToHexStringLower(b);
        return string.Create(CultureInfo.InvariantCulture, $"{hex[..8]}-{hex[8..12]}-{hex[12..16]}-{hex[16..20]}-{hex[20..]}");
    }

    private static string DecodeLabel(ReadOnlySpan<byte> b)
    {
        int nul = b.IndexOf((byte)0);
        if (nul >= 0) b = b[..nul];
        return System.Text.Encoding.UTF8.GetString(b);
    }
}
