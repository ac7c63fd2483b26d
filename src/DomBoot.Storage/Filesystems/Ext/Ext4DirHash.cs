using System.Numerics;

namespace DomBoot.Storage.Filesystems.Ext;

/// <summary>
/// The htree directory hashes (ext4 disk layout, "Hash Tree Directories"; kernel fs/ext4/hash.c): legacy,
/// half-MD4 and TEA, each in a signed-char and an unsigned-char flavour. Only the major hash is needed to pick
/// a leaf block.
/// </summary>
internal static class Ext4DirHash
{
    public const byte Legacy = 0;
    public const byte HalfMd4 = 1;
    public const byte Tea = 2;
    public const byte LegacyUnsigned = 3;
    public const byte HalfMd4Unsigned = 4;
    public const byte TeaUnsigned = 5;

    /// <summary>The seed used when s_hash_seed is all zeros (the MD4 initial state).</summary>
    private static readonly uint[] DefaultSeed = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476];

    /// <summary>The major hash of <paramref name="name"/>, bit 0 cleared; null for an unknown hash version.</summary>
    public static uint? MajorHash(ReadOnlySpan<byte> name, byte version, ReadOnlySpan<uint> seed)
    {
        Span<uint> buf = stackalloc uint[4];
        bool zeroSeed = seed.Length < 4 || (seed[0] | seed[1] | seed[2] | seed[3]) == 0;
        (zeroSeed ? DefaultSeed : seed[..4]).CopyTo(buf);
        bool unsigned = version >= LegacyUnsigned;
        uint hash;
        switch (version)
        {
            case Legacy:
            case LegacyUnsigned:
                hash = LegacyHash(name, unsigned);
                break;
            case HalfMd4:
            case HalfMd4Unsigned:
            {
                Span<uint> input = stackalloc uint[8];
                for (int at = 0; at < name.Length; at += 32)
                {
                    StringToHashBuffer(name[at..], input, unsigned);
                    HalfMd4Transform(buf, input);
                }
                hash = buf[1];
                break;
            }
            case Tea:
            case TeaUnsigned:
            {
                Span<uint> input = stackalloc uint[4];
                for (int at = 0; at < name.Length; at += 16)
                {
                    StringToHashBuffer(name[at..], input, unsigned);
                    TeaTransform(buf, input);
                }
                hash = buf[0];
                break;
            }
            default:
                return null;
        }
        hash &= ~1u;
        if (hash == 0x7FFFFFFFu << 1) hash = (0x7FFFFFFFu - 1) << 1; // EXT4_HTREE_EOF_32BIT is reserved
        return hash;
    }

    private static uint LegacyHash(ReadOnlySpan<byte> name, bool unsigned)
    {
        uint hash0 = 0x12A3FE2D, hash1 = 0x37ABE8F9;
        foreach (byte b in name)
        {
            int c = unsigned ? b : (sbyte)b;
            uint hash = unchecked(hash1 + (hash0 ^ (uint)(c * 7152373)));
            if ((hash & 0x80000000) != 0) hash = unchecked(hash - 0x7FFFFFFF);
            hash1 = hash0;
            hash0 = hash;
        }
        return hash0 << 1;
    }

    /// <summary>str2hashbuf: packs up to 4 * output.Length bytes big-endian-ish into words, padded with the length.</summary>
    private static void StringToHashBuffer(ReadOnlySpan<byte> msg, Span<uint> output, bool unsigned)
    {
        uint pad = (uint)msg.Length | ((uint)msg.Length << 8);
        pad |= pad << 16;
        uint val = pad;
        int len = Math.Min(msg.Length, output.Length * 4);
        int o = 0;
        for (int i = 0; i < len; i++)
        {
            int c = unsigned ? msg[i] : (sbyte)msg[i];
            val = unchecked((uint)c + (val << 8));
            if (i % 4 == 3)
            {
                output[o++] = val;
                val = pad;
            }
        }
        if (o < output.Length) output[o++] = val;
        while (o < output.Length) output[o++] = pad;
    }

    private static void HalfMd4Transform(Span<uint> buf, ReadOnlySpan<uint> x)
    {
        const uint k2 = 0x5A827999, k3 = 0x6ED9EBA1;
        uint a = buf[0], b = buf[1], c = buf[2], d = buf[3];
        static uint F(uint x, uint y, uint z) => z ^ (x & (y ^ z));
        static uint G(uint x, uint y, uint z) => unchecked((x & y) + ((x ^ y) & z));
        static uint H(uint x, uint y, uint z) => x ^ y ^ z;
        unchecked
        {
            a = BitOperations.RotateLeft(a + F(b, c, d) + x[0], 3);
            d = BitOperations.RotateLeft(d + F(a, b, c) + x[1], 7);
            c = BitOperations.RotateLeft(c + F(d, a, b) + x[2], 11);
            b = BitOperations.RotateLeft(b + F(c, d, a) + x[3], 19);
            a = BitOperations.RotateLeft(a + F(b, c, d) + x[4], 3);
            d = BitOperations.RotateLeft(d + F(a, b, c) + x[5], 7);
            c = BitOperations.RotateLeft(c + F(d, a, b) + x[6], 11);
            b = BitOperations.RotateLeft(b + F(c, d, a) + x[7], 19);

            a = BitOperations.RotateLeft(a + G(b, c, d) + x[1] + k2, 3);
            d = BitOperations.RotateLeft(d + G(a, b, c) + x[3] + k2, 5);
            c = BitOperations.RotateLeft(c + G(d, a, b) + x[5] + k2, 9);
            b = BitOperations.RotateLeft(b + G(c, d, a) + x[7] + k2, 13);
            a = BitOperations.RotateLeft(a + G(b, c, d) + x[0] + k2, 3);
            d = BitOperations.RotateLeft(d + G(a, b, c) + x[2] + k2, 5);
            c = BitOperations.RotateLeft(c + G(d, a, b) + x[4] + k2, 9);
            b = BitOperations.RotateLeft(b + G(c, d, a) + x[6] + k2, 13);

            a = BitOperations.RotateLeft(a + H(b, c, d) + x[3] + k3, 3);
            d = BitOperations.RotateLeft(d + H(a, b, c) + x[7] + k3, 9);
            c = BitOperations.RotateLeft(c + H(d, a, b) + x[2] + k3, 11);
            b = BitOperations.RotateLeft(b + H(c, d, a) + x[6] + k3, 15);
            a = BitOperations.RotateLeft(a + H(b, c, d) + x[1] + k3, 3);
            d = BitOperations.RotateLeft(d + H(a, b, c) + x[5] + k3, 9);
            c = BitOperations.RotateLeft(c + H(d, a, b) + x[0] + k3, 11);
            b = BitOperations.RotateLeft(b + H(c, d, a) + x[4] + k3, 15);

            buf[0] += a;
            buf[1] += b;
            buf[2] += c;
            buf[3] += d;
        }
    }

    private static void TeaTransform(Span<uint> buf, ReadOnlySpan<uint> x)
    {
        const uint delta = 0x9E3779B9;
        uint sum = 0, b0 = buf[0], b1 = buf[1];
        uint a = x[0], b = x[1], c = x[2], d = x[3];
        unchecked
        {
            for (int n = 0; n < 16; n++)
            {
                sum += delta;
                b0 += ((b1 << 4) + a) ^ (b1 + sum) ^ ((b1 >> 5) + b);
                b1 += ((b0 << 4) + c) ^ (b0 + sum) ^ ((b0 >> 5) + d);
            }
            buf[0] += b0;
            buf[1] += b1;
        }
    }
}
