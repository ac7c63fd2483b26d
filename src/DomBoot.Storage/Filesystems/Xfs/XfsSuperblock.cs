using System.Globalization;
using System.Numerics;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Filesystems.Xfs;

/// <summary>
/// The XFS superblock (struct xfs_dsb; XFS Algorithms &amp; Data Structures, "Superblocks"; Linux
/// fs/xfs/libxfs/xfs_format.h). Big-endian; only the primary copy in AG 0 is read.
/// </summary>
internal sealed record XfsSuperblock(
    uint BlockSize,
    ulong DBlocks,
    ulong RBlocks,
    Guid UuidValue,
    string UuidText,
    ulong RootIno,
    uint AgBlocks,
    uint AgCount,
    ushort VersionNum,
    ushort SectSize,
    ushort InodeSize,
    ushort InoPBlock,
    string Label,
    byte BlockLog,
    byte InodeLog,
    byte InoPBLog,
    byte AgBlkLog,
    byte DirBlkLog,
    uint Features2,
    uint FeaturesCompat,
    uint FeaturesRoCompat,
    uint FeaturesIncompat,
    uint FeaturesLogIncompat,
    uint Crc)
{
    public const uint Magic = 0x58465342; // "XFSB"

    /// <summary>Field offsets in struct xfs_dsb.</summary>
    internal static class Offsets
    {
        public const int sb_magicnum = 0;
        public const int sb_blocksize = 4;
        public const int sb_dblocks = 8;
        public const int sb_rblocks = 16;
        public const int sb_uuid = 32;
        public const int sb_rootino = 56;
        public const int sb_agblocks = 84;
        public const int sb_agcount = 88;
        public const int sb_versionnum = 100;
        public const int sb_sectsize = 102;
        public const int sb_inodesize = 104;
        public const int sb_inopblock = 106;
        public const int sb_fname = 108;
        public const int sb_blocklog = 120;
        public const int sb_sectlog = 121;
        public const int sb_inodelog = 122;
        public const int sb_inopblog = 123;
        public const int sb_agblklog = 124;
        public const int sb_inprogress = 126;
        public const int sb_dirblklog = 192;
        public const int sb_features2 = 200;
        public const int sb_features_compat = 208;
        public const int sb_features_ro_compat = 212;
        public const int sb_features_incompat = 216;
        public const int sb_features_log_incompat = 220;
        public const int sb_crc = 224;
        public const int Size = 264;
    }

    internal static class Limits
    {
        public const uint MinBlockSize = 512;
        public const uint MaxBlockSize = 65536;
        public const uint MaxSectSize = 32768;
        public const uint MinInodeSize = 256;
        public const uint MaxInodeSize = 2048;
        public const uint MaxAgCount = 1u << 20;
        public const uint MinAgBlocks = 64; // XFS_MIN_AG_BLOCKS
        public const uint MaxDirBlockSize = 65536; // XFS_MAX_BLOCKSIZE bounds directory blocks too
    }

    // sb_versionnum bits (xfs_format.h XFS_SB_VERSION_*)
    internal const ushort VersionNumMask = 0x000F;
    internal const ushort VersionDirV2Bit = 0x2000;
    internal const ushort VersionBorgBit = 0x4000; // ascii-ci
    internal const ushort VersionMoreBitsBit = 0x8000;
    internal const uint Features2Ftype = 0x200;

    /// <summary>v5 sb_features_incompat bits and their names.</summary>
    internal static readonly (uint Bit, string Name, bool Readable)[] IncompatFeatures =
    [
        (0x01, "ftype", true),
        (0x02, "sparse inodes (spinodes)", true),
        (0x04, "meta_uuid", true),
        (0x08, "bigtime", true),
        (0x10, "needsrepair", false),
        (0x20, "nrext64", true),
        (0x40, "exchrange", true),
        (0x80, "parent pointers", true),
        (0x100, "metadir", false),
        (0x200, "zoned", false),
    ];

    public int Version => VersionNum & VersionNumMask;
    public bool IsV5 => Version == 5;
    public bool HasFtype => IsV5 ? (FeaturesIncompat & 0x01) != 0 : (VersionNum & VersionMoreBitsBit) != 0 && (Features2 & Features2Ftype) != 0;
    public bool HasNrext64 => IsV5 && (FeaturesIncompat & 0x20) != 0;
    public bool HasAsciiCi => (VersionNum & VersionBorgBit) != 0;
    public uint DirBlockSize => BlockSize << DirBlkLog;
    public int InodeCoreSize => IsV5 ? XfsDinode.Offsets.V3CoreSize : XfsDinode.Offsets.V2CoreSize;

    public static bool HasMagic(ReadOnlySpan<byte> bytes) =>
        bytes.Length >= 4 && bytes[0] == (byte)'X' && bytes[1] == (byte)'F' && bytes[2] == (byte)'S' && bytes[3] == (byte)'B';

    /// <summary>Parses the superblock from its sector (at least sb_sectsize bytes for the v5 crc check).</summary>
    public static XfsSuperblock Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "XFS superblock");
        r.Require(0, Offsets.Size);
        uint magic = r.U32BE(Offsets.sb_magicnum);
        if (magic != Magic) throw r.FieldError(Offsets.sb_magicnum, "sb_magicnum", FieldReader.Hex(magic), "0x58465342 (\"XFSB\")");

        ushort versionNum = r.U16BE(Offsets.sb_versionnum);
        int version = versionNum & VersionNumMask;
        if (version is < 1 or > 5) throw r.FieldError(Offsets.sb_versionnum, "sb_versionnum", FieldReader.Hex(versionNum), "version 4 or 5");
        if (version < 4) throw new UnsupportedFeatureException($"XFS superblock at offset 0x{imageOffset:X}: filesystem version {version} (before v4) is not supported");
        if ((versionNum & VersionDirV2Bit) == 0)
            throw new UnsupportedFeatureException($"XFS superblock at offset 0x{imageOffset:X}: version 1 directories are not supported");

        uint blockSize = r.U32BE(Offsets.sb_blocksize);
        byte blockLog = r.U8(Offsets.sb_blocklog);
        if (blockSize < Limits.MinBlockSize || blockSize > Limits.MaxBlockSize || !BitOperations.IsPow2(blockSize))
            throw r.FieldError(Offsets.sb_blocksize, "sb_blocksize", blockSize, $"a power of two in {Limits.MinBlockSize}..{Limits.MaxBlockSize}");
        if (1u << Math.Min((int)blockLog, 31) != blockSize)
            throw r.FieldError(Offsets.sb_blocklog, "sb_blocklog", blockLog, $"log2(sb_blocksize) = {BitOperations.Log2(blockSize)}");

        ushort sectSize = r.U16BE(Offsets.sb_sectsize);
        if (sectSize < 512 || sectSize > Limits.MaxSectSize || !BitOperations.IsPow2((uint)sectSize))
            throw r.FieldError(Offsets.sb_sectsize, "sb_sectsize", sectSize, $"a power of two in 512..{Limits.MaxSectSize}");
        byte sectLog = r.U8(Offsets.sb_sectlog);
        if (1 << Math.Min((int)sectLog, 30) != sectSize)
            throw r.FieldError(Offsets.sb_sectlog, "sb_sectlog", sectLog, $"log2(sb_sectsize) = {BitOperations.Log2(sectSize)}");

        uint crc = 0;
        if (version == 5)
        {
            r.Require(0, sectSize);
            crc = XfsCrc32c.Stored(bytes, Offsets.sb_crc);
            uint computed = XfsCrc32c.Compute(bytes[..sectSize], Offsets.sb_crc);
            if (crc != computed)
                throw r.FieldError(Offsets.sb_crc, "sb_crc", FieldReader.Hex(crc), $"{FieldReader.Hex(computed)} (crc32c of the superblock sector)");
        }

        ushort inodeSize = r.U16BE(Offsets.sb_inodesize);
        uint minInode = version == 5 ? 512u : Limits.MinInodeSize;
        if (inodeSize < minInode || inodeSize > Limits.MaxInodeSize || !BitOperations.IsPow2((uint)inodeSize) || inodeSize > blockSize)
            throw r.FieldError(Offsets.sb_inodesize, "sb_inodesize", inodeSize, $"a power of two in {minInode}..{Math.Min(Limits.MaxInodeSize, blockSize)}");
        byte inodeLog = r.U8(Offsets.sb_inodelog);
        if (1 << Math.Min((int)inodeLog, 30) != inodeSize)
            throw r.FieldError(Offsets.sb_inodelog, "sb_inodelog", inodeLog, $"log2(sb_inodesize) = {BitOperations.Log2(inodeSize)}");
        ushort inoPBlock = r.U16BE(Offsets.sb_inopblock);
        if (inoPBlock != blockSize / inodeSize)
            throw r.FieldError(Offsets.sb_inopblock, "sb_inopblock", inoPBlock, $"sb_blocksize / sb_inodesize = {blockSize / inodeSize}");
        byte inoPBLog = r.U8(Offsets.sb_inopblog);
        if (inoPBLog != blockLog - inodeLog)
            throw r.FieldError(Offsets.sb_inopblog, "sb_inopblog", inoPBLog, $"sb_blocklog - sb_inodelog = {blockLog - inodeLog}");

        uint agBlocks = r.U32BE(Offsets.sb_agblocks);
        if (agBlocks < Limits.MinAgBlocks)
            throw r.FieldError(Offsets.sb_agblocks, "sb_agblocks", agBlocks, $"at least {Limits.MinAgBlocks}");
        byte agBlkLog = r.U8(Offsets.sb_agblklog);
        int wantAgBlkLog = BitOperations.Log2(agBlocks - 1) + 1; // ceil(log2(agblocks))
        if (agBlkLog != wantAgBlkLog)
            throw r.FieldError(Offsets.sb_agblklog, "sb_agblklog", agBlkLog, $"ceil(log2(sb_agblocks)) = {wantAgBlkLog}");
        uint agCount = r.U32BE(Offsets.sb_agcount);
        if (agCount == 0 || agCount > Limits.MaxAgCount)
            throw r.FieldError(Offsets.sb_agcount, "sb_agcount", agCount, $"1..{Limits.MaxAgCount}");
        if (agBlkLog + inoPBLog > 56 || (long)agBlkLog + inoPBLog + BitOperations.Log2(agCount) + 1 > 64)
            throw r.FieldError(Offsets.sb_agblklog, "sb_agblklog", agBlkLog, "small enough for 64-bit inode numbers");

        ulong dBlocks = r.U64BE(Offsets.sb_dblocks);
        ulong agSpan = (ulong)agCount * agBlocks;
        if (dBlocks > agSpan || dBlocks <= agSpan - agBlocks)
            throw r.FieldError(Offsets.sb_dblocks, "sb_dblocks", dBlocks, $"in ({agSpan - agBlocks}, {agSpan}] for {agCount} AGs of {agBlocks} blocks");

        if (dBlocks > (ulong)long.MaxValue / blockSize)
            throw r.FieldError(Offsets.sb_dblocks, "sb_dblocks", dBlocks, $"at most {(ulong)long.MaxValue / blockSize} blocks of {blockSize} bytes");

        byte dirBlkLog = r.U8(Offsets.sb_dirblklog);
        if (dirBlkLog > 16 || (ulong)blockSize << dirBlkLog > Limits.MaxDirBlockSize)
            throw r.FieldError(Offsets.sb_dirblklog, "sb_dirblklog", dirBlkLog, $"a directory block of at most {Limits.MaxDirBlockSize} bytes");

        byte inProgress = r.U8(Offsets.sb_inprogress);
        if (inProgress != 0) throw r.FieldError(Offsets.sb_inprogress, "sb_inprogress", inProgress, "0 (mkfs finished)");

        uint features2 = (versionNum & VersionMoreBitsBit) != 0 ? r.U32BE(Offsets.sb_features2) : 0;
        uint compat = 0, roCompat = 0, incompat = 0, logIncompat = 0;
        if (version == 5)
        {
            compat = r.U32BE(Offsets.sb_features_compat);
            roCompat = r.U32BE(Offsets.sb_features_ro_compat);
            incompat = r.U32BE(Offsets.sb_features_incompat);
            logIncompat = r.U32BE(Offsets.sb_features_log_incompat);
            CheckIncompat(incompat, imageOffset);
        }

        var uuidBytes = r.Bytes(Offsets.sb_uuid, 16);
        var uuid = new Guid(uuidBytes, bigEndian: true);
        var label = r.CString(Offsets.sb_fname, 12);

        var sb = new XfsSuperblock(blockSize, dBlocks, r.U64BE(Offsets.sb_rblocks), uuid, uuid.ToString("D", CultureInfo.InvariantCulture),
            0, agBlocks, agCount, versionNum, sectSize, inodeSize, inoPBlock, label, blockLog, inodeLog, inoPBLog, agBlkLog,
            dirBlkLog, features2, compat, roCompat, incompat, logIncompat, crc);

        ulong rootIno = r.U64BE(Offsets.sb_rootino);
        if (!sb.IsValidIno(rootIno))
            throw r.FieldError(Offsets.sb_rootino, "sb_rootino", rootIno, "an inode number inside the filesystem");
        return sb with { RootIno = rootIno };
    }

    private static void CheckIncompat(uint incompat, long imageOffset)
    {
        uint known = 0;
        foreach (var (bit, name, readable) in IncompatFeatures)
        {
            known |= bit;
            if ((incompat & bit) != 0 && !readable)
                throw new UnsupportedFeatureException($"XFS superblock at offset 0x{imageOffset:X}: incompatible feature '{name}' (sb_features_incompat bit {FieldReader.Hex(bit)}) is not supported");
        }
        uint unknown = incompat & ~known;
        if (unknown != 0)
            throw new UnsupportedFeatureException($"XFS superblock at offset 0x{imageOffset:X}: unknown incompatible features {FieldReader.Hex(unknown)} in sb_features_incompat");
    }

    /// <summary>Splits an inode number into (AG, block in AG, inode in block) using sb_agblklog and sb_inopblog.</summary>
    public (ulong Ag, ulong AgBlock, ulong Offset) DecodeIno(ulong ino) =>
        (ino >> (AgBlkLog + InoPBLog), (ino >> InoPBLog) & ((1UL << AgBlkLog) - 1), ino & ((1UL << InoPBLog) - 1));

    public bool IsValidIno(ulong ino)
    {
        var (ag, agBlock, _) = DecodeIno(ino);
        if (ag >= AgCount || agBlock >= AgBlocks) return false;
        return ag * AgBlocks + agBlock < DBlocks;
    }

    /// <summary>Byte offset of inode <paramref name="ino"/> (caller checked <see cref="IsValidIno"/>).</summary>
    public long InodeByteOffset(ulong ino)
    {
        var (ag, agBlock, offset) = DecodeIno(ino);
        return checked((long)((ag * AgBlocks + agBlock) * BlockSize + offset * InodeSize));
    }

    /// <summary>Linear block number (daddr in fs blocks) of an fsblock number, or null when outside the filesystem.</summary>
    public ulong? FsbToLinear(ulong fsb, ulong count)
    {
        ulong ag = fsb >> AgBlkLog;
        ulong agBlock = fsb & ((1UL << AgBlkLog) - 1);
        if (ag >= AgCount || agBlock >= AgBlocks || count > AgBlocks - agBlock) return null;
        ulong linear = ag * AgBlocks + agBlock;
        if (linear >= DBlocks || count > DBlocks - linear) return null;
        return linear;
    }
}
