using DomBoot.Formats.Binary;

namespace DomBoot.Storage.Partitions;

/// <summary>One 16-byte MBR / EBR partition table entry (the classic PC partition table, LBA fields only).</summary>
public sealed record MbrPartitionEntry(byte Status, byte Type, uint FirstLba, uint SectorCount)
{
    public const int Size = 16;

    public static class Offsets
    {
        public const int Status = 0;
        public const int Type = 4;
        public const int FirstLba = 8;
        public const int SectorCount = 12;
    }

    public bool IsActive => Status == 0x80;
    public bool IsEmpty => SectorCount == 0;
    public bool IsExtended => Type is 0x05 or 0x0F or 0x85;
    public bool IsProtectiveGpt => Type == 0xEE;

    public static MbrPartitionEntry Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "MBR partition entry");
        r.Require(0, Size);
        return new MbrPartitionEntry(r.U8(Offsets.Status), r.U8(Offsets.Type), r.U32(Offsets.FirstLba), r.U32(Offsets.SectorCount));
    }
}

/// <summary>Sector 0 of a PC-partitioned disk (or an EBR): disk signature, four entries, 0x55AA.</summary>
public sealed record MbrBootSector(uint DiskSignature, IReadOnlyList<MbrPartitionEntry> Entries)
{
    public static class Offsets
    {
        public const int DiskSignature = 440;
        public const int PartitionTable = 446;
        public const int BootSignature = 510;
    }

    public const int Size = 512;

    /// <summary>0x55AA present and every status byte 0x00 or 0x80, as libblkid and Linux require.</summary>
    public static bool HasMagic(ReadOnlySpan<byte> sector)
    {
        if (sector.Length < Size || sector[Offsets.BootSignature] != 0x55 || sector[Offsets.BootSignature + 1] != 0xAA) return false;
        for (int i = 0; i < 4; i++)
            if (sector[Offsets.PartitionTable + i * MbrPartitionEntry.Size] is not (0x00 or 0x80)) return false;
        return true;
    }

    public static MbrBootSector Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "MBR");
        r.Require(0, Size);
        ushort sig = r.U16BE(Offsets.BootSignature);
        if (sig != 0x55AA) throw r.FieldError(Offsets.BootSignature, "boot signature", FieldReader.Hex(sig), "0x55AA");
        var entries = new MbrPartitionEntry[4];
        for (int i = 0; i < 4; i++)
        {
            int at = Offsets.PartitionTable + i * MbrPartitionEntry.Size;
            entries[i] = MbrPartitionEntry.Parse(r.Bytes(at, MbrPartitionEntry.Size), r.Absolute(at));
        }
        return new MbrBootSector(r.U32(Offsets.DiskSignature), entries);
    }
}
