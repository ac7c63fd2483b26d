namespace DomBoot.Storage.Filesystems.Ext;

/// <summary>Feature bits of the ext4 superblock (ext4 disk layout, "Super Block": s_feature_compat/incompat/ro_compat).</summary>
internal static class Ext4Features
{
    // s_feature_compat
    public const uint CompatHasJournal = 0x4;
    public const uint CompatDirIndex = 0x20;
    public const uint CompatSparseSuper2 = 0x200;

    // s_feature_incompat
    public const uint IncompatCompression = 0x1;
    public const uint IncompatFiletype = 0x2;
    public const uint IncompatRecover = 0x4;
    public const uint IncompatJournalDev = 0x8;
    public const uint IncompatMetaBg = 0x10;
    public const uint IncompatExtents = 0x40;
    public const uint Incompat64Bit = 0x80;
    public const uint IncompatMmp = 0x100;
    public const uint IncompatFlexBg = 0x200;
    public const uint IncompatEaInode = 0x400;
    public const uint IncompatDirData = 0x1000;
    public const uint IncompatCsumSeed = 0x2000;
    public const uint IncompatLargeDir = 0x4000;
    public const uint IncompatInlineData = 0x8000;
    public const uint IncompatEncrypt = 0x10000;
    public const uint IncompatCasefold = 0x20000;

    /// <summary>Incompatible features this read-only reader understands; every other bit is refused by name.</summary>
    public const uint IncompatSupported = IncompatFiletype | IncompatRecover | IncompatMetaBg | IncompatExtents
        | Incompat64Bit | IncompatMmp | IncompatFlexBg | IncompatEaInode | IncompatCsumSeed | IncompatLargeDir
        | IncompatInlineData;

    // s_feature_ro_compat
    public const uint RoCompatSparseSuper = 0x1;
    public const uint RoCompatLargeFile = 0x2;
    public const uint RoCompatBtreeDir = 0x4;
    public const uint RoCompatHugeFile = 0x8;
    public const uint RoCompatGdtCsum = 0x10;
    public const uint RoCompatDirNlink = 0x20;
    public const uint RoCompatExtraIsize = 0x40;
    public const uint RoCompatBigalloc = 0x200;
    public const uint RoCompatMetadataCsum = 0x400;

    /// <summary>Incompatible feature name as e2fsprogs (lib/e2p/feature.c) prints it.</summary>
    public static string IncompatName(uint bit) => bit switch
    {
        IncompatCompression => "compression",
        IncompatFiletype => "filetype",
        IncompatRecover => "needs_recovery",
        IncompatJournalDev => "journal_dev",
        IncompatMetaBg => "meta_bg",
        IncompatExtents => "extent",
        Incompat64Bit => "64bit",
        IncompatMmp => "mmp",
        IncompatFlexBg => "flex_bg",
        IncompatEaInode => "ea_inode",
        IncompatDirData => "dirdata",
        IncompatCsumSeed => "metadata_csum_seed",
        IncompatLargeDir => "large_dir",
        IncompatInlineData => "inline_data",
        IncompatEncrypt => "encrypt",
        IncompatCasefold => "casefold",
        _ => "unknown",
    };
}
