namespace DomBoot.Storage.Filesystems.Btrfs;

/// <summary>CRC-32C (Castagnoli), as btrfs uses it for superblock and tree-block checksums and for name hashes.</summary>
internal static class BtrfsCrc32C
{
    /// <summary>Raw accumulation without pre/post inversion (the kernel's crc32c(seed, data)).</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data) => Formats.Binary.Crc32C.Update(crc, data);

    /// <summary>The standard digest (seed ~0, final inversion) stored in btrfs csum fields.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => ~Update(~0u, data);

    /// <summary>btrfs_name_hash: crc32c seeded with ~1, no final inversion; the offset of DIR_ITEM keys.</summary>
    public static uint NameHash(ReadOnlySpan<byte> name) => Update(~1u, name);
}
