using System.Text;
using DomBoot.Formats.Binary;

namespace DomBoot.Storage.Partitions;

/// <summary>One GPT partition entry (UEFI 2.10 section 5.3.3); GUIDs are stored mixed-endian as .NET's Guid(bytes) reads them.</summary>
public sealed record GptPartitionEntry(Guid PartitionTypeGuid, Guid UniquePartitionGuid, ulong StartingLba, ulong EndingLba,
    ulong Attributes, string PartitionName)
{
    public static class Offsets
    {
        public const int PartitionTypeGuid = 0;
        public const int UniquePartitionGuid = 16;
        public const int StartingLba = 32;
        public const int EndingLba = 40;
        public const int Attributes = 48;
        public const int PartitionName = 56;
        public const int PartitionNameBytes = 72;
        public const int MinSize = 128;
    }

    public bool IsUnused => PartitionTypeGuid == Guid.Empty;

    public static GptPartitionEntry Parse(ReadOnlySpan<byte> bytes, long imageOffset, int index = 0)
    {
        var r = new FieldReader(bytes, imageOffset, $"GPT entry {index + 1}");
        r.Require(0, Offsets.MinSize);
        var type = new Guid(r.Bytes(Offsets.PartitionTypeGuid, 16));
        var unique = new Guid(r.Bytes(Offsets.UniquePartitionGuid, 16));
        ulong start = r.U64(Offsets.StartingLba), end = r.U64(Offsets.EndingLba);
        var nameBytes = r.Bytes(Offsets.PartitionName, Offsets.PartitionNameBytes);
        int len = 0;
        while (len + 1 < nameBytes.Length && (nameBytes[len] | nameBytes[len + 1]) != 0) len += 2;
        string name = Encoding.Unicode.GetString(nameBytes[..len]);
        if (type != Guid.Empty && end < start)
            throw r.FieldError(Offsets.EndingLba, "EndingLBA", end, $"at least StartingLBA {start}");
        return new GptPartitionEntry(type, unique, start, end, r.U64(Offsets.Attributes), name);
    }
}
