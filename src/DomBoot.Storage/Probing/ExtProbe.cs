using System.Buffers.Binary;

namespace DomBoot.Storage.Probing;

/// <summary>ext2/3/4 superblock at 1024 (kernel Documentation/filesystems/ext4/super.rst); type chosen by features as libblkid does.</summary>
internal static class ExtProbe
{
    public static class Offsets
    {
        public const int Superblock = 1024;
        public const int Magic = 0x38;
        public const int FeatureCompat = 0x5C;
        public const int FeatureIncompat = 0x60;
        public const int FeatureRoCompat = 0x64;
        public const int Uuid = 0x68;
        public const int VolumeName = 0x78;
        public const int Flags = 0x160;
        public const int End = 0x400;
    }

    private const uint CompatHasJournal = 0x4;
    private const uint IncompatJournalDev = 0x8;
    private const uint Ext2RoCompatSupported = 0x1 | 0x2 | 0x4;
    private const uint Ext2IncompatSupported = 0x2 | 0x10;
    private const uint Ext3IncompatSupported = 0x2 | 0x4 | 0x10;
    private const uint FlagsTestFilesys = 0x4;

    public static bool HasMagic(ReadOnlySpan<byte> head) =>
        head.Length >= Offsets.Superblock + Offsets.End
        && BinaryPrimitives.ReadUInt16LittleEndian(head[(Offsets.Superblock + Offsets.Magic)..]) == 0xEF53;

    public static ProbeResult Read(ReadOnlySpan<byte> head)
    {
        var sb = head.Slice(Offsets.Superblock, Offsets.End);
        uint compat = BinaryPrimitives.ReadUInt32LittleEndian(sb[Offsets.FeatureCompat..]);
        uint incompat = BinaryPrimitives.ReadUInt32LittleEndian(sb[Offsets.FeatureIncompat..]);
        uint roCompat = BinaryPrimitives.ReadUInt32LittleEndian(sb[Offsets.FeatureRoCompat..]);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(sb[Offsets.Flags..]);
        bool journal = (compat & CompatHasJournal) != 0;
        bool beyondExt2Ro = (roCompat & ~Ext2RoCompatSupported) != 0;
        string type;
        if ((incompat & IncompatJournalDev) != 0) type = "jbd";
        else if (!journal && !beyondExt2Ro && (incompat & ~Ext2IncompatSupported) == 0 && (flags & FlagsTestFilesys) == 0) type = "ext2";
        else if (journal && !beyondExt2Ro && (incompat & ~Ext3IncompatSupported) == 0 && (flags & FlagsTestFilesys) == 0) type = "ext3";
        else type = (flags & FlagsTestFilesys) != 0 ? "ext4dev" : "ext4";
        return new ProbeResult(type, FileSystemProbe.FormatUuid(sb.Slice(Offsets.Uuid, 16)),
            FileSystemProbe.Label(sb.Slice(Offsets.VolumeName, 16), trimSpaces: false), "1.0");
    }
}
