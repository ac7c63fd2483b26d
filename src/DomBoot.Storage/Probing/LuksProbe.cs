using System.Buffers.Binary;

namespace DomBoot.Storage.Probing;

/// <summary>LUKS1/LUKS2 header (cryptsetup LUKS On-Disk Format Specification): UUID is stored as text.</summary>
internal static class LuksProbe
{
    public static class Offsets
    {
        public const int Magic = 0;
        public const int Version = 6;
        public const int Label = 24;
        public const int Uuid = 168;
        public const int UuidSize = 40;
        public const int LabelSize = 48;
    }

    public static bool HasMagic(ReadOnlySpan<byte> head) => head.Length >= 512 && FileSystemProbe.At(head, Offsets.Magic, [0x4C, 0x55, 0x4B, 0x53, 0xBA, 0xBE]);

    public static ProbeResult Read(ReadOnlySpan<byte> head)
    {
        ushort version = BinaryPrimitives.ReadUInt16BigEndian(head[Offsets.Version..]);
        string? uuid = FileSystemProbe.Label(head.Slice(Offsets.Uuid, Offsets.UuidSize));
        string? label = version == 2 ? FileSystemProbe.Label(head.Slice(Offsets.Label, Offsets.LabelSize), trimSpaces: false) : null;
        return new ProbeResult("crypto_LUKS", uuid, label, version.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }
}
