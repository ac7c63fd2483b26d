using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;
using DomBoot.Storage.Filesystems.Btrfs;
using DomBoot.Storage.Filesystems.Ext;
using DomBoot.Storage.Filesystems.Fat;
using DomBoot.Storage.Filesystems.Iso9660;
using DomBoot.Storage.Filesystems.Xfs;

namespace DomBoot.Storage.Filesystems;

/// <summary>Opens the filesystem on a volume by magic, through an explicit list of readers (no reflection).</summary>
public static class FileSystemOpener
{
    /// <summary>Bytes read from the volume's start for detection: enough for btrfs (0x10040) and ISO9660 (0x8000 + 2048).</summary>
    public const int HeadBytes = 128 * 1024;

    private static readonly (string Name, HeadCheck HasMagic, Func<IBlockReader, IFileSystem> Open)[] Readers =
    [
        ("ext", ExtFileSystem.HasMagic, v => ExtFileSystem.Open(v)),
        ("xfs", XfsFileSystem.HasMagic, v => XfsFileSystem.Open(v)),
        ("btrfs", h => h.Length > 0x10048 && BtrfsFileSystem.HasMagic(h), v => BtrfsFileSystem.Open(v)),
        ("iso9660", h => h.Length >= 0x8000 + 2048 && Iso9660FileSystem.HasMagic(h[0x8000..]), v => Iso9660FileSystem.Open(v)),
        ("vfat", FatFileSystem.HasMagic, v => FatFileSystem.Open(v)),
    ];

    private delegate bool HeadCheck(ReadOnlySpan<byte> head);

    public static IReadOnlyList<string> ReaderNames => [.. Readers.Select(r => r.Name)];

    /// <summary>The filesystem on <paramref name="volume"/>, or null when no reader recognises it.</summary>
    public static IFileSystem? TryOpen(IBlockReader volume)
    {
        ArgumentNullException.ThrowIfNull(volume);
        var head = new byte[(int)Math.Min(HeadBytes, volume.Length)];
        volume.ReadExactly(0, head);
        foreach (var r in Readers)
            if (r.HasMagic(head)) return r.Open(volume);
        return null;
    }

    public static IFileSystem Open(IBlockReader volume, string where) =>
        TryOpen(volume) ?? throw new MalformedDataException(where, 0,
            $"holds no filesystem domboot reads; expected one of {string.Join(", ", ReaderNames)}");
}
