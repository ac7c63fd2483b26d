using System.Buffers.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Filesystems.Btrfs;

/// <summary>
/// LZO1X decompression (the format of liblzo2's lzo1x_decompress_safe) and the btrfs framing around it
/// (kernel fs/btrfs/lzo.c): a 4-byte total length, then per-sector segments each with a 4-byte length; a segment
/// header never straddles a sector boundary. Every read and write is bounds-checked.
/// </summary>
internal static class BtrfsLzo
{
    private const int LenSize = 4;

    /// <summary>lzo1x_worst_compress(n) = n + n/16 + 64 + 3.</summary>
    private static int WorstCompress(int n) => n + n / 16 + 64 + 3;

    /// <summary>Decompresses a btrfs LZO extent into <paramref name="destination"/>; returns bytes produced.</summary>
    public static int DecompressExtent(ReadOnlySpan<byte> source, Span<byte> destination, int sectorSize, long imageOffset)
    {
        const string S = "btrfs LZO extent";
        if (source.Length < LenSize) throw new TruncatedDataException(S, imageOffset, LenSize, source.Length);
        uint total = BinaryPrimitives.ReadUInt32LittleEndian(source);
        if (total < LenSize || total > source.Length)
            throw MalformedDataException.Field(S, imageOffset, "total length", total, $"between {LenSize} and {source.Length}");
        var segment = new byte[sectorSize];
        int pos = LenSize, produced = 0;
        while (pos < total && produced < destination.Length)
        {
            int leftInSector = sectorSize - pos % sectorSize;
            if (leftInSector < LenSize) pos += leftInSector;
            if (pos + LenSize > total) break;
            uint segLen = BinaryPrimitives.ReadUInt32LittleEndian(source[pos..]);
            long segAt = imageOffset + pos;
            pos += LenSize;
            if (segLen == 0 || segLen > WorstCompress(sectorSize) || segLen > total - pos)
                throw MalformedDataException.Field("btrfs LZO segment", segAt, "length", segLen,
                    $"between 1 and min({WorstCompress(sectorSize)}, {total - pos} bytes left)");
            int n = Lzo1xDecompress(source.Slice(pos, (int)segLen), segment, segAt + LenSize);
            int take = Math.Min(n, destination.Length - produced);
            segment.AsSpan(0, take).CopyTo(destination[produced..]);
            produced += take;
            pos += (int)segLen;
        }
        return produced;
    }

    /// <summary>Decodes one LZO1X block; returns bytes written. Throws on any out-of-bounds reference.</summary>
    public static int Lzo1xDecompress(ReadOnlySpan<byte> src, Span<byte> dst, long imageOffset)
    {
        var d = new Decoder(src, dst, imageOffset);
        return d.Run();
    }

    private ref struct Decoder(ReadOnlySpan<byte> src, Span<byte> dst, long imageOffset)
    {
        private readonly ReadOnlySpan<byte> _src = src;
        private readonly Span<byte> _dst = dst;
        private int _ip;
        private int _op;

        private readonly MalformedDataException Bad(string detail) => new("LZO1X block", imageOffset + _ip, detail);

        private int In()
        {
            if (_ip >= _src.Length) throw Bad("input ends inside an instruction");
            return _src[_ip++];
        }

        private int Le16()
        {
            if (_src.Length - _ip < 2) throw Bad("input ends inside a match distance");
            int v = _src[_ip] | (_src[_ip + 1] << 8);
            _ip += 2;
            return v;
        }

        /// <summary>A zero-extended length: each 0 byte adds 255, the first non-zero byte ends it.</summary>
        private int RunLength(int baseLen)
        {
            int extra = 0;
            while (true)
            {
                int b = In();
                if (b != 0) return checked(extra + baseLen + b);
                extra = checked(extra + 255);
                if (extra > _dst.Length + 255) throw Bad("run length exceeds the output size");
            }
        }

        private void Literals(int count)
        {
            if (count > _src.Length - _ip) throw Bad($"literal run of {count} bytes passes the end of the input");
            if (count > _dst.Length - _op) throw Bad($"literal run of {count} bytes overflows the {_dst.Length}-byte output");
            _src.Slice(_ip, count).CopyTo(_dst[_op..]);
            _ip += count;
            _op += count;
        }

        private void Copy(int distance, int count)
        {
            if (distance <= 0 || distance > _op) throw Bad($"match distance {distance} reaches before the start of the output ({_op} bytes written)");
            if (count > _dst.Length - _op) throw Bad($"match of {count} bytes overflows the {_dst.Length}-byte output");
            for (int i = 0; i < count; i++, _op++) _dst[_op] = _dst[_op - distance];
        }

        public int Run()
        {
            if (_src.Length < 3) throw Bad("block is shorter than 3 bytes");
            int state = 0, t, next;
            if (_src[0] > 17)
            {
                t = In() - 17;
                Literals(t);
                state = t < 4 ? t : 4;
            }
            while (true)
            {
                t = In();
                if (t < 16)
                {
                    if (state == 0)
                    {
                        Literals(t == 0 ? RunLength(15) + 3 : t + 3);
                        state = 4;
                        continue;
                    }
                    next = t & 3;
                    // after 1..3 literals: a 2-byte match within 1 KiB; after a literal run: a 3-byte match 2..3 KiB back
                    if (state != 4) Copy(1 + (t >> 2) + (In() << 2), 2);
                    else Copy(2049 + (t >> 2) + (In() << 2), 3);
                }
                else if (t >= 64)
                {
                    next = t & 3;
                    Copy(1 + ((t >> 2) & 7) + (In() << 3), (t >> 5) + 1);
                }
                else if (t >= 32)
                {
                    int len = (t & 31) == 0 ? RunLength(31) + 2 : (t & 31) + 2;
                    int v = Le16();
                    next = v & 3;
                    Copy(1 + (v >> 2), len);
                }
                else
                {
                    int high = (t & 8) << 11;
                    int len = (t & 7) == 0 ? RunLength(7) + 2 : (t & 7) + 2;
                    int v = Le16();
                    next = v & 3;
                    int distance = high + (v >> 2);
                    if (distance == 0)
                    {
                        if (len != 3) throw Bad($"end marker has length {len}; expected 3");
                        return _op;
                    }
                    Copy(distance + 0x4000, len);
                }
                state = next;
                if (next > 0) Literals(next);
            }
        }
    }
}
