using System.Buffers.Binary;
using DomBoot.Formats.Errors;
using DomBoot.Formats.Kernel;
using DomBoot.TestSupport;

namespace DomBoot.Formats.Tests.Kernel;

public sealed class KernelInspectorTests
{
    [Fact]
    public void Inspect_RejectsUnknownBytesSayingWhatWasExpectedWhere()
    {
        var e = Assert.Throws<MalformedDataException>(() => KernelInspector.Inspect(new byte[4096], "zeros"));
        Assert.Equal(0x202, e.Offset);
        Assert.Equal("kernel image at offset 0x202: header is \"\\x00\\x00\\x00\\x00\"; expected \"HdrS\" (bzImage), ELF magic at 0x0, "
            + "a Multiboot header in the first 8192 bytes, or a PE image with a .linux section", e.Message);
    }

    [Fact]
    public void Inspect_RejectsRandomBytes()
    {
        var rng = new Random(1234);
        for (int i = 0; i < 50; i++)
        {
            var b = new byte[rng.Next(0, 20000)];
            rng.NextBytes(b);
            var e = Assert.ThrowsAny<MalformedDataException>(() => KernelInspector.Inspect(b, "random"));
            Assert.True(e is TruncatedDataException ? b.Length < 1024 : e.Offset == 0x202, e.Message);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(1023)]
    public void Inspect_RejectsShortFilesAsTruncated(int length)
    {
        var e = Assert.Throws<TruncatedDataException>(() => KernelInspector.Inspect(new byte[length], "short"));
        Assert.Equal(0, e.Offset);
    }

    [Fact]
    public void Inspect_ReportsAPeWithoutLinuxSection()
    {
        var kernel = File.ReadAllBytes(Cache.Kernel);
        var b = kernel.AsSpan(0, 0x5000).ToArray(); // headers and .setup only
        b[0x202] = 0; // no HdrS: only the PE remains
        int pe = (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(0x3C));
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(pe + 6), 1); // keep only .setup, which lies inside the cut
        var e = Assert.Throws<MalformedDataException>(() => KernelInspector.Inspect(b, "addon.efi"));
        Assert.Equal(0x202, e.Offset);
        Assert.Contains("(this PE has 1 sections and no .linux)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Inspect_InflatesAGzipWrappedElf()
    {
        var elf = Synth.Elf(false, [new("Xen", 18, Synth.U32Bytes(0x100400))]);
        var image = KernelInspector.Inspect(Synth.Gzip(elf), "xenolinux.gz");
        Assert.True(image.WasGzipWrapped);
        Assert.Equal(KernelKind.Elf, image.Kind);
        Assert.Equal(elf.Length, image.InflatedSizeInBytes);
        Assert.Equal(0x100400u, image.Elf!.Phys32Entry);
    }

    [Fact]
    public void Inspect_RefusesGzipInsideGzip()
    {
        var twice = Synth.Gzip(Synth.Gzip(Synth.Multiboot1()));
        Assert.Throws<UnsupportedFeatureException>(() => KernelInspector.Inspect(twice, "twice.gz"));
    }

    [Fact]
    public void Inspect_RefusesAnIsizeAboveTheCapBeforeInflating()
    {
        var gz = Synth.Gzip(Synth.Multiboot1());
        BinaryPrimitives.WriteUInt32LittleEndian(gz.AsSpan(gz.Length - 4), 300u * 1024 * 1024);
        var e = Assert.Throws<MalformedDataException>(() => KernelInspector.Inspect(gz, "bomb.gz"));
        Assert.Equal(gz.Length - 4, e.Offset);
        Assert.Contains("ISIZE is 314572800", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Inflate_StopsAtTheCapWhenIsizeLies()
    {
        var gz = Synth.Gzip(new byte[4 * 1024 * 1024]);
        BinaryPrimitives.WriteUInt32LittleEndian(gz.AsSpan(gz.Length - 4), 1000);
        var e = Assert.Throws<MalformedDataException>(() => GzipKernel.Inflate(gz, 0, 1024 * 1024));
        Assert.Equal(0, e.Offset);
        Assert.Contains("inflates to more than 1048576 bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Inflate_RejectsAnIsizeThatDisagreesWithTheData()
    {
        var gz = Synth.Gzip(Synth.Multiboot1());
        BinaryPrimitives.WriteUInt32LittleEndian(gz.AsSpan(gz.Length - 4), 5);
        var e = Assert.Throws<MalformedDataException>(() => KernelInspector.Inspect(gz, "lying.gz"));
        Assert.Equal(0, e.Offset); // zlib checks the CRC32/ISIZE trailer itself: reported as a corrupt stream at its start
        Assert.StartsWith("gzip stream at offset 0x0:", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Inflate_MapsCorruptDeflateDataToMalformed()
    {
        var gz = Synth.Gzip(Synth.Multiboot1());
        for (int i = 10; i < gz.Length - 8; i++) gz[i] = 0xFF;
        var e = Assert.Throws<MalformedDataException>(() => KernelInspector.Inspect(gz, "corrupt.gz"));
        Assert.Equal(0, e.Offset);
    }

    [Fact]
    public void Inspect_SurvivesBitFlipsAndTruncationsOfAGzipKernel()
    {
        var gz = Synth.Gzip(Synth.Elf(false, [new("Xen", 6, "linux\0"u8.ToArray())], "GUEST_OS=linux"));
        var rng = new Random(1234);
        for (int i = 0; i < 2000; i++)
        {
            int at = rng.Next(gz.Length);
            byte mask = (byte)(1 << rng.Next(8));
            gz[at] ^= mask;
            try { ElfKernelTests.OnlyAllowed(() => KernelInspector.Inspect(gz, "k.gz")); }
            finally { gz[at] ^= mask; }
        }
        for (int len = 0; len < gz.Length; len++)
            ElfKernelTests.OnlyAllowed(() => KernelInspector.Inspect(gz.AsSpan(0, len), "k.gz"));
    }

    [Fact]
    public void Inspect_RefusesFilesAboveTheSizeCap()
    {
        using var dir = new TempDir("domboot-big");
        var path = dir.File("huge");
        using (var f = File.Create(path)) f.SetLength(Limits.MaxKernelFileBytes + 1); // sparse
        var e = Assert.Throws<MalformedDataException>(() => KernelInspector.Inspect(path));
        Assert.Contains("file size is 536870913; expected at most 536870912 bytes", e.Message, StringComparison.Ordinal);
    }
}
