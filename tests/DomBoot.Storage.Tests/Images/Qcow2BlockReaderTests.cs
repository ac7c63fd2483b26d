using System.Buffers.Binary;
using System.IO.Compression;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;
using DomBoot.Storage.Images;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Images;

public class Qcow2BlockReaderTests
{
    private static string Sha256Of(IBlockReader r)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        var buf = new byte[1 << 20];
        for (long off = 0; off < r.Length; off += buf.Length)
        {
            int n = (int)Math.Min(buf.Length, r.Length - off);
            r.ReadExactly(off, buf.AsSpan(0, n));
            sha.AppendData(buf, 0, n);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>Reads odd-sized ranges at odd offsets (crossing clusters) and compares with QEMU's raw output.</summary>
    private static void CompareSampledRanges(IBlockReader r, string rawPath)
    {
        var expected = File.ReadAllBytes(rawPath);
        Assert.Equal(expected.Length, r.Length);
        var rng = new Random(1234);
        for (int i = 0; i < 200; i++)
        {
            long off = rng.NextInt64(0, expected.Length);
            int len = (int)Math.Min(rng.Next(1, 300_000), expected.Length - off);
            var got = new byte[len];
            r.ReadExactly(off, got);
            Assert.True(expected.AsSpan((int)off, len).SequenceEqual(got), $"range {off}+{len} differs");
        }
    }

    [Theory]
    [InlineData("0.10", 65536, false, false)]
    [InlineData("0.10", 4096, true, false)]
    [InlineData("1.1", 512, false, false)]
    [InlineData("1.1", 4096, false, false)]
    [InlineData("1.1", 65536, true, false)]
    [InlineData("1.1", 2097152, false, false)]
    [InlineData("1.1", 2097152, true, false)]
    [InlineData("1.1", 65536, false, true)]
    [InlineData("1.1", 16384, true, true)]
    public void Read_EqualsQemuImgConvert(string compat, int clusterSize, bool compressed, bool extendedL2)
    {
        using var dir = new TempDir();
        var src = Qcow2TestImages.MakeSourceRaw(dir);
        var q = Qcow2TestImages.Convert(dir, src, "img.qcow2", compat, clusterSize, compressed, extendedL2);
        var raw = Qcow2TestImages.ToRaw(dir, q, "back.raw");
        var info = Qcow2TestImages.Info(q);

        using var image = DiskImage.Open(q);
        Assert.Equal("qcow2", image.Format);
        Assert.Equal(info.GetProperty("virtual-size").GetInt64(), image.VirtualSize);
        Assert.Equal(info.GetProperty("cluster-size").GetInt32(), image.Qcow2Header!.ClusterSize);
        Assert.Equal(compat == "0.10" ? 2u : 3u, image.Qcow2Header.Version);
        Assert.Equal(Tools.Sha256(raw), Sha256Of(image.Reader));
        CompareSampledRanges(image.Reader, raw);
    }

    [Fact]
    public void Read_FollowsBackingChainRelativeToImage()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("base"));
        var src = Qcow2TestImages.MakeSourceRaw(dir);
        // base (raw) <- mid (qcow2, compressed) <- top (qcow2 with zero clusters and new data)
        File.Copy(src, dir.File("base/base.raw"));
        Tools.Run("qemu-img", "create", "-f", "qcow2", "-b", "base/base.raw", "-F", "raw", dir.File("mid.qcow2"));
        Qcow2TestImages.QemuIo(dir.File("mid.qcow2"), "qcow2", "write -P 0x5a 65536 131072", "write -P 0x11 2000000 70000");
        Tools.Run("qemu-img", "create", "-f", "qcow2", "-o", "cluster_size=4096", "-b", "mid.qcow2", "-F", "qcow2", dir.File("top.qcow2"));
        Qcow2TestImages.QemuIo(dir.File("top.qcow2"), "qcow2", "write -z 0 65536", "write -P 0x77 100000 5000", "write -z 1048576 1048576");
        var raw = Qcow2TestImages.ToRaw(dir, dir.File("top.qcow2"), "top.raw");

        using var image = DiskImage.Open(dir.File("top.qcow2"));
        Assert.Equal([dir.File("mid.qcow2"), dir.File("base/base.raw")], image.BackingChain);
        var info = Qcow2TestImages.Info(dir.File("top.qcow2"));
        Assert.Equal(info.GetProperty("full-backing-filename").GetString(), image.BackingChain[0]);
        Assert.Equal(Qcow2TestImages.Info(dir.File("mid.qcow2")).GetProperty("full-backing-filename").GetString(), image.BackingChain[1]);
        Assert.Equal(Tools.Sha256(raw), Sha256Of(image.Reader));
        CompareSampledRanges(image.Reader, raw);
    }

    [Fact]
    public void Read_BackingShorterThanImageReadsZerosPastIt()
    {
        using var dir = new TempDir();
        Tools.Run("qemu-img", "create", "-f", "qcow2", dir.File("small.qcow2"), "1M");
        Qcow2TestImages.QemuIo(dir.File("small.qcow2"), "qcow2", "write -P 0x33 0 1M");
        Tools.Run("qemu-img", "create", "-f", "qcow2", "-b", "small.qcow2", "-F", "qcow2", dir.File("big.qcow2"), "3M");
        var raw = Qcow2TestImages.ToRaw(dir, dir.File("big.qcow2"), "big.raw");
        using var image = DiskImage.Open(dir.File("big.qcow2"));
        Assert.Equal(Tools.Sha256(raw), Sha256Of(image.Reader));
    }

    [Fact]
    public void Read_ManyThreadsAgreeWithQemu()
    {
        using var dir = new TempDir();
        var src = Qcow2TestImages.MakeSourceRaw(dir);
        var q = Qcow2TestImages.Convert(dir, src, "img.qcow2", "1.1", 4096, compressed: true);
        var expected = File.ReadAllBytes(Qcow2TestImages.ToRaw(dir, q, "back.raw"));
        using var r = Qcow2BlockReader.Open(q);
        Parallel.For(0, 8, t =>
        {
            var rng = new Random(1234 + t);
            var buf = new byte[70_000];
            for (int i = 0; i < 100; i++)
            {
                long off = rng.NextInt64(0, expected.Length - buf.Length);
                r.ReadExactly(off, buf);
                Assert.True(expected.AsSpan((int)off, buf.Length).SequenceEqual(buf));
            }
        });
    }

    [Fact]
    public void Read_SparseHundredGiBImageTouchesOnlyTheClustersRead()
    {
        using var dir = new TempDir();
        var q = dir.File("big.qcow2");
        Tools.Run("qemu-img", "create", "-f", "qcow2", q, "100G");
        long at = 50L << 30;
        Qcow2TestImages.QemuIo(q, "qcow2", $"write -P 0xc3 {at} 1M");
        Assert.True(new FileInfo(q).Length < 8 << 20);

        using var r = Qcow2BlockReader.Open(q);
        Assert.Equal(100L << 30, r.Length);
        var buf = new byte[1 << 20];
        r.ReadExactly(at, buf);
        Assert.All(buf, b => Assert.Equal(0xc3, b));
        // 16 data clusters of 64 KiB and one L2 table
        Assert.InRange(r.ClustersRead, 1, 17);
        r.ReadExactly(at + (10L << 30), buf);
        Assert.All(buf, b => Assert.Equal(0, b));
        Assert.InRange(r.ClustersRead, 1, 17);
    }

    [Fact]
    public void Read_RawSparseHundredGiBFile()
    {
        using var dir = new TempDir();
        var p = dir.File("big.raw");
        using (var f = new FileStream(p, FileMode.CreateNew))
        {
            f.SetLength(100L << 30);
            f.Position = 50L << 30;
            f.Write(new byte[] { 1, 2, 3, 4 });
        }
        using var image = DiskImage.Open(p);
        Assert.Equal("raw", image.Format);
        var buf = new byte[4];
        image.Reader.ReadExactly(50L << 30, buf);
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, buf);
    }

    [Fact]
    public void Open_RejectsBackingChainLoop()
    {
        using var dir = new TempDir();
        Tools.Run("qemu-img", "create", "-f", "qcow2", "-u", "-b", "b.qcow2", "-F", "qcow2", dir.File("a.qcow2"), "1M");
        Tools.Run("qemu-img", "create", "-f", "qcow2", "-u", "-b", "a.qcow2", "-F", "qcow2", dir.File("b.qcow2"), "1M");
        var ex = Assert.Throws<MalformedDataException>(() => DiskImage.Open(dir.File("a.qcow2")));
        Assert.Contains("loops back", ex.Message, StringComparison.Ordinal);
        var b = Qcow2Header.Parse(File.ReadAllBytes(dir.File("b.qcow2")).AsSpan(0, 65536), 0);
        Assert.Equal((long)b.BackingFileOffset, ex.Offset);
    }

    [Fact]
    public void Open_RejectsBackingChainDeeperThanLimit()
    {
        using var dir = new TempDir();
        Tools.Run("qemu-img", "create", "-f", "qcow2", dir.File("i0.qcow2"), "1M");
        for (int i = 1; i <= Qcow2BlockReader.Limits.MaxBackingDepth + 1; i++)
            Tools.Run("qemu-img", "create", "-f", "qcow2", "-u", "-b", $"i{i - 1}.qcow2", "-F", "qcow2", dir.File($"i{i}.qcow2"), "1M");
        var ex = Assert.Throws<MalformedDataException>(() => DiskImage.Open(dir.File($"i{Qcow2BlockReader.Limits.MaxBackingDepth + 1}.qcow2")));
        Assert.Contains("deeper than", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_MissingBackingFileIsIOException()
    {
        using var dir = new TempDir();
        Tools.Run("qemu-img", "create", "-f", "qcow2", "-u", "-b", "gone.qcow2", "-F", "qcow2", dir.File("a.qcow2"), "1M");
        Assert.ThrowsAny<IOException>(() => DiskImage.Open(dir.File("a.qcow2")));
    }

    [Theory]
    [InlineData("compression_type=zstd", "zstd")]
    [InlineData("data_file=ext.raw", "external data")]
    public void Open_RefusesUnsupportedFeatures(string option, string message)
    {
        using var dir = new TempDir();
        Tools.Run("qemu-img", "create", "-f", "qcow2", "-o", option, dir.File("x.qcow2"), "1M");
        var ex = Assert.Throws<UnsupportedFeatureException>(() => DiskImage.Open(dir.File("x.qcow2")));
        Assert.Contains(message, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_RefusesEncryption()
    {
        using var dir = new TempDir();
        // qemu-img times its PBKDF2 with the thread's CPU clock; on a loaded machine that can read zero and it gives
        // up ("Unable to get accurate CPU usage"): try a few times.
        string[] args = ["create", "--object", "secret,id=sec0,data=abc", "-f", "qcow2",
            "-o", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=50", dir.File("x.qcow2"), "1M"];
        for (int attempt = 1; Tools.Run("qemu-img", args, check: attempt == 5).ExitCode != 0; attempt++) Thread.Sleep(200);
        var ex = Assert.Throws<UnsupportedFeatureException>(() => DiskImage.Open(dir.File("x.qcow2")));
        Assert.Contains("encrypt", ex.Message, StringComparison.Ordinal);
    }

    private static byte[] SmallV3Image(TempDir dir, bool compressed = false)
    {
        var src = Qcow2TestImages.MakeSourceRaw(dir, "small.raw", 1 << 20);
        var q = Qcow2TestImages.Convert(dir, src, "small.qcow2", "1.1", 4096, compressed);
        return File.ReadAllBytes(q);
    }

    public static TheoryData<string, int, ulong, int, long> HeaderMutations => new()
    {
        // field name, offset, value, width (bytes), expected exception offset
        { "magic", 0, 0x514649FA, 4, 0 },
        { "version", 4, 4, 4, 4 },
        { "cluster_bits 8", 20, 8, 4, 20 },
        { "cluster_bits 22", 20, 22, 4, 20 },
        { "size 2^62", 24, 1UL << 62, 8, 24 },
        { "l1_size too small", 36, 0, 4, 36 },
        { "l1_size 2^31", 36, 1UL << 31, 4, 36 },
        { "l1 past end", 40, 1UL << 40, 8, 40 },
        { "l1 unaligned", 40, 0x30001, 8, 40 },
        { "header_length 7", 100, 7, 4, 100 },
        { "header_length huge", 100, 1 << 20, 4, 100 },
        { "refcount_order 7", 96, 7, 4, 96 },
        { "backing size 5000", 16, 5000, 4, 16 },
    };

    [Theory]
    [MemberData(nameof(HeaderMutations))]
    public void Parse_RejectsBadHeaderField(string what, int offset, ulong value, int width, long expectedOffset)
    {
        using var dir = new TempDir();
        var bytes = SmallV3Image(dir);
        if (what.StartsWith("backing", StringComparison.Ordinal)) BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(8), 0x200);
        if (width == 4) BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(offset), (uint)value);
        else BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(offset), value);
        var p = dir.File("bad.qcow2");
        File.WriteAllBytes(p, bytes);
        var ex = Assert.Throws<MalformedDataException>(() => Qcow2BlockReader.Open(p));
        Assert.Equal(expectedOffset, ex.Offset);
    }

    [Fact]
    public void Parse_RefusesUnknownIncompatibleFeature()
    {
        using var dir = new TempDir();
        var bytes = SmallV3Image(dir);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(72), 1UL << 9);
        var p = dir.File("bad.qcow2");
        File.WriteAllBytes(p, bytes);
        var ex = Assert.Throws<UnsupportedFeatureException>(() => Qcow2BlockReader.Open(p));
        Assert.Contains("bit 9", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_RejectsCompressedClusterInflatingPastClusterSize()
    {
        using var dir = new TempDir();
        var bytes = SmallV3Image(dir, compressed: true);
        var h = Qcow2Header.Parse(bytes, 0);
        long l2 = (long)(BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan((int)h.L1TableOffset)) & 0x00FF_FFFF_FFFF_FE00UL);
        // Replace cluster 0 with a deflate stream of two clusters' worth of bytes, appended at a sector boundary.
        var ms = new MemoryStream();
        using (var d = new DeflateStream(ms, CompressionLevel.Optimal, leaveOpen: true)) d.Write(new byte[h.ClusterSize * 2]);
        var stream = ms.ToArray();
        long coffset = (bytes.Length + 511) & ~511L;
        var grown = new byte[coffset + 4096];
        bytes.CopyTo(grown, 0);
        stream.CopyTo(grown, coffset);
        int x = 62 - (h.ClusterBits - 8);
        ulong sectors = (ulong)((stream.Length + 511) / 512) - 1;
        ulong entry = (1UL << 62) | (sectors << x) | (ulong)coffset;
        BinaryPrimitives.WriteUInt64BigEndian(grown.AsSpan((int)l2), entry);
        var p = dir.File("bad.qcow2");
        File.WriteAllBytes(p, grown);
        using var r = Qcow2BlockReader.Open(p);
        var ex = Assert.Throws<MalformedDataException>(() => r.ReadExactly(0, new byte[512]));
        Assert.Equal(coffset, ex.Offset);
        Assert.Contains("past the cluster size", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_RejectsL2TablePastEndOfFile()
    {
        using var dir = new TempDir();
        var bytes = SmallV3Image(dir);
        var h = Qcow2Header.Parse(bytes, 0);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan((int)h.L1TableOffset), 1UL << 40);
        var p = dir.File("bad.qcow2");
        File.WriteAllBytes(p, bytes);
        using var r = Qcow2BlockReader.Open(p);
        var ex = Assert.Throws<MalformedDataException>(() => r.ReadExactly(0, new byte[512]));
        Assert.Equal(h.L1TableOffset, ex.Offset);
    }

    [Theory]
    [InlineData("1.1", 4096, true, false)]
    [InlineData("0.10", 512, false, false)]
    [InlineData("1.1", 16384, false, true)]
    public void Mutation_SweepLetsOnlyAllowedExceptionsOut(string compat, int clusterSize, bool compressed, bool extendedL2)
    {
        using var dir = new TempDir();
        var src = Qcow2TestImages.MakeSourceRaw(dir, "small.raw", 1 << 20);
        var clean = File.ReadAllBytes(Qcow2TestImages.Convert(dir, src, "small.qcow2", compat, clusterSize, compressed, extendedL2));
        var h = Qcow2Header.Parse(clean, 0);
        long l2 = (long)(BinaryPrimitives.ReadUInt64BigEndian(clean.AsSpan((int)h.L1TableOffset)) & 0x00FF_FFFF_FFFF_FE00UL);
        // Regions worth mutating: header + extensions, L1 table, the first L2 table.
        (long Start, int Length)[] regions = [(0, 512), (h.L1TableOffset, 64), (l2, 512)];
        var rng = new Random(1234);
        var p = dir.File("m.qcow2");
        var buf = new byte[64 << 10];
        for (int iter = 0; iter < 400; iter++)
        {
            var bytes = (byte[])clean.Clone();
            if (iter % 10 == 0)
            {
                bytes = bytes[..rng.Next(0, bytes.Length)];
            }
            else
            {
                var (start, len) = regions[rng.Next(regions.Length)];
                int flips = rng.Next(1, 4);
                for (int f = 0; f < flips; f++)
                {
                    long at = start + rng.Next(len);
                    if (at < bytes.Length) bytes[at] ^= (byte)(1 << rng.Next(8));
                }
            }
            File.WriteAllBytes(p, bytes);
            try
            {
                using var r = Qcow2BlockReader.Open(p);
                for (long off = 0; off < Math.Min(r.Length, 1 << 20); off += buf.Length)
                    r.ReadExactly(off, buf.AsSpan(0, (int)Math.Min(buf.Length, r.Length - off)));
            }
            catch (MalformedDataException) { }
            catch (UnsupportedFeatureException) { }
            catch (IOException) { }
        }
    }
}
