namespace DomBoot.Storage.Filesystems.Ext;

/// <summary>
/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) as ext4's metadata_csum uses it: the raw register
/// (crc32c_le in the kernel), with no final inversion; callers seed with ~0 or the filesystem's checksum seed.
/// </summary>
internal static class Crc32c
{
    private const uint Polynomial = 0x82F63B78;

    private static readonly uint[] Table = BuildTable();

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? (c >> 1) ^ Polynomial : c >> 1;
            table[i] = c;
        }
        return table;
    }

    /// <summary>Continues the register <paramref name="crc"/> over <paramref name="data"/> (kernel crc32c_le).</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data) crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    /// <summary>The standard CRC-32C of <paramref name="data"/> (initial ~0, final inversion), e.g. 0xE3069283 for "123456789".</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => ~Update(uint.MaxValue, data);
}
