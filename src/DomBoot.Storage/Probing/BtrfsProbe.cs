namespace DomBoot.Storage.Probing;

/// <summary>btrfs primary superblock at 64 KiB (btrfs docs, "On-disk format: Superblock").</summary>
internal static class BtrfsProbe
{
    public static class Offsets
    {
        public const int Superblock = 0x10000;
        public const int Fsid = 0x20;
        public const int Magic = 0x40;
        public const int Label = 0x12B;
        public const int LabelSize = 256;
    }

    public static bool HasMagic(ReadOnlySpan<byte> head) =>
        head.Length >= Offsets.Superblock + Offsets.Label + Offsets.LabelSize
        && FileSystemProbe.At(head, Offsets.Superblock + Offsets.Magic, "_BHRfS_M"u8);

    public static ProbeResult Read(ReadOnlySpan<byte> head)
    {
        var sb = head[Offsets.Superblock..];
        return new("btrfs", FileSystemProbe.FormatUuid(sb.Slice(Offsets.Fsid, 16)),
            FileSystemProbe.Label(sb.Slice(Offsets.Label, Offsets.LabelSize), trimSpaces: false));
    }
}
