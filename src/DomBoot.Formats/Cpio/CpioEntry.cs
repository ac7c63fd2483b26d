using System.Text;

namespace DomBoot.Formats.Cpio;

/// <summary>
/// One member of a newc/crc archive: its header, its name (without the NUL) and a slice of its data. Offsets are
/// absolute within the buffer the entry was read from (the decompressed stream for entries of a compressed segment).
/// </summary>
public sealed record CpioEntry(CpioNewcHeader Header, ReadOnlyMemory<byte> NameBytes, ReadOnlyMemory<byte> Data, long HeaderOffset, long DataOffset)
{
    /// <summary>The name decoded as UTF-8 (invalid sequences become U+FFFD; <see cref="NameBytes"/> is exact).</summary>
    public string Name { get; } = Encoding.UTF8.GetString(NameBytes.Span);

    public long NameOffset => HeaderOffset + CpioNewcHeader.Size;

    public CpioFileType Type => Header.Type;

    /// <summary>The link target (the data, UTF-8) for a symlink; null otherwise.</summary>
    public string? SymlinkTarget => Type == CpioFileType.Symlink ? Encoding.UTF8.GetString(Data.Span) : null;
}

/// <summary>One uncompressed archive: its entries up to, not including, "TRAILER!!!".</summary>
/// <param name="Offset">Where its first header starts.</param>
/// <param name="EndOffset">Just past the trailer's name and its padding to 4 bytes (GNU cpio's 512-byte padding follows as NULs).</param>
public sealed record CpioArchive(long Offset, long EndOffset, IReadOnlyList<CpioEntry> Entries);

public enum CpioSegmentKind
{
    /// <summary>NUL bytes between members (the kernel skips them).</summary>
    Padding,

    /// <summary>An uncompressed newc/crc archive ending in TRAILER!!!.</summary>
    Archive,

    /// <summary>A compressed blob, recognised by its magic (lib/decompress.c's table).</summary>
    Compressed,
}

/// <summary>The compression methods the kernel's decompress_method table knows, by their 2-byte magic.</summary>
public enum CpioCompression
{
    None,
    Gzip,
    Bzip2,
    Lzma,
    Xz,
    Lzo,
    Lz4,
    Zstd,
}

/// <summary>
/// One piece of an initramfs image (grammar: <c>("\0" | cpio_archive | compressed_archive)*</c>).
/// </summary>
/// <param name="Length">
/// Bytes the segment occupies. For a compressed segment that was not decompressed its real end is unknown, so this
/// is every byte to the end of the image and <see cref="Decompressed"/> is false.
/// </param>
/// <param name="Entries">The archive's entries, or for a decompressed segment every entry inside it (offsets relative to the decompressed stream).</param>
/// <param name="DecompressedLength">Bytes of decompressed output, or 0.</param>
public sealed record CpioSegment(CpioSegmentKind Kind, long Offset, long Length, CpioCompression Compression,
    IReadOnlyList<CpioEntry> Entries, bool Decompressed, long DecompressedLength);
