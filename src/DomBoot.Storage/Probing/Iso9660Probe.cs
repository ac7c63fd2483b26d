using System.Text;

namespace DomBoot.Storage.Probing;

/// <summary>ISO 9660 primary volume descriptor at sector 16 (ECMA-119 8.4); UUID is the date blkid derives.</summary>
internal static class Iso9660Probe
{
    public static class Offsets
    {
        public const int Pvd = 0x8000;
        public const int StandardIdentifier = 1;
        public const int VolumeIdentifier = 40;
        public const int VolumeCreationDate = 813;
        public const int VolumeModificationDate = 830;
        public const int Size = 2048;
    }

    public static bool HasMagic(ReadOnlySpan<byte> head) =>
        head.Length >= Offsets.Pvd + Offsets.Size && head[Offsets.Pvd] == 1
        && FileSystemProbe.At(head, Offsets.Pvd + Offsets.StandardIdentifier, "CD001"u8);

    public static ProbeResult Read(ReadOnlySpan<byte> head)
    {
        var pvd = head.Slice(Offsets.Pvd, Offsets.Size);
        // libblkid: the modification date, else the creation date, as "YYYY-MM-DD-HH-MM-SS-CC"
        string? uuid = DateUuid(pvd.Slice(Offsets.VolumeModificationDate, 17)) ?? DateUuid(pvd.Slice(Offsets.VolumeCreationDate, 17));
        return new ProbeResult("iso9660", uuid, FileSystemProbe.Label(pvd.Slice(Offsets.VolumeIdentifier, 32)));
    }

    private static string? DateUuid(ReadOnlySpan<byte> date)
    {
        var digits = date[..16];
        foreach (byte b in digits) if (b is < (byte)'0' or > (byte)'9') return null;
        if (!digits.ContainsAnyExcept((byte)'0')) return null;
        string s = Encoding.ASCII.GetString(digits);
        return $"{s[..4]}-{s[4..6]}-{s[6..8]}-{s[8..10]}-{s[10..12]}-{s[12..14]}-{s[14..16]}";
    }
}
