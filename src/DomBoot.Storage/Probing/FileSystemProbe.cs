using System.Text;
using DomBoot.Formats.Binary;

namespace DomBoot.Storage.Probing;

/// <summary>What a volume holds, named and formatted as `blkid -p -o export` prints TYPE, UUID, LABEL and VERSION.</summary>
public sealed record ProbeResult(string Type, string? Uuid, string? Label, string? Version = null);

/// <summary>
/// Identifies the filesystem (or swap / LUKS container) on a volume from its first bytes, by an explicit probe list.
/// Probes only read superblock fields; they never throw for odd content, they answer "no match" or fill what they can.
/// </summary>
public static class FileSystemProbe
{
    /// <summary>Bytes read from the start of a volume: covers the btrfs superblock at 64 KiB and swap on 64 KiB pages.</summary>
    public const int HeadBytes = 0x11000;

    private sealed record Entry(string Name, Func<ReadOnlySpanBytes, bool> HasMagic, Func<ReadOnlySpanBytes, ProbeResult> Read);

    /// <summary>A delegate-friendly wrapper: spans cannot be generic arguments of Func.</summary>
    internal readonly record struct ReadOnlySpanBytes(ReadOnlyMemory<byte> Memory)
    {
        public ReadOnlySpan<byte> Span => Memory.Span;
    }

    private static readonly Entry[] Probes =
    [
        new("crypto_LUKS", b => LuksProbe.HasMagic(b.Span), b => LuksProbe.Read(b.Span)),
        new("vfat", b => FatProbe.HasMagic(b.Span), b => FatProbe.Read(b.Span)),
        new("swap", b => SwapProbe.HasMagic(b.Span), b => SwapProbe.Read(b.Span)),
        new("xfs", b => XfsProbe.HasMagic(b.Span), b => XfsProbe.Read(b.Span)),
        new("ext", b => ExtProbe.HasMagic(b.Span), b => ExtProbe.Read(b.Span)),
        new("iso9660", b => Iso9660Probe.HasMagic(b.Span), b => Iso9660Probe.Read(b.Span)),
        new("btrfs", b => BtrfsProbe.HasMagic(b.Span), b => BtrfsProbe.Read(b.Span)),
    ];

    /// <summary>Names of the probes, in the order they are tried.</summary>
    public static IReadOnlyList<string> ProbeNames => [.. Probes.Select(p => p.Name)];

    /// <summary>Probes a volume; null when nothing is recognised.</summary>
    public static ProbeResult? Probe(IBlockReader volume)
    {
        ArgumentNullException.ThrowIfNull(volume);
        var head = new byte[(int)Math.Min(volume.Length, HeadBytes)];
        volume.ReadExactly(0, head);
        return Probe(head);
    }

    /// <summary>Probes the first bytes of a volume (up to <see cref="HeadBytes"/>).</summary>
    public static ProbeResult? Probe(ReadOnlyMemory<byte> head)
    {
        var b = new ReadOnlySpanBytes(head);
        foreach (var p in Probes)
            if (p.HasMagic(b)) return p.Read(b);
        return null;
    }

    /// <summary>16 raw bytes as blkid prints a UUID (lower-case, 8-4-4-4-12, byte order); null when all zero.</summary>
    internal static string? FormatUuid(ReadOnlySpan<byte> b)
    {
        if (b.Length < 16 || !b[..16].ContainsAnyExcept((byte)0)) return null;
        string h = Convert.ToHexStringLower(b[..16]);
        return $"{h[..8]}-{h[8..12]}-{h[12..16]}-{h[16..20]}-{h[20..]}";
    }

    /// <summary>A fixed-size label field: up to the first NUL, trailing spaces dropped; null when empty.</summary>
    internal static string? Label(ReadOnlySpan<byte> field, bool trimSpaces = true)
    {
        int nul = field.IndexOf((byte)0);
        if (nul >= 0) field = field[..nul];
        string s = Encoding.UTF8.GetString(field);
        if (trimSpaces) s = s.TrimEnd(' ');
        return s.Length == 0 ? null : s;
    }

    internal static bool At(ReadOnlySpan<byte> head, int offset, ReadOnlySpan<byte> magic) =>
        offset >= 0 && head.Length >= offset + magic.Length && head.Slice(offset, magic.Length).SequenceEqual(magic);
}
