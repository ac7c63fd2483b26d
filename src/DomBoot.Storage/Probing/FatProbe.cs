using System.Buffers.Binary;
using System.Globalization;

namespace DomBoot.Storage.Probing;

/// <summary>FAT12/16/32 boot sector (Microsoft FAT specification, "Boot Sector and BPB"); serial printed as blkid does ("1234-ABCD").</summary>
internal static class FatProbe
{
    public static class Offsets
    {
        public const int JmpBoot = 0;
        public const int BytsPerSec = 11;
        public const int SecPerClus = 13;
        public const int RsvdSecCnt = 14;
        public const int NumFats = 16;
        public const int RootEntCnt = 17;
        public const int TotSec16 = 19;
        public const int Media = 21;
        public const int FatSz16 = 22;
        public const int TotSec32 = 32;
        public const int VolId16 = 39;
        public const int VolLab16 = 43;
        public const int FilSysType16 = 54;
        public const int FatSz32 = 36;
        public const int VolId32 = 67;
        public const int VolLab32 = 71;
        public const int FilSysType32 = 82;
        public const int Signature = 510;
    }

    public static bool HasMagic(ReadOnlySpan<byte> head)
    {
        if (head.Length < 512 || head[Offsets.Signature] != 0x55 || head[Offsets.Signature + 1] != 0xAA) return false;
        if (head[Offsets.JmpBoot] is not (0xEB or 0xE9)) return false;
        ushort bps = BinaryPrimitives.ReadUInt16LittleEndian(head[Offsets.BytsPerSec..]);
        byte spc = head[Offsets.SecPerClus];
        if (bps is not (512 or 1024 or 2048 or 4096) || spc == 0 || (spc & (spc - 1)) != 0) return false;
        if (BinaryPrimitives.ReadUInt16LittleEndian(head[Offsets.RsvdSecCnt..]) == 0 || head[Offsets.NumFats] == 0) return false;
        if (head[Offsets.Media] is not (0xF0 or >= 0xF8)) return false;
        bool fat32 = BinaryPrimitives.ReadUInt16LittleEndian(head[Offsets.FatSz16..]) == 0;
        return fat32 ? FileSystemProbe.At(head, Offsets.FilSysType32, "FAT32   "u8) : FileSystemProbe.At(head, Offsets.FilSysType16, "FAT"u8);
    }

    public static ProbeResult Read(ReadOnlySpan<byte> head)
    {
        bool fat32 = BinaryPrimitives.ReadUInt16LittleEndian(head[Offsets.FatSz16..]) == 0;
        uint serial = BinaryPrimitives.ReadUInt32LittleEndian(head[(fat32 ? Offsets.VolId32 : Offsets.VolId16)..]);
        string? label = FileSystemProbe.Label(head.Slice(fat32 ? Offsets.VolLab32 : Offsets.VolLab16, 11));
        if (label == "NO NAME") label = null;
        string uuid = string.Create(CultureInfo.InvariantCulture, $"{serial >> 16:X4}-{serial & 0xFFFF:X4}");
        return new ProbeResult("vfat", uuid, label, fat32 ? "FAT32" : FatVersion(head));
    }

    /// <summary>FAT12 vs FAT16 by cluster count, the only rule the spec allows.</summary>
    private static string FatVersion(ReadOnlySpan<byte> head)
    {
        long bps = BinaryPrimitives.ReadUInt16LittleEndian(head[Offsets.BytsPerSec..]);
        long total = BinaryPrimitives.ReadUInt16LittleEndian(head[Offsets.TotSec16..]);
        if (total == 0) total = BinaryPrimitives.ReadUInt32LittleEndian(head[Offsets.TotSec32..]);
        long rootSectors = (BinaryPrimitives.ReadUInt16LittleEndian(head[Offsets.RootEntCnt..]) * 32L + bps - 1) / bps;
        long data = total - BinaryPrimitives.ReadUInt16LittleEndian(head[Offsets.RsvdSecCnt..])
            - head[Offsets.NumFats] * (long)BinaryPrimitives.ReadUInt16LittleEndian(head[Offsets.FatSz16..]) - rootSectors;
        long clusters = Math.Max(0, data) / head[Offsets.SecPerClus];
        return clusters < 4085 ? "FAT12" : "FAT16";
    }
}
