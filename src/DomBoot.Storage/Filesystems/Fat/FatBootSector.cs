using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Filesystems.Fat;

public enum FatType { Fat12 = 12, Fat16 = 16, Fat32 = 32 }

/// <summary>
/// The FAT boot sector and BIOS parameter block (Microsoft "FAT: General Overview of On-Disk Format" v1.03,
/// section 3: BPB common fields, 3.1 FAT12/16 extended BPB, 3.2 FAT32 extended BPB). Field names follow the
/// spec (BPB_BytsPerSec -> BytsPerSec). The FAT type comes from the cluster count (section 3.5), except that a
/// FAT32-layout BPB (BPB_FATSz16 = 0) is FAT32 whatever its cluster count, as Linux and mkfs.fat treat it.
/// </summary>
public sealed record FatBootSector
{
    public static class Offsets
    {
        public const int JmpBoot = 0;
        public const int OemName = 3;
        public const int BytsPerSec = 11;
        public const int SecPerClus = 13;
        public const int RsvdSecCnt = 14;
        public const int NumFATs = 16;
        public const int RootEntCnt = 17;
        public const int TotSec16 = 19;
        public const int Media = 21;
        public const int FATSz16 = 22;
        public const int SecPerTrk = 24;
        public const int NumHeads = 26;
        public const int HiddSec = 28;
        public const int TotSec32 = 32;

        // FAT12/FAT16 extended BPB.
        public const int DrvNum16 = 36;
        public const int BootSig16 = 38;
        public const int VolID16 = 39;
        public const int VolLab16 = 43;
        public const int FilSysType16 = 54;

        // FAT32 extended BPB.
        public const int FATSz32 = 36;
        public const int ExtFlags = 40;
        public const int FSVer = 42;
        public const int RootClus = 44;
        public const int FSInfo = 48;
        public const int BkBootSec = 50;
        public const int DrvNum32 = 64;
        public const int BootSig32 = 66;
        public const int VolID32 = 67;
        public const int VolLab32 = 71;
        public const int FilSysType32 = 82;

        public const int Signature = 510;
    }

    public static class Limits
    {
        public const int SectorBytes = 512;
        /// <summary>Spec 3.5: fewer than 4085 clusters is FAT12, fewer than 65525 FAT16.</summary>
        public const uint MaxFat12Clusters = 4084;
        public const uint MaxFat16Clusters = 65524;
        /// <summary>Cluster numbers 0x0FFFFFF7 and up are reserved/bad/EOC on FAT32, so at most 0x0FFFFFF5 data clusters.</summary>
        public const uint MaxFat32Clusters = 0x0FFFFFF5;
        /// <summary>Spec 3.1: a cluster is at most 32 KiB (64 KiB tolerated by some implementations, as Linux does).</summary>
        public const int MaxClusterBytes = 64 * 1024;
        public const int MaxRootEntCnt = 65535;
    }

    public required ReadOnlyMemory<byte> JmpBoot { get; init; }
    public required string OemName { get; init; }
    public required ushort BytsPerSec { get; init; }
    public required byte SecPerClus { get; init; }
    public required ushort RsvdSecCnt { get; init; }
    public required byte NumFATs { get; init; }
    public required ushort RootEntCnt { get; init; }
    public required ushort TotSec16 { get; init; }
    public required byte Media { get; init; }
    public required ushort FATSz16 { get; init; }
    public required ushort SecPerTrk { get; init; }
    public required ushort NumHeads { get; init; }
    public required uint HiddSec { get; init; }
    public required uint TotSec32 { get; init; }
    public required uint FATSz32 { get; init; }
    public required ushort ExtFlags { get; init; }
    public required ushort FSVer { get; init; }
    public required uint RootClus { get; init; }
    public required ushort FSInfo { get; init; }
    public required ushort BkBootSec { get; init; }
    public required byte DrvNum { get; init; }
    public required byte BootSig { get; init; }
    public required uint VolID { get; init; }
    public required string VolLab { get; init; }
    public required string FilSysType { get; init; }

    // Derived values (spec 3.5).
    public required FatType Type { get; init; }
    public required uint FatSizeInSectors { get; init; }
    public required uint TotalSectors { get; init; }
    public required uint RootDirSectors { get; init; }
    public required uint FirstDataSector { get; init; }
    public required uint CountOfClusters { get; init; }

    public int ClusterSizeInBytes => BytsPerSec * SecPerClus;

    /// <summary>BS_VolID and BS_VolLab are present when BS_BootSig is 0x29 (0x28 carries only the serial).</summary>
    public bool HasVolumeId => BootSig is 0x28 or 0x29;

    public bool HasVolumeLabel => BootSig == 0x29;

    /// <summary>The serial as blkid prints it: "DEAD-BEEF".</summary>
    public string? SerialText => HasVolumeId ? $"{VolID >> 16:X4}-{VolID & 0xFFFF:X4}" : null;

    /// <summary>The cheap probe: jump instruction, 0x55AA signature, a legal sector size and cluster size.</summary>
    public static bool HasMagic(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < Limits.SectorBytes) return false;
        if (bytes[Offsets.JmpBoot] is not (0xEB or 0xE9)) return false;
        if (bytes[Offsets.Signature] != 0x55 || bytes[Offsets.Signature + 1] != 0xAA) return false;
        ushort bps = (ushort)(bytes[Offsets.BytsPerSec] | bytes[Offsets.BytsPerSec + 1] << 8);
        byte spc = bytes[Offsets.SecPerClus];
        return bps is 512 or 1024 or 2048 or 4096 && spc != 0 && (spc & (spc - 1)) == 0
            && bytes[Offsets.NumFATs] != 0 && (bytes[Offsets.RsvdSecCnt] | bytes[Offsets.RsvdSecCnt + 1]) != 0;
    }

    /// <summary>Parses and cross-checks the first sector of a FAT volume; <paramref name="volumeBytes"/> bounds the layout.</summary>
    public static FatBootSector Parse(ReadOnlySpan<byte> bytes, long imageOffset, long volumeBytes = long.MaxValue)
    {
        const string S = "FAT boot sector";
        var r = new FieldReader(bytes, imageOffset, S);
        r.Require(0, Limits.SectorBytes);
        if (r.U16(Offsets.Signature) != 0xAA55)
            throw r.FieldError(Offsets.Signature, "signature", FieldReader.Hex(r.U16(Offsets.Signature)), "0xAA55");
        if (r.U8(Offsets.JmpBoot) is not (0xEB or 0xE9))
            throw r.FieldError(Offsets.JmpBoot, "BS_jmpBoot[0]", FieldReader.Hex(r.U8(Offsets.JmpBoot)), "0xEB or 0xE9");

        ushort bps = r.U16(Offsets.BytsPerSec);
        if (bps is not (512 or 1024 or 2048 or 4096))
            throw r.FieldError(Offsets.BytsPerSec, "BPB_BytsPerSec", bps, "512, 1024, 2048 or 4096");
        byte spc = r.U8(Offsets.SecPerClus);
        if (spc == 0 || (spc & (spc - 1)) != 0)
            throw r.FieldError(Offsets.SecPerClus, "BPB_SecPerClus", spc, "a power of two from 1 to 128");
        if (bps * spc > Limits.MaxClusterBytes)
            throw r.FieldError(Offsets.SecPerClus, "cluster size", bps * spc, $"at most {Limits.MaxClusterBytes} bytes");
        ushort rsvd = r.U16(Offsets.RsvdSecCnt);
        if (rsvd == 0) throw r.FieldError(Offsets.RsvdSecCnt, "BPB_RsvdSecCnt", 0, "at least 1");
        byte numFats = r.U8(Offsets.NumFATs);
        if (numFats == 0) throw r.FieldError(Offsets.NumFATs, "BPB_NumFATs", 0, "at least 1");
        ushort rootEnt = r.U16(Offsets.RootEntCnt);
        ushort tot16 = r.U16(Offsets.TotSec16);
        uint tot32 = r.U32(Offsets.TotSec32);
        ushort fatSz16 = r.U16(Offsets.FATSz16);
        bool fat32Layout = fatSz16 == 0;
        uint fatSz32 = fat32Layout ? r.U32(Offsets.FATSz32) : 0;
        uint fatSz = fat32Layout ? fatSz32 : fatSz16;
        if (fatSz == 0) throw r.FieldError(Offsets.FATSz32, "BPB_FATSz32", 0, "non-zero when BPB_FATSz16 is 0");
        uint totSec = tot16 != 0 ? tot16 : tot32;
        int totOffset = tot16 != 0 ? Offsets.TotSec16 : Offsets.TotSec32;
        if (totSec == 0) throw r.FieldError(Offsets.TotSec32, "BPB_TotSec32", 0, "non-zero when BPB_TotSec16 is 0");
        if (fat32Layout && rootEnt != 0)
            throw r.FieldError(Offsets.RootEntCnt, "BPB_RootEntCnt", rootEnt, "0 on FAT32");
        if (!fat32Layout && rootEnt == 0)
            throw r.FieldError(Offsets.RootEntCnt, "BPB_RootEntCnt", 0, "non-zero on FAT12/FAT16");

        uint rootDirSectors;
        ulong firstData;
        checked
        {
            rootDirSectors = (uint)((rootEnt * 32UL + bps - 1) / bps);
            firstData = rsvd + (ulong)numFats * fatSz + rootDirSectors;
        }
        if (firstData >= totSec)
            throw r.FieldError(totOffset, "total sector count", totSec, $"more than the {firstData} sectors before the data region");
        uint count = (uint)((totSec - firstData) / spc);
        if (count == 0) throw r.FieldError(totOffset, "count of clusters", 0, "at least 1");

        FatType type = fat32Layout ? FatType.Fat32
            : count <= Limits.MaxFat12Clusters ? FatType.Fat12
            : count <= Limits.MaxFat16Clusters ? FatType.Fat16
            : throw r.FieldError(Offsets.FATSz16, "count of clusters", count, $"at most {Limits.MaxFat16Clusters} with a FAT12/FAT16 BPB");
        if (count > Limits.MaxFat32Clusters)
            throw r.FieldError(totOffset, "count of clusters", count, $"at most {Limits.MaxFat32Clusters}");

        // The FAT must have an entry for every cluster (2 .. count+1).
        ulong fatEntriesNeeded = (ulong)count + 2;
        ulong fatBits = (ulong)fatSz * bps * 8;
        if (fatBits / (ulong)type < fatEntriesNeeded)
            throw r.FieldError(fat32Layout ? Offsets.FATSz32 : Offsets.FATSz16, fat32Layout ? "BPB_FATSz32" : "BPB_FATSz16", fatSz,
                $"room for {fatEntriesNeeded} FAT{(int)type} entries");
        if (firstData * bps >= (ulong)volumeBytes)
            throw r.FieldError(totOffset, "data region start", firstData * bps, $"within the {volumeBytes}-byte volume");

        uint rootClus = 0;
        ushort extFlags = 0, fsVer = 0, fsInfo = 0, bkBoot = 0;
        int drv, sig, volId, volLab, fsType;
        if (fat32Layout)
        {
            extFlags = r.U16(Offsets.ExtFlags);
            fsVer = r.U16(Offsets.FSVer);
            if (fsVer != 0) throw r.FieldError(Offsets.FSVer, "BPB_FSVer", FieldReader.Hex(fsVer), "0x0");
            rootClus = r.U32(Offsets.RootClus);
            if (rootClus < 2 || rootClus > count + 1)
                throw r.FieldError(Offsets.RootClus, "BPB_RootClus", rootClus, $"a cluster from 2 to {count + 1}");
            if ((extFlags & 0x80) != 0 && (extFlags & 0xF) >= numFats)
                throw r.FieldError(Offsets.ExtFlags, "BPB_ExtFlags active FAT", extFlags & 0xF, $"below BPB_NumFATs ({numFats})");
            fsInfo = r.U16(Offsets.FSInfo);
            bkBoot = r.U16(Offsets.BkBootSec);
            (drv, sig, volId, volLab, fsType) = (Offsets.DrvNum32, Offsets.BootSig32, Offsets.VolID32, Offsets.VolLab32, Offsets.FilSysType32);
        }
        else
        {
            (drv, sig, volId, volLab, fsType) = (Offsets.DrvNum16, Offsets.BootSig16, Offsets.VolID16, Offsets.VolLab16, Offsets.FilSysType16);
        }

        return new FatBootSector
        {
            JmpBoot = r.Bytes(Offsets.JmpBoot, 3).ToArray(),
            OemName = r.CString(Offsets.OemName, 8),
            BytsPerSec = bps,
            SecPerClus = spc,
            RsvdSecCnt = rsvd,
            NumFATs = numFats,
            RootEntCnt = rootEnt,
            TotSec16 = tot16,
            Media = r.U8(Offsets.Media),
            FATSz16 = fatSz16,
            SecPerTrk = r.U16(Offsets.SecPerTrk),
            NumHeads = r.U16(Offsets.NumHeads),
            HiddSec = r.U32(Offsets.HiddSec),
            TotSec32 = tot32,
            FATSz32 = fatSz32,
            ExtFlags = extFlags,
            FSVer = fsVer,
            RootClus = rootClus,
            FSInfo = fsInfo,
            BkBootSec = bkBoot,
            DrvNum = r.U8(drv),
            BootSig = r.U8(sig),
            VolID = r.U32(volId),
            VolLab = r.CString(volLab, 11).TrimEnd(' '),
            FilSysType = r.CString(fsType, 8).TrimEnd(' '),
            Type = type,
            FatSizeInSectors = fatSz,
            TotalSectors = totSec,
            RootDirSectors = rootDirSectors,
            FirstDataSector = (uint)firstData,
            CountOfClusters = count,
        };
    }
}
