namespace DomBoot.Storage.Probing;

/// <summary>Linux swap header (include/linux/swap.h, union swap_header): signature at the end of the first page.</summary>
internal static class SwapProbe
{
    public static class Offsets
    {
        public const int Version = 1024;
        public const int Uuid = 1036;
        public const int VolumeName = 1052;
    }

    private static readonly int[] PageSizes = [4096, 8192, 16384, 32768, 65536];

    public static bool HasMagic(ReadOnlySpan<byte> head) => SignaturePage(head) > 0;

    private static int SignaturePage(ReadOnlySpan<byte> head)
    {
        foreach (int ps in PageSizes)
            if (FileSystemProbe.At(head, ps - 10, "SWAPSPACE2"u8) || FileSystemProbe.At(head, ps - 10, "SWAP-SPACE"u8)) return ps;
        return 0;
    }

    public static ProbeResult Read(ReadOnlySpan<byte> head)
    {
        int ps = SignaturePage(head);
        if (FileSystemProbe.At(head, ps - 10, "SWAP-SPACE"u8)) return new ProbeResult("swap", null, null, "0");
        return new ProbeResult("swap", FileSystemProbe.FormatUuid(head.Slice(Offsets.Uuid, 16)),
            FileSystemProbe.Label(head.Slice(Offsets.VolumeName, 16), trimSpaces: false), "1");
    }
}
