using System.Buffers.Binary;
using System.IO.Compression;
using DomBoot.Formats.Errors;

namespace DomBoot.Formats.Cpio;

/// <summary>
/// Decodes one gzip member (RFC 1952) and reports exactly how many input bytes it used, so the initramfs walk can
/// continue after it the way the kernel's gunzip does (lib/decompress_inflate.c returns the consumed length).
/// </summary>
internal static class GzipMember
{
    public const string StructureName = "gzip member";

    public static class Offsets
    {
        public const int Id1 = 0;
        public const int Id2 = 1;
        public const int Cm = 2;
        public const int Flg = 3;
        public const int MTime = 4;
        public const int Xfl = 8;
        public const int Os = 9;
        public const int FixedHeaderEnd = 10;
        public const int TrailerLength = 8;
    }

    [Flags]
    private enum GzipFlags : byte
    {
        FText = 0x01,
        FHcrc = 0x02,
        FExtra = 0x04,
        FName = 0x08,
        FComment = 0x10,
        Reserved = 0xE0,
    }

    /// <summary>Input is handed to the inflater in pieces this big; the piece holding the end is re-fed byte by byte.</summary>
    private const int ChunkSize = 4096;

    /// <summary>
    /// Decompresses the member starting at <paramref name="start"/> of <paramref name="data"/>. Output above
    /// <paramref name="maxOutputBytes"/> is refused. <paramref name="consumed"/> is the member's length including its trailer.
    /// </summary>
    public static byte[] Decompress(ReadOnlyMemory<byte> data, int start, long baseOffset, long maxOutputBytes, out int consumed)
    {
        var span = data.Span;
        long at = baseOffset + start;
        var member = span[start..];
        if (member.Length < Offsets.FixedHeaderEnd)
            throw new TruncatedDataException(StructureName, at, Offsets.FixedHeaderEnd, member.Length);
        if (member[Offsets.Id1] != 0x1F || member[Offsets.Id2] != 0x8B)
            throw MalformedDataException.Field(StructureName, at, "ID1 ID2", Quote.Bytes(member[..2]), "1F 8B");
        if (member[Offsets.Cm] != 8)
            throw MalformedDataException.Field(StructureName, at + Offsets.Cm, "CM", member[Offsets.Cm], "8 (deflate)");
        var flags = (GzipFlags)member[Offsets.Flg];
        if ((flags & GzipFlags.Reserved) != 0)
            throw MalformedDataException.Field(StructureName, at + Offsets.Flg, "FLG", FieldHex(member[Offsets.Flg]), "reserved bits 5-7 clear");

        int pos = Offsets.FixedHeaderEnd;
        if ((flags & GzipFlags.FExtra) != 0)
        {
            Need(member, pos, 2, at);
            int xlen = BinaryPrimitives.ReadUInt16LittleEndian(member[pos..]);
            Need(member, pos + 2, xlen, at);
            pos += 2 + xlen;
        }
        if ((flags & GzipFlags.FName) != 0) pos = SkipCString(member, pos, at, "FNAME");
        if ((flags & GzipFlags.FComment) != 0) pos = SkipCString(member, pos, at, "FCOMMENT");
        if ((flags & GzipFlags.FHcrc) != 0)
        {
            Need(member, pos, 2, at);
            pos += 2;
        }

        var deflate = data.Slice(start + pos);
        long deflateOffset = at + pos;

        // pass 1: inflate everything (bounded) and learn which input piece holds the end of the deflate stream
        var output = Inflate(deflate, deflateOffset, maxOutputBytes, singleBytesFrom: int.MaxValue, keepOutput: true, out int handed1, out int lastPieceStart, out bool finished1);
        if (!finished1)
            throw new TruncatedDataException(StructureName, deflateOffset + deflate.Length, 1, 0);

        // pass 2: same input, but the last piece byte by byte, so the inflater stops exactly on the final block's last byte
        int deflateLength;
        if (handed1 - lastPieceStart <= 1)
        {
            deflateLength = handed1;
        }
        else
        {
            Inflate(deflate, deflateOffset, maxOutputBytes, singleBytesFrom: lastPieceStart, keepOutput: false, out int handed2, out _, out bool finished2);
            if (!finished2)
                throw new MalformedDataException(StructureName, deflateOffset, "deflate stream did not end the same way twice");
            deflateLength = handed2;
        }

        int trailerAt = pos + deflateLength;
        Need(member, trailerAt, Offsets.TrailerLength, at);
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(member[trailerAt..]);
        uint isize = BinaryPrimitives.ReadUInt32LittleEndian(member[(trailerAt + 4)..]);
        uint actualCrc = Crc32.Compute(output);
        if (crc != actualCrc)
            throw MalformedDataException.Field(StructureName, at + trailerAt, "CRC32", FieldHex(crc), $"{FieldHex(actualCrc)} (CRC-32 of the decompressed data)");
        if (isize != unchecked((uint)output.Length))
            throw MalformedDataException.Field(StructureName, at + trailerAt + 4, "ISIZE", isize, $"{(uint)output.Length} (decompressed size mod 2^32)");
        consumed = checked(trailerAt + Offsets.TrailerLength);
        return output;
    }

    private static byte[] Inflate(ReadOnlyMemory<byte> deflate, long deflateOffset, long maxOutputBytes, int singleBytesFrom,
        bool keepOutput, out int handed, out int lastPieceStart, out bool finished)
    {
        var feed = new PieceStream(deflate, singleBytesFrom);
        using var output = new MemoryStream();
        long total = 0;
        var buffer = new byte[81920];
        try
        {
            using var inflater = new DeflateStream(feed, CompressionMode.Decompress, leaveOpen: true);
            while (true)
            {
                int n = inflater.Read(buffer, 0, buffer.Length);
                if (n == 0) break;
                total += n;
                if (total > maxOutputBytes)
                    throw new MalformedDataException(StructureName, deflateOffset,
                        $"decompressed data exceeds the limit of {maxOutputBytes} bytes");
                if (keepOutput) output.Write(buffer, 0, n);
            }
        }
        catch (InvalidDataException ex)
        {
            throw new MalformedDataException(StructureName, deflateOffset + feed.LastPieceStart,
                $"corrupt deflate data near this offset ({ex.Message.ReplaceLineEndings(" ")})");
        }
        handed = feed.Handed;
        lastPieceStart = feed.LastPieceStart;
        // the inflater stops asking for input only when the final block ended; asking past the end means truncation
        finished = !feed.AskedPastEnd;
        return output.ToArray();
    }

    private static void Need(ReadOnlySpan<byte> member, int pos, int length, long at)
    {
        if (pos > member.Length || length > member.Length - pos)
            throw new TruncatedDataException(StructureName, at + Math.Min(pos, member.Length), length, member.Length - (long)pos);
    }

    private static int SkipCString(ReadOnlySpan<byte> member, int pos, long at, string field)
    {
        int nul = pos <= member.Length ? member[pos..].IndexOf((byte)0) : -1;
        if (nul < 0)
            throw new MalformedDataException(StructureName, at + pos, $"{field} has no terminating NUL before the end of input");
        return pos + nul + 1;
    }

    private static string FieldHex(uint v) => "0x" + v.ToString("X", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Read-only stream handing out input in pieces, then single bytes from a chosen position.</summary>
    private sealed class PieceStream(ReadOnlyMemory<byte> input, int singleBytesFrom) : Stream
    {
        public int Handed { get; private set; }
        public int LastPieceStart { get; private set; }

        /// <summary>True when the inflater asked for input after all of it was handed out: the stream is truncated.</summary>
        public bool AskedPastEnd { get; private set; }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int left = input.Length - Handed;
            if (left == 0)
            {
                AskedPastEnd = true;
                return 0;
            }
            int n = Math.Min(Math.Min(buffer.Length, left), ChunkSize);
            if (Handed >= singleBytesFrom) n = Math.Min(n, 1);
            else n = Math.Min(n, singleBytesFrom - Handed);
            input.Span.Slice(Handed, n).CopyTo(buffer);
            LastPieceStart = Handed;
            Handed += n;
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Handed; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

/// <summary>CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) as gzip's trailer uses.</summary>
internal static class Crc32
{
    private static readonly uint[] Table = BuildTable();

    private static uint[] BuildTable()
    {
        var t = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }

    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in data) c = Table[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }
}
