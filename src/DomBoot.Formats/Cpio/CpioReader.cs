using DomBoot.Formats.Errors;

namespace DomBoot.Formats.Cpio;

/// <summary>Bounds for <see cref="CpioReader"/>.</summary>
public sealed record CpioReaderOptions
{
    /// <summary>Most entries (all archives and decompressed segments together) before the input is refused.</summary>
    public int MaxEntries { get; init; } = CpioReader.Limits.DefaultMaxEntries;

    /// <summary>Most bytes all decompressed segments together may produce.</summary>
    public long MaxDecompressedBytes { get; init; } = CpioReader.Limits.DefaultMaxDecompressedBytes;

    /// <summary>For "070702" (crc) entries, check c_chksum against the sum of the data bytes (the kernel does).</summary>
    public bool VerifyChecksums { get; init; } = true;
}

/// <summary>
/// Reads initramfs images the way Linux init/initramfs.c unpacks them (grammar in
/// Documentation/driver-api/early-userspace/buffer-format.rst): uncompressed newc/crc archives each ending in
/// "TRAILER!!!", NUL padding between them, and compressed blobs recognised by lib/decompress.c's magic table.
/// Only gzip is decompressed, only when asked, and with a hard output cap. The input is never written to.
/// </summary>
public sealed class CpioReader
{
    public const string TrailerName = "TRAILER!!!";
    private const string ArchiveStructure = "cpio archive";
    private const string EntryStructure = "cpio entry";

    public static class Limits
    {
        /// <summary>c_namesize including the NUL (PATH_MAX).</summary>
        public const int MaxNameSize = CpioNewcHeader.Limits.MaxNameSize;

        /// <summary>A symlink's c_filesize; the kernel skips longer targets (PATH_MAX).</summary>
        public const int MaxSymlinkTargetSize = 4096;

        public const int DefaultMaxEntries = 1_000_000;

        public const long DefaultMaxDecompressedBytes = 1L << 30;

        /// <summary>Largest decompressed segment a byte array can hold.</summary>
        public const long MaxDecompressedSegmentBytes = 0x7FFFFFC7;

        /// <summary>The kernel starts a cpio archive only at a 4-byte aligned offset.</summary>
        public const int Alignment = 4;
    }

    private readonly ReadOnlyMemory<byte> _image;
    private readonly CpioReaderOptions _options;

    public CpioReader(ReadOnlyMemory<byte> image, CpioReaderOptions? options = null)
    {
        _image = image;
        _options = options ?? new CpioReaderOptions();
        if (_options.MaxEntries < 0 || _options.MaxDecompressedBytes < 0)
            throw new ArgumentOutOfRangeException(nameof(options), "limits must not be negative");
    }

    public ReadOnlyMemory<byte> Image => _image;

    /// <summary>
    /// Splits the image into padding, archives and compressed segments. With <paramref name="decompress"/>, gzip
    /// segments are decompressed and their entries listed, and the walk continues after them; any other compressed
    /// segment (or gzip without <paramref name="decompress"/>) ends the walk, since only decompressing finds its end.
    /// </summary>
    public IReadOnlyList<CpioSegment> ReadSegments(bool decompress = false)
    {
        var budget = new Budget(_options);
        var segments = new List<CpioSegment>();
        var span = _image.Span;
        int pos = 0;
        while (pos < span.Length)
        {
            byte b = span[pos];
            if (b == 0)
            {
                int run = span[pos..].IndexOfAnyExcept((byte)0);
                int end = run < 0 ? span.Length : pos + run;
                segments.Add(new CpioSegment(CpioSegmentKind.Padding, pos, end - pos, CpioCompression.None, [], false, 0));
                pos = end;
                continue;
            }
            if (b == (byte)'0' && pos % Limits.Alignment == 0)
            {
                var archive = ParseArchive(_image, pos, budget);
                segments.Add(new CpioSegment(CpioSegmentKind.Archive, pos, archive.EndOffset - pos, CpioCompression.None,
                    archive.Entries, false, 0));
                pos = checked((int)archive.EndOffset);
                continue;
            }

            var method = DetectCompression(span[pos..]);
            if (method == CpioCompression.None)
            {
                string why = b == (byte)'0'
                    ? $"is not 4-byte aligned (offset mod 4 = {pos % Limits.Alignment}); the kernel starts archives only on 4-byte boundaries"
                    : $"starts with {Quote.Bytes(span.Slice(pos, Math.Min(6, span.Length - pos)))}; expected cpio magic \"070701\", NUL padding or a compression magic";
                throw new MalformedDataException("initramfs segment", pos, why);
            }
            if (!decompress || method != CpioCompression.Gzip)
            {
                segments.Add(new CpioSegment(CpioSegmentKind.Compressed, pos, span.Length - pos, method, [], false, 0));
                break;
            }

            long cap = Math.Min(budget.DecompressedLeft, Limits.MaxDecompressedSegmentBytes);
            var output = GzipMember.Decompress(_image, pos, 0, cap, out int consumed);
            budget.DecompressedLeft -= output.Length;
            List<CpioEntry> entries;
            try
            {
                entries = ParseDecompressed(output, budget);
            }
            catch (MalformedDataException ex)
            {
                throw new MalformedDataException($"initramfs {method.ToString().ToLowerInvariant()} segment", pos,
                    $"in its decompressed data: {ex.Message}");
            }
            segments.Add(new CpioSegment(CpioSegmentKind.Compressed, pos, consumed, method, entries, true, output.Length));
            pos = checked(pos + consumed);
        }
        return segments;
    }

    /// <summary>Every entry of every archive (trailers excluded), decompressing gzip segments when asked.</summary>
    public IReadOnlyList<CpioEntry> ReadAllEntries(bool decompress = false) =>
        ReadSegments(decompress).SelectMany(s => s.Entries).ToList();

    /// <summary>Reads the one uncompressed archive starting at <paramref name="offset"/> up to its TRAILER!!!.</summary>
    public CpioArchive ReadArchive(long offset = 0)
    {
        if (offset < 0 || offset > _image.Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"offset {offset} is outside the {_image.Length}-byte image");
        return ParseArchive(_image, (int)offset, new Budget(_options));
    }

    /// <summary>The compression method whose magic (lib/decompress.c) starts <paramref name="bytes"/>, or None.</summary>
    public static CpioCompression DetectCompression(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 2) return CpioCompression.None;
        return (bytes[0], bytes[1]) switch
        {
            (0x1F, 0x8B) or (0x1F, 0x9E) => CpioCompression.Gzip,
            (0x42, 0x5A) => CpioCompression.Bzip2,
            (0x5D, 0x00) => CpioCompression.Lzma,
            (0xFD, 0x37) => CpioCompression.Xz,
            (0x89, 0x4C) => CpioCompression.Lzo,
            (0x02, 0x21) => CpioCompression.Lz4,
            (0x28, 0xB5) => CpioCompression.Zstd,
            _ => CpioCompression.None,
        };
    }

    /// <summary>
    /// Decompresses the one gzip member at <paramref name="offset"/> (RFC 1952, CRC-32 and size checked), producing at
    /// most <paramref name="maxOutputBytes"/>; <paramref name="consumed"/> is its compressed length including the trailer.
    /// </summary>
    public static byte[] DecompressGzip(ReadOnlyMemory<byte> image, long offset, long maxOutputBytes, out long consumed)
    {
        if (offset < 0 || offset > image.Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"offset {offset} is outside the {image.Length}-byte image");
        var output = GzipMember.Decompress(image, (int)offset, 0, Math.Min(maxOutputBytes, Limits.MaxDecompressedSegmentBytes), out int used);
        consumed = used;
        return output;
    }

    private sealed class Budget(CpioReaderOptions options)
    {
        public readonly int MaxEntries = options.MaxEntries;
        public int EntriesLeft = options.MaxEntries;
        public long DecompressedLeft = options.MaxDecompressedBytes;
        public bool VerifyChecksums = options.VerifyChecksums;
    }

    /// <summary>
    /// A decompressed stream holds archives and NULs only (init/initramfs.c flush_buffer: anything else is "junk
    /// within compressed archive") and must end after a trailer. Entry offsets are relative to <paramref name="output"/>.
    /// </summary>
    private static List<CpioEntry> ParseDecompressed(byte[] output, Budget budget)
    {
        var entries = new List<CpioEntry>();
        var memory = new ReadOnlyMemory<byte>(output);
        int pos = 0;
        while (pos < output.Length)
        {
            byte b = output[pos];
            if (b == 0)
            {
                pos++;
                continue;
            }
            if (b != (byte)'0')
                throw new MalformedDataException("decompressed stream", pos, $"junk within compressed archive: {Quote.Bytes(output.AsSpan(pos, Math.Min(6, output.Length - pos)))}");
            if (pos % Limits.Alignment != 0)
                throw new MalformedDataException("decompressed stream", pos, "broken padding: archive does not start on a 4-byte boundary");
            var archive = ParseArchive(memory, pos, budget);
            entries.AddRange(archive.Entries);
            pos = checked((int)archive.EndOffset);
        }
        return entries;
    }

    private static CpioArchive ParseArchive(ReadOnlyMemory<byte> memory, int start, Budget budget)
    {
        var span = memory.Span;
        var entries = new List<CpioEntry>();
        int pos = start;
        while (true)
        {
            if (pos >= span.Length)
                throw new MalformedDataException(ArchiveStructure, pos, $"input ends before the {TrailerName} entry (the archive starts at 0x{start:X})");
            var header = CpioNewcHeader.Parse(span[pos..], pos);

            int nameOffset = pos + CpioNewcHeader.Size;
            int nameSize = (int)header.NameSize; // Parse bounded it to MaxNameSize
            if (nameSize > span.Length - nameOffset)
                throw new TruncatedDataException(EntryStructure + " name", nameOffset, nameSize, span.Length - (long)nameOffset);
            var nameWithNul = span.Slice(nameOffset, nameSize);
            int nul = nameWithNul.IndexOf((byte)0);
            if (nul != nameSize - 1)
                throw MalformedDataException.Field(EntryStructure, pos + CpioNewcHeader.Offsets.NameSize, "c_namesize", nameSize,
                    nul < 0 ? $"a name ending in NUL; {Quote.Bytes(nameWithNul)} has none"
                            : $"{nul + 1} (the name has a NUL at byte {nul})");
            var name = memory.Slice(nameOffset, nameSize - 1);

            long dataOffset = Align(checked((long)nameOffset + nameSize));
            long dataEnd = checked(dataOffset + header.FileSize);
            if (dataEnd > span.Length && header.FileSize > 0)
                throw new TruncatedDataException(EntryStructure + " data", pos + CpioNewcHeader.Offsets.FileSize, header.FileSize,
                    Math.Max(0, span.Length - dataOffset));
            long next = Math.Min(Align(dataEnd), span.Length);

            if (name.Span.SequenceEqual("TRAILER!!!"u8))
                return new CpioArchive(start, next, entries);

            if (header.Type == CpioFileType.Symlink && header.FileSize > Limits.MaxSymlinkTargetSize)
                throw MalformedDataException.Field(EntryStructure, pos + CpioNewcHeader.Offsets.FileSize, "c_filesize",
                    header.FileSize, $"at most {Limits.MaxSymlinkTargetSize} for a symlink target (PATH_MAX)");

            var data = header.FileSize == 0 ? ReadOnlyMemory<byte>.Empty : memory.Slice((int)dataOffset, (int)header.FileSize);
            // init/initramfs.c checks the sum for regular files only; GNU cpio writes 0 for symlinks
            if (header.Format == CpioFormat.Crc && budget.VerifyChecksums && header.Type == CpioFileType.Regular)
            {
                uint sum = 0;
                foreach (byte d in data.Span) sum = unchecked(sum + d);
                if (sum != header.Check)
                    throw new MalformedDataException(EntryStructure, pos + CpioNewcHeader.Offsets.Check,
                        $"bad data checksum: c_chksum is 0x{header.Check:X8}; expected 0x{sum:X8} (sum of the data bytes)");
            }

            if (budget.EntriesLeft <= 0)
                throw new MalformedDataException(ArchiveStructure, pos, $"more than {budget.MaxEntries} entries (limit)");
            budget.EntriesLeft--;
            entries.Add(new CpioEntry(header, name, data, pos, dataOffset));
            pos = (int)next;
        }
    }

    private static long Align(long value) => checked((value + (Limits.Alignment - 1)) & ~(long)(Limits.Alignment - 1));
}
