namespace DomBoot.Storage.Probing;

/// <summary>XFS superblock at 0 (XFS Algorithms and Data Structures, "Superblocks").</summary>
internal static class XfsProbe
{
    public static class Offsets
    {
        public const int MagicNum = 0;
        public const int Uuid = 32;
        public const int Fname = 108;
    }

    public static bool HasMagic(ReadOnlySpan<byte> head) => head.Length >= 512 && FileSystemProbe.At(head, Offsets.MagicNum, "XFSB"u8);

    public static ProbeResult Read(ReadOnlySpan<byte> head) =>
        new("xfs", FileSystemProbe.FormatUuid(head.Slice(Offsets.Uuid, 16)), FileSystemProbe.Label(head.Slice(Offsets.Fname, 12), trimSpaces: false));
}
