namespace DomBoot.Storage.Filesystems.Ext;

/// <summary>
/// CRC-32C as ext4's metadata_csum uses it: the raw register (crc32c_le in the kernel), with no final inversion;
/// callers seed with ~0 or the filesystem's checksum seed. The arithmetic is the shared <see cref="Formats.Binary.Crc32C"/>.
/// </summary>
internal static class Crc32c
{
    /// <summary>Continues the register <paramref name="crc"/> over <paramref name="data"/> (kernel crc32c_le).</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data) => Formats.Binary.Crc32C.Update(crc, data);

    /// <summary>The standard CRC-32C of <paramref name="data"/> (initial ~0, final inversion), e.g. 0xE3069283 for "123456789".</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Formats.Binary.Crc32C.Compute(data);
}
