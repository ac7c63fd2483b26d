using DomBoot.Formats.Errors;
using DomBoot.Storage.Filesystems.Btrfs;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Filesystems.Btrfs;

public sealed class BtrfsLzoTests
{
    public static TheoryData<string> Inputs => new() { "text", "zeros", "mixed", "short" };

    private static byte[] Input(string kind)
    {
        var rnd = new Random(7);
        switch (kind)
        {
            case "text": return BtrfsTestImages.CompressibleText(4096, 11);
            case "zeros": return new byte[4096];
            case "short": return [.. Enumerable.Range(0, 600).Select(i => (byte)"abcabd\n"[i % 7])];
            default:
                var b = BtrfsTestImages.CompressibleText(4096, 12);
                for (int i = 0; i < 1200; i++) b[rnd.Next(b.Length)] = (byte)rnd.Next(256);
                Array.Clear(b, 2000, 900);
                return b;
        }
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public void Lzo1xDecompress_MatchesLzop(string kind)
    {
        Tools.Require("lzop");
        using var dir = new TempDir("domboot-lzo");
        var data = Input(kind);
        var block = BtrfsTestImages.LzopBlock(data, dir.Path);
        var output = new byte[4096];
        int n = BtrfsLzo.Lzo1xDecompress(block, output, 0);
        Assert.Equal(data, output.AsSpan(0, n).ToArray());
    }

    [Fact]
    public void DecompressExtent_HandlesSegmentsAcrossSectors()
    {
        Tools.Require("lzop");
        using var dir = new TempDir("domboot-lzo");
        var data = BtrfsTestImages.CompressibleText(5 * 4096, 13);
        var extent = BtrfsTestImages.LzoExtent(data, 4096, dir.Path);
        var output = new byte[data.Length];
        Assert.Equal(data.Length, BtrfsLzo.DecompressExtent(extent, output, 4096, 0));
        Assert.Equal(data, output);
    }

    [Fact]
    public void Lzo1xDecompress_DecodesHandMadeLiteralBlock()
    {
        // first byte 17 + 5: five literals, then the end marker (M4, distance 0, length 3)
        byte[] block = [22, (byte)'h', (byte)'e', (byte)'l', (byte)'l', (byte)'o', 0x11, 0, 0];
        var output = new byte[16];
        Assert.Equal(5, BtrfsLzo.Lzo1xDecompress(block, output, 0));
        Assert.Equal("hello"u8.ToArray(), output.AsSpan(0, 5).ToArray());
    }

    public static TheoryData<byte[], long> MalformedBlocks => new()
    {
        // literal run longer than the input
        { [22, (byte)'h', (byte)'e'], 1 },
        // one literal, then an M3 match (length 3) at distance 2 with only 1 byte written
        { [18, (byte)'x', 0x21, 0x04, 0x00, 0x11, 0, 0], 5 },
        // no end marker: input ends after the literal
        { [18, (byte)'x', 0x20], 3 },
        // end marker with a length other than 3
        { [18, (byte)'x', 0x12, 0, 0], 5 },
    };

    [Theory]
    [MemberData(nameof(MalformedBlocks))]
    public void Lzo1xDecompress_RejectsMalformedBlocks(byte[] block, long offset)
    {
        var ex = Assert.Throws<MalformedDataException>(() => BtrfsLzo.Lzo1xDecompress(block, new byte[64], 0x1000));
        Assert.Equal(0x1000 + offset, ex.Offset);
    }

    [Fact]
    public void Lzo1xDecompress_RejectsOutputOverflow()
    {
        byte[] block = [22, (byte)'h', (byte)'e', (byte)'l', (byte)'l', (byte)'o', 0x11, 0, 0];
        Assert.Throws<MalformedDataException>(() => BtrfsLzo.Lzo1xDecompress(block, new byte[4], 0));
    }

    [Fact]
    public void DecompressExtent_RejectsBadLengths()
    {
        var ex = Assert.Throws<MalformedDataException>(() => BtrfsLzo.DecompressExtent([100, 0, 0, 0, 1, 0, 0, 0], new byte[4096], 4096, 0x2000));
        Assert.Equal(0x2000, ex.Offset);
        ex = Assert.Throws<MalformedDataException>(() => BtrfsLzo.DecompressExtent([12, 0, 0, 0, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0], new byte[4096], 4096, 0x2000));
        Assert.Equal(0x2004, ex.Offset);
        Assert.Throws<TruncatedDataException>(() => BtrfsLzo.DecompressExtent([1, 0], new byte[4096], 4096, 0));
    }
}
