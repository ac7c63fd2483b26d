namespace DomBoot.Storage.Filesystems.Btrfs;

/// <summary>Bounds applied to every count, size and depth read from a btrfs volume.</summary>
internal static class BtrfsLimits
{
    /// <summary>BTRFS_MAX_LEVEL is 8: node levels 0..7.</summary>
    public const int MaxLevel = 7;
    public const int MinSectorSize = 4096;
    public const int MaxSectorSize = 65536;
    public const int MinNodeSize = 4096;
    public const int MaxNodeSize = 65536;
    /// <summary>BTRFS_SYSTEM_CHUNK_ARRAY_SIZE.</summary>
    public const int SysChunkArraySize = 2048;
    /// <summary>Stripes per chunk we accept (RAID1C4 has 4; RAID0/10/5/6 more, bounded by devices).</summary>
    public const int MaxStripes = 256;
    public const int MaxChunks = 1 << 16;
    public const int NodeCacheCapacity = 512;
    public const int ExtentCacheCapacity = 16;
    /// <summary>BTRFS_NAME_LEN.</summary>
    public const int MaxNameBytes = 255;
    /// <summary>PATH_MAX - 1: the longest symlink target Linux stores.</summary>
    public const int MaxSymlinkBytes = 4095;
    /// <summary>BTRFS_MAX_COMPRESSED and BTRFS_MAX_UNCOMPRESSED: 128 KiB.</summary>
    public const int MaxCompressedBytes = 128 * 1024;
    /// <summary>MAX_LFS_FILESIZE.</summary>
    public const long MaxFileSize = long.MaxValue;
    public const int MaxDirectoryEntries = 1 << 20;
    public const int MaxSubvolumes = 1 << 16;
    public const int MaxSubvolumeDepth = 256;
    public const int MaxDirectoryDepth = 4096;
}
