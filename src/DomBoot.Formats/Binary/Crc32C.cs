using System.Buffers.Binary;
using System.Numerics;

namespace DomBoot.Formats.Binary;

/// <summary>CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) as ext4, XFS and btrfs metadata use it; SSE4.2/ARMv8 where present.</summary>
public static class Crc32C
{
    /// <summary>Continues a CRC over <paramref name="data"/> (no pre- or post-inversion).</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        int i = 0;
        for (; i + 8 <= data.Length; i += 8)
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
        for (; i < data.Length; i++)
            crc = BitOperations.Crc32C(crc, data[i]);
        return crc;
    }

    /// <summary>The standard CRC-32C: seed 0xFFFFFFFF, result inverted.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => ~Update(uint.MaxValue, data);
}
