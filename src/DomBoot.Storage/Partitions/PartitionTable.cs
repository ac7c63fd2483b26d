using System.Globalization;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;
using DomBoot.Storage.Probing;

namespace DomBoot.Storage.Partitions;

/// <summary>
/// Reads a disk's partitioning the way Linux does: GPT when the MBR carries a 0xEE entry (protective or hybrid),
/// else MBR with its extended/logical chain, else no table (the whole disk is one volume).
/// </summary>
public static class PartitionTable
{
    public static class Limits
    {
        /// <summary>Linux's DISK_MAX_PARTS.</summary>
        public const int MaxLogicalPartitions = 256;
    }

    private static readonly int[] SectorSizes = [512, 4096];

    public static PartitionLayout Read(IBlockReader disk, int diskIndex = 0)
    {
        ArgumentNullException.ThrowIfNull(disk);
        string linuxDisk = DiskNames.Linux(diskIndex), grubDisk = DiskNames.Grub(diskIndex);
        if (disk.Length >= MbrBootSector.Size)
        {
            var sector0 = new byte[MbrBootSector.Size];
            disk.ReadExactly(0, sector0);
            // A FAT boot sector also ends in 0x55AA; libblkid does not take it for a partition table either.
            if (MbrBootSector.HasMagic(sector0) && !FatProbe.HasMagic(sector0))
            {
                var mbr = MbrBootSector.Parse(sector0, 0);
                if (mbr.Entries.Any(e => e.IsProtectiveGpt && !e.IsEmpty))
                    return ReadGpt(disk, linuxDisk, grubDisk);
                return ReadMbr(disk, mbr, linuxDisk, grubDisk);
            }
        }
        var whole = new Volume(0, VolumeKind.WholeDisk, 0, disk.Length, null, null, "whole disk", null, false, 0, null,
            linuxDisk, $"({grubDisk})");
        return new PartitionLayout("none", 512, null, false, [whole]);
    }

    private static PartitionLayout ReadMbr(IBlockReader disk, MbrBootSector mbr, string linuxDisk, string grubDisk)
    {
        const int sector = 512;
        long diskSectors = disk.Length / sector;
        string sig = mbr.DiskSignature.ToString("x8", CultureInfo.InvariantCulture);
        var volumes = new List<Volume>();
        MbrPartitionEntry? extended = null;
        for (int i = 0; i < 4; i++)
        {
            var e = mbr.Entries[i];
            if (e.IsEmpty) continue;
            long at = MbrBootSector.Offsets.PartitionTable + i * MbrPartitionEntry.Size;
            CheckInside(e.FirstLba, e.SectorCount, diskSectors, $"MBR partition {i + 1}", at);
            var kind = e.IsExtended ? VolumeKind.Extended : VolumeKind.Primary;
            if (e.IsExtended) extended ??= e;
            volumes.Add(MbrVolume(i + 1, kind, e, e.FirstLba, sig, linuxDisk, grubDisk));
        }
        if (extended is not null) ReadLogicals(disk, extended, diskSectors, sig, linuxDisk, grubDisk, volumes);
        return new PartitionLayout("dos", sector, sig, false, volumes);
    }

    private static void ReadLogicals(IBlockReader disk, MbrPartitionEntry extended, long diskSectors, string sig,
        string linuxDisk, string grubDisk, List<Volume> volumes)
    {
        const int sector = 512;
        long extStart = extended.FirstLba, extEnd = extStart + extended.SectorCount;
        var visited = new HashSet<long>();
        var buf = new byte[sector];
        long ebr = extStart;
        int number = 5;
        long linkOffset = -1;
        while (true)
        {
            long ebrOffset = ebr * sector;
            if (ebr < extStart || ebr >= extEnd || ebr >= diskSectors)
                throw new MalformedDataException("EBR link", linkOffset,
                    $"points to LBA {ebr}, outside the extended partition (LBA {extStart}..{extEnd - 1}) or the disk");
            if (!visited.Add(ebr))
                throw new MalformedDataException("EBR link", linkOffset, $"loops back to the EBR at LBA {ebr}");
            if (number - 5 >= Limits.MaxLogicalPartitions)
                throw new MalformedDataException("EBR chain", ebrOffset, $"has more than {Limits.MaxLogicalPartitions} logical partitions");
            disk.ReadExactly(ebrOffset, buf);
            if (buf[MbrBootSector.Offsets.BootSignature] != 0x55 || buf[MbrBootSector.Offsets.BootSignature + 1] != 0xAA)
                return; // Linux stops quietly at an EBR without a signature (e.g. an empty extended partition)
            var table = MbrBootSector.Parse(buf, ebrOffset);
            long? next = null;
            bool dataSeen = false;
            for (int i = 0; i < 4; i++)
            {
                var e = table.Entries[i];
                long at = ebrOffset + MbrBootSector.Offsets.PartitionTable + i * MbrPartitionEntry.Size;
                if (e.IsEmpty) continue;
                if (e.IsExtended)
                {
                    if (next is null)
                    {
                        next = extStart + e.FirstLba;
                        linkOffset = at;
                    }
                    continue;
                }
                if (dataSeen) continue; // one logical partition per EBR, as every partitioner writes
                dataSeen = true;
                long start = ebr + e.FirstLba;
                CheckInside(start, e.SectorCount, diskSectors, $"logical partition {number}", at);
                volumes.Add(MbrVolume(number, VolumeKind.Logical, e, start, sig, linuxDisk, grubDisk));
                number++;
            }
            if (next is null) return;
            ebr = next.Value;
        }
    }

    private static void CheckInside(long firstLba, long sectors, long diskSectors, string what, long entryOffset)
    {
        if (firstLba > diskSectors || sectors > diskSectors - firstLba)
            throw new MalformedDataException(what, entryOffset,
                $"LBA {firstLba}+{sectors} extends past the end of the {diskSectors}-sector disk");
    }

    private static Volume MbrVolume(int number, VolumeKind kind, MbrPartitionEntry e, long firstLba, string sig,
        string linuxDisk, string grubDisk) =>
        new(number, kind, firstLba * 512, (long)e.SectorCount * 512, e.Type, null, PartitionTypes.MbrName(e.Type), null,
            e.IsActive, 0, $"{sig}-{number:x2}", linuxDisk + number.ToString(CultureInfo.InvariantCulture),
            $"({grubDisk},msdos{number})");

    private static PartitionLayout ReadGpt(IBlockReader disk, string linuxDisk, string grubDisk)
    {
        MalformedDataException? firstError = null;
        bool anySignature = false;
        foreach (int sectorSize in SectorSizes)
        {
            long diskSectors = disk.Length / sectorSize;
            if (diskSectors < 3) continue;
            var buf = new byte[sectorSize];
            disk.ReadExactly(sectorSize, buf);
            bool primarySig = GptHeader.HasMagic(buf);
            if (primarySig)
            {
                anySignature = true;
                try
                {
                    return GptLayout(disk, buf, 1, sectorSize, false, linuxDisk, grubDisk);
                }
                catch (MalformedDataException ex)
                {
                    firstError ??= ex;
                }
            }
            long last = diskSectors - 1;
            disk.ReadExactly(last * sectorSize, buf);
            if (!GptHeader.HasMagic(buf)) continue;
            anySignature = true;
            try
            {
                return GptLayout(disk, buf, (ulong)last, sectorSize, true, linuxDisk, grubDisk);
            }
            catch (MalformedDataException ex)
            {
                firstError ??= ex;
            }
            if (primarySig) break; // the sector size is known; both headers are bad
        }
        if (firstError is not null) throw firstError;
        _ = anySignature;
        throw new MalformedDataException("protective MBR", MbrBootSector.Offsets.PartitionTable,
            "has a type 0xEE entry but no GPT header is found at LBA 1 or the last LBA (512- or 4096-byte sectors)");
    }

    private static PartitionLayout GptLayout(IBlockReader disk, byte[] headerSector, ulong lba, int sectorSize, bool backup,
        string linuxDisk, string grubDisk)
    {
        ulong diskSectors = (ulong)(disk.Length / sectorSize);
        long headerOffset = (long)lba * sectorSize;
        var h = GptHeader.Parse(headerSector, headerOffset, lba, diskSectors);
        long arrayOffset = checked((long)h.PartitionEntryLba * sectorSize);
        var array = new byte[(long)h.NumberOfPartitionEntries * h.SizeOfPartitionEntry];
        disk.ReadExactly(arrayOffset, array);
        uint crc = Crc32.Compute(array);
        if (crc != h.PartitionEntryArrayCrc32)
            throw MalformedDataException.Field("GPT header", headerOffset + GptHeader.Offsets.PartitionEntryArrayCrc32,
                "partition entry array CRC32", FieldReader.Hex(h.PartitionEntryArrayCrc32), $"{FieldReader.Hex(crc)} (computed)");
        var volumes = new List<Volume>();
        for (int i = 0; i < h.NumberOfPartitionEntries; i++)
        {
            int at = i * (int)h.SizeOfPartitionEntry;
            var e = GptPartitionEntry.Parse(array.AsSpan(at, (int)h.SizeOfPartitionEntry), arrayOffset + at, i);
            if (e.IsUnused) continue;
            if (e.EndingLba >= diskSectors)
                throw MalformedDataException.Field($"GPT entry {i + 1}", arrayOffset + at + GptPartitionEntry.Offsets.EndingLba,
                    "EndingLBA", e.EndingLba, $"below the disk's {diskSectors} sectors");
            int number = i + 1;
            volumes.Add(new Volume(number, VolumeKind.Gpt, (long)e.StartingLba * sectorSize,
                (long)(e.EndingLba - e.StartingLba + 1) * sectorSize, null, e.PartitionTypeGuid,
                PartitionTypes.GptName(e.PartitionTypeGuid), e.PartitionName, (e.Attributes & 4) != 0, e.Attributes,
                e.UniquePartitionGuid.ToString(), linuxDisk + number.ToString(CultureInfo.InvariantCulture),
                $"({grubDisk},gpt{number})"));
        }
        return new PartitionLayout("gpt", sectorSize, h.DiskGuid.ToString(), backup, volumes);
    }
}
