using System.IO.Compression;
using System.Text;
using DomBoot.Formats.Cpio;
using DomBoot.Formats.Errors;
using DomBoot.TestSupport;
using static DomBoot.Formats.Tests.Cpio.CpioTestSupport;

namespace DomBoot.Formats.Tests.Cpio;

public sealed class CpioReaderTests
{
    /// <summary>
    /// One file "a" = "hello\n" and the trailer, no 512 padding. Layout: header 0, name 110..112, data 112..118,
    /// pad to 120, trailer header 120, trailer name 230..241, end 244.
    /// </summary>
    private static byte[] Small(CpioFormat format = CpioFormat.Newc) => InitramfsBuilder.BuildInMemory(
        w => w.AddFile("a", "hello\n"u8, mtime: DateTimeOffset.FromUnixTimeSeconds(1)), gzip: false,
        new CpioWriterOptions { PadTo512 = false, Format = format });

    private static byte[] Set(byte[] b, int at, string ascii)
    {
        Encoding.ASCII.GetBytes(ascii).CopyTo(b, at);
        return b;
    }

    [Fact]
    public void Small_HasTheDocumentedLayout()
    {
        var b = Small();
        Assert.Equal(244, b.Length);
        var archive = new CpioReader(b).ReadArchive();
        var e = Assert.Single(archive.Entries);
        Assert.Equal("a", e.Name);
        Assert.Equal(112, e.DataOffset);
        Assert.Equal("hello\n", Encoding.ASCII.GetString(e.Data.Span));
        Assert.Equal(244, archive.EndOffset);
    }

    public static TheoryData<string, Func<byte[]>, Type, long> Malformed => new()
    {
        { "bad magic", () => Set(Small(), 0, "070703"), typeof(MalformedDataException), 0 },
        { "odc magic", () => Set(Small(), 0, "070707"), typeof(MalformedDataException), 0 },
        { "non-hex digit in c_filesize", () => Set(Small(), 54 + 3, "g"), typeof(MalformedDataException), 54 },
        { "non-hex digit in trailer c_mode", () => Set(Small(), 120 + 14, "Z"), typeof(MalformedDataException), 120 + 14 },
        { "namesize 0", () => Set(Small(), 94, "00000000"), typeof(MalformedDataException), 94 },
        { "namesize above PATH_MAX", () => Set(Small(), 94, "00001001"), typeof(MalformedDataException), 94 },
        { "namesize past end", () => Set(Small(), 120 + 94, "00000FFF"), typeof(TruncatedDataException), 230 },
        { "name without NUL", () => Set(Small(), 111, "b"), typeof(MalformedDataException), 94 },
        { "name with inner NUL", () => { var b = Set(Small(), 120 + 94, "0000000C"); return b; }, typeof(MalformedDataException), 120 + 94 },
        { "filesize past end", () => Set(Small(), 54, "00001000"), typeof(TruncatedDataException), 54 },
        { "missing trailer", () => Small()[..120], typeof(MalformedDataException), 120 },
        { "truncated header", () => Small()[..170], typeof(TruncatedDataException), 120 },
        { "truncated name", () => Small()[..235], typeof(TruncatedDataException), 230 },
        { "truncated data", () => Small()[..115], typeof(TruncatedDataException), 54 },
        { "bad crc data checksum", () => Set(Small(CpioFormat.Crc), 112, "j"), typeof(MalformedDataException), 102 },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void ReadArchive_RejectsMalformed(string name, Func<byte[]> make, Type expected, long offset)
    {
        _ = name;
        var ex = Assert.Throws(expected, () => new CpioReader(make()).ReadArchive());
        Assert.Equal(offset, ((MalformedDataException)ex).Offset);
        // the image walk reports the same failure
        var ex2 = Assert.Throws(expected, () => new CpioReader(make()).ReadSegments(decompress: true));
        Assert.Equal(offset, ((MalformedDataException)ex2).Offset);
    }

    [Fact]
    public void ReadArchive_ReportsOdcAndChecksumInWords()
    {
        var odc = Assert.Throws<MalformedDataException>(() => new CpioReader(Set(Small(), 0, "070707")).ReadArchive());
        Assert.Contains("old binary/odc cpio; expected newc", odc.Message, StringComparison.Ordinal);
        var crc = Assert.Throws<MalformedDataException>(() => new CpioReader(Set(Small(CpioFormat.Crc), 112, "j")).ReadArchive());
        Assert.Contains("bad data checksum", crc.Message, StringComparison.Ordinal);
    }

    /// <summary>Inputs for the image walk; the expected offset is computed from the input (gzip trailer fields sit at its end).</summary>
    public static TheoryData<string, Func<byte[]>, Type, Func<byte[], long>> MalformedSegments => new()
    {
        { "junk", () => Ascii("junk junk"), typeof(MalformedDataException), _ => 0 },
        { "archive not 4-aligned", () => [0, .. Small()], typeof(MalformedDataException), _ => 1 },
        { "junk after trailer", () => [.. Small(), 0, 0, 0, 0, (byte)'x'], typeof(MalformedDataException), _ => 248 },
        { "gzip truncated in deflate data", () => Gzip(Small())[..^10], typeof(TruncatedDataException), b => b.Length },
        { "gzip truncated in trailer", () => Gzip(Small())[..^3], typeof(TruncatedDataException), b => b.Length - 5 },
        { "gzip bad crc", () => { var g = Gzip(Small()); g[^8] ^= 1; return g; }, typeof(MalformedDataException), b => b.Length - 8 },
        { "gzip bad isize", () => { var g = Gzip(Small()); g[^4] ^= 1; return g; }, typeof(MalformedDataException), b => b.Length - 4 },
        { "gzip reserved flag", () => { var g = Gzip(Small()); g[3] = 0x20; return g; }, typeof(MalformedDataException), _ => 3 },
        { "gzip method not deflate", () => { var g = Gzip(Small()); g[2] = 7; return g; }, typeof(MalformedDataException), _ => 2 },
        { "old gzip magic 1F 9E", () => { var g = Gzip(Small()); g[1] = 0x9E; return g; }, typeof(MalformedDataException), _ => 0 },
        { "gzip holding junk", () => Gzip(Ascii("not a cpio archive")), typeof(MalformedDataException), _ => 0 },
        { "gzip holding archive without trailer", () => Gzip(Small()[..120]), typeof(MalformedDataException), _ => 0 },
        { "gzip holding misaligned archive", () => Gzip([0, 0, .. Small()]), typeof(MalformedDataException), _ => 0 },
    };

    [Theory]
    [MemberData(nameof(MalformedSegments))]
    public void ReadSegments_RejectsMalformed(string name, Func<byte[]> make, Type expected, Func<byte[], long> offset)
    {
        _ = name;
        var bytes = make();
        var ex = (MalformedDataException)Assert.Throws(expected, () => new CpioReader(bytes).ReadSegments(decompress: true));
        Assert.Equal(offset(bytes), ex.Offset);
    }

    [Fact]
    public void ReadSegments_RefusesDecompressionAboveTheCap()
    {
        var big = InitramfsBuilder.BuildInMemory(w => w.AddFile("zeros", new byte[200_000]), gzip: true);
        var reader = new CpioReader(big, new CpioReaderOptions { MaxDecompressedBytes = 100_000 });
        var ex = Assert.Throws<MalformedDataException>(() => reader.ReadSegments(decompress: true));
        Assert.Contains("exceeds the limit of 100000 bytes", ex.Message, StringComparison.Ordinal);
        // without decompression it is only reported
        var s = Assert.Single(reader.ReadSegments(decompress: false));
        Assert.Equal((CpioSegmentKind.Compressed, CpioCompression.Gzip, false, (long)big.Length), (s.Kind, s.Compression, s.Decompressed, s.Length));
    }

    [Fact]
    public void ReadSegments_EnforcesEntryLimit()
    {
        var bytes = InitramfsBuilder.BuildInMemory(w => { w.AddFile("a", "1"u8); w.AddFile("b", "2"u8); w.AddFile("c", "3"u8); }, gzip: false);
        var ex = Assert.Throws<MalformedDataException>(() => new CpioReader(bytes, new CpioReaderOptions { MaxEntries = 2 }).ReadSegments());
        Assert.Equal(2 * 116, ex.Offset);
        Assert.Equal(3, new CpioReader(bytes, new CpioReaderOptions { MaxEntries = 3 }).ReadAllEntries().Count);
    }

    [Fact]
    public void ReadArchive_ReadsGnuNewcArchiveLikeTheSourceTree()
    {
        using var tmp = new TempDir();
        var src = Path.Combine(tmp.Path, "src");
        MakeTree(src);
        var bytes = GnuCreate(src, tmp.File("gnu.cpio"));
        var reader = new CpioReader(bytes);
        var archive = reader.ReadArchive();
        Assert.Equal(".", archive.Entries[0].Name);
        Assert.Equal(Snapshot(src), Snapshot(archive.Entries));
        Assert.Equal(GnuList(tmp.File("gnu.cpio")), archive.Entries.Select(e => e.Name));
        // GNU pads to 512 with NULs after the trailer
        var segments = reader.ReadSegments();
        Assert.Equal(CpioSegmentKind.Archive, segments[0].Kind);
        Assert.Equal(0, bytes.Length % 512);
        Assert.All(segments.Skip(1), s => Assert.Equal(CpioSegmentKind.Padding, s.Kind));
    }

    [Fact]
    public void ReadArchive_VerifiesGnuCrcChecksums()
    {
        using var tmp = new TempDir();
        var src = Path.Combine(tmp.Path, "src");
        MakeTree(src);
        var bytes = GnuCreate(src, tmp.File("gnu.cpio"), "crc");
        var entries = new CpioReader(bytes).ReadArchive().Entries;
        Assert.All(entries, e => Assert.Equal(CpioFormat.Crc, e.Header.Format));
        Assert.Equal(Snapshot(src), Snapshot(entries));
        var hostname = entries.Single(e => e.Name == "etc/hostname");
        Assert.Equal(entries.Single(e => e.Name == "etc/hostname").Data.ToArray().Aggregate(0u, (s, b) => s + b), hostname.Header.Check);

        // change one data byte: "bad data checksum" at that entry's c_chksum
        var blob = entries.Single(e => e.Name == "bin/blob");
        var corrupt = (byte[])bytes.Clone();
        corrupt[blob.DataOffset + 1000] ^= 0x40;
        var ex = Assert.Throws<MalformedDataException>(() => new CpioReader(corrupt).ReadArchive());
        Assert.Equal(blob.HeaderOffset + CpioNewcHeader.Offsets.Check, ex.Offset);
        Assert.Contains("bad data checksum", ex.Message, StringComparison.Ordinal);
        // and it passes when verification is off
        Assert.Equal(entries.Count, new CpioReader(corrupt, new CpioReaderOptions { VerifyChecksums = false }).ReadArchive().Entries.Count);
    }

    [Fact]
    public void ReadSegments_WalksConcatenatedArchivesPaddingAndCompressedBlobs()
    {
        using var tmp = new TempDir();
        var early = InitramfsBuilder.BuildInMemory(w => w.AddFile("kernel/x86/microcode/GenuineIntel.bin", "ucode"u8), gzip: false);
        var main = InitramfsBuilder.BuildInMemory(w => { w.AddFile("init", "#!/bin/sh\n"u8); w.AddSymlink("sh", "init"); }, gzip: true);
        var extra = InitramfsBuilder.BuildInMemory(w => w.AddFile("extra", "e"u8), gzip: true, new CpioWriterOptions { PadTo512 = false });
        File.WriteAllBytes(tmp.File("tail.cpio"), Small());
        Tools.Run("zstd", "-q", "-f", tmp.File("tail.cpio"), "-o", tmp.File("tail.zst"));
        var zstd = File.ReadAllBytes(tmp.File("tail.zst"));
        byte[] head = [.. early, .. main, 0, 0, 0, 0, .. extra, 0, 0, 0, 0];
        byte[] image = [.. head, .. new byte[(4 - head.Length % 4) % 4], .. Small(), .. zstd]; // archives start 4-aligned

        var segments = new CpioReader(image).ReadSegments(decompress: true);
        var kinds = segments.Select(s => (s.Kind, s.Compression)).ToList();
        Assert.Equal(
        [
            (CpioSegmentKind.Archive, CpioCompression.None), (CpioSegmentKind.Padding, CpioCompression.None),
            (CpioSegmentKind.Compressed, CpioCompression.Gzip), (CpioSegmentKind.Padding, CpioCompression.None),
            (CpioSegmentKind.Compressed, CpioCompression.Gzip), (CpioSegmentKind.Padding, CpioCompression.None),
            (CpioSegmentKind.Archive, CpioCompression.None), (CpioSegmentKind.Compressed, CpioCompression.Zstd),
        ], kinds);
        Assert.Equal(main.Length, segments[2].Length);
        Assert.Equal(early.Length + main.Length + 4, segments[4].Offset);
        Assert.Equal(extra.Length, segments[4].Length);
        Assert.False(segments[7].Decompressed);
        Assert.Equal(zstd.Length, segments[7].Length);
        Assert.Equal(["kernel", "kernel/x86", "kernel/x86/microcode", "kernel/x86/microcode/GenuineIntel.bin", "init", "sh", "extra", "a"],
            new CpioReader(image).ReadAllEntries(decompress: true).Select(e => e.Name));
        Assert.Equal("init", segments[2].Entries.Single(e => e.Name == "sh").SymlinkTarget);

        // without decompression the walk stops at the first compressed blob
        var plain = new CpioReader(image).ReadSegments();
        Assert.Equal(3, plain.Count);
        Assert.Equal(image.Length - early.Length, plain[2].Length);
    }

    [Fact]
    public void ReadSegments_ReadsGzipToolOutputWithFileNameAndTwoMembers()
    {
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp.File("one.cpio"), Small());
        File.WriteAllBytes(tmp.File("two.cpio"), InitramfsBuilder.BuildInMemory(w => w.AddFile("b", "bee"u8), false));
        Tools.Run("gzip", "-k", "-9", tmp.File("one.cpio"), tmp.File("two.cpio"));   // stores FNAME
        byte[] image = [.. File.ReadAllBytes(tmp.File("one.cpio.gz")), .. File.ReadAllBytes(tmp.File("two.cpio.gz"))];
        var segments = new CpioReader(image).ReadSegments(decompress: true);
        Assert.Equal(2, segments.Count);
        Assert.Equal(["a", "b"], segments.SelectMany(s => s.Entries).Select(e => e.Name));
        Assert.Equal(image.Length, segments.Sum(s => s.Length));

        var one = File.ReadAllBytes(tmp.File("one.cpio.gz"));
        var output = CpioReader.DecompressGzip(image, 0, 1 << 20, out long consumed);
        Assert.Equal(one.Length, consumed);
        Assert.Equal(Small(), output);
    }

    [Theory]
    [InlineData("bzip2", CpioCompression.Bzip2)]
    [InlineData("xz", CpioCompression.Xz)]
    [InlineData("lz4 -l", CpioCompression.Lz4)]
    [InlineData("xz --format=lzma", CpioCompression.Lzma)]
    [InlineData("lzop", CpioCompression.Lzo)]
    [InlineData("zstd", CpioCompression.Zstd)]
    public void ReadSegments_NamesCompressionByMagic(string tool, CpioCompression expected)
    {
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp.File("a.cpio"), Small());
        Tools.Require(tool.Split(' ')[0]);
        Tools.Shell($"{tool} -c < {Q(tmp.File("a.cpio"))} > {Q(tmp.File("a.z"))}");
        var seg = Assert.Single(new CpioReader(File.ReadAllBytes(tmp.File("a.z"))).ReadSegments(decompress: true));
        Assert.Equal((CpioSegmentKind.Compressed, expected, false), (seg.Kind, seg.Compression, seg.Decompressed));
    }

    private static byte[] Gzip(byte[] data)
    {
        using var m = new MemoryStream();
        using (var g = new GZipStream(m, CompressionLevel.Optimal, leaveOpen: true)) g.Write(data);
        return m.ToArray();
    }

    /// <summary>Every truncation, every single-bit flip and a seeded random walk: only the allowed exceptions escape.</summary>
    [Fact]
    public void Mutations_OnlyAllowedExceptionsEscape()
    {
        using var tmp = new TempDir();
        var src = Path.Combine(tmp.Path, "src");
        Directory.CreateDirectory(src);
        File.WriteAllText(Path.Combine(src, "init"), "#!/bin/sh\n");
        Directory.CreateDirectory(Path.Combine(src, "d"));
        File.CreateSymbolicLink(Path.Combine(src, "d/l"), "../init");
        var plain = GnuCreate(src, tmp.File("a.cpio"), "crc");
        int end = plain.AsSpan().LastIndexOfAnyExcept((byte)0) + 1;
        plain = plain[..((end + 3) & ~3)];
        var gz = Gzip(plain);
        var options = new CpioReaderOptions { MaxDecompressedBytes = 1 << 20, MaxEntries = 1000 };
        int parsed = 0, rejected = 0;

        void Try(byte[] input)
        {
            try
            {
                var reader = new CpioReader(input, options);
                reader.ReadSegments(decompress: true);
                if (input.Length > 0 && input[0] == (byte)'0') reader.ReadArchive();
                parsed++;
            }
            catch (MalformedDataException) { rejected++; }
            catch (UnsupportedFeatureException) { rejected++; }
        }

        foreach (var original in new[] { plain, gz })
        {
            for (int n = 0; n <= original.Length; n++) Try(original[..n]);
            for (int i = 0; i < original.Length; i++)
                for (int bit = 0; bit < 8; bit++)
                {
                    var m = (byte[])original.Clone();
                    m[i] ^= (byte)(1 << bit);
                    Try(m);
                }
        }

        var random = new Random(1234);
        for (int iteration = 0; iteration < 3000; iteration++)
        {
            var m = (byte[])(iteration % 2 == 0 ? plain : gz).Clone();
            int edits = random.Next(1, 9);
            for (int k = 0; k < edits; k++)
            {
                int at = random.Next(m.Length);
                m[at] = random.Next(3) switch { 0 => (byte)random.Next(256), 1 => (byte)"0123456789abcdefFG!\0"[random.Next(20)], _ => 0 };
            }
            if (random.Next(4) == 0) m = m[..random.Next(m.Length)];
            Try(m);
        }
        Assert.True(parsed > 0 && rejected > 0, $"parsed {parsed}, rejected {rejected}");
    }
}
