using System.Buffers.Binary;

namespace DomBoot.Storage.Filesystems.Xfs;

/// <summary>
/// CRC-32C (Castagnoli) as XFS v5 metadata uses it (XFS Algorithms &amp; Data Structures, "Metadata Checksums"):
/// seed 0xFFFFFFFF, the checksum field itself counted as zeros, the final value inverted and stored little-endian.
/// </summary>
internal static class XfsCrc32c
{
    /// <summary>The checksum of <paramref name="bytes"/> with the 4 bytes at <paramref name="crcOffset"/> taken as zero.</summary>
    public static uint Compute(ReadOnlySpan<byte> bytes, int crcOffset)
    {
        uint crc = Update(0xFFFFFFFFu, bytes[..crcOffset]);
        crc = Update(crc, stackalloc byte[4]);
        crc = Update(crc, bytes[(crcOffset + 4)..]);
        return ~crc;
    }

    /// <summary>The stored checksum (little-endian) at <paramref name="crcOffset"/>.</summary>
    public static uint Stored(ReadOnlySpan<byte> bytes, int crcOffset) => BinaryPrimitives.ReadUInt32LittleEndian(bytes[crcOffset..]);

    private static uint Update(uint crc, ReadOnlySpan<byte> data) => Formats.Binary.Crc32C.Update(crc, data);
}
