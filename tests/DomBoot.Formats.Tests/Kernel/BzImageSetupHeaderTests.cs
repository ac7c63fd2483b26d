using System.Buffers.Binary;
using DomBoot.Formats.Errors;
using DomBoot.Formats.Kernel;
using DomBoot.TestSupport;

namespace DomBoot.Formats.Tests.Kernel;

public sealed class BzImageSetupHeaderTests
{
    [Fact]
    public void Parse_ReadsTheSyntheticImage()
    {
        var bz = BzImage.Parse(Synth.BzImage(), 0x10000);
        Assert.Equal(0x020F, bz.Header.Version);
        Assert.Equal("1.2.3-synthetic (test) #1", bz.KernelVersionString);
        Assert.Equal(0x10000 + Synth.BzPm + Synth.BzPayloadOffset, bz.PayloadFileOffset);
        Assert.Equal(PayloadCompression.Lz4, bz.PayloadCompression);
        Assert.Equal(0x123456u, bz.UncompressedPayloadSize);
        Assert.Equal(0x80000009u, bz.KernelInfo!.SetupTypeMax);
        Assert.Equal(0x10000 + Synth.BzPm + Synth.BzKernelInfoOffset, bz.KernelInfo.FileOffset);
        Assert.False(bz.IsEfiPe);
        Assert.Equal(XLoadFlags.Kernel64 | XLoadFlags.CanBeLoadedAbove4G, bz.Header.XLoadFlags);
    }

    [Theory]
    [InlineData(new byte[] { 0x1F, 0x8B }, PayloadCompression.Gzip)]
    [InlineData(new byte[] { 0x1F, 0x9E }, PayloadCompression.Gzip)]
    [InlineData(new byte[] { 0x42, 0x5A, 0x68 }, PayloadCompression.Bzip2)]
    [InlineData(new byte[] { 0x5D, 0x00, 0x00, 0x00 }, PayloadCompression.Lzma)]
    [InlineData(new byte[] { 0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00 }, PayloadCompression.Xz)]
    [InlineData(new byte[] { 0x89, 0x4C, 0x5A, 0x4F, 0x00 }, PayloadCompression.Lzo)]
    [InlineData(new byte[] { 0x02, 0x21, 0x4C, 0x18 }, PayloadCompression.Lz4)]
    [InlineData(new byte[] { 0x28, 0xB5, 0x2F, 0xFD }, PayloadCompression.Zstd)]
    [InlineData(new byte[] { 0x7F, 0x45, 0x4C, 0x46 }, PayloadCompression.None)]
    [InlineData(new byte[] { 0x00, 0x00 }, PayloadCompression.Unknown)]
    public void DetectCompression_RecognisesEveryDecompressMagic(byte[] start, PayloadCompression expected) =>
        Assert.Equal(expected, BzImage.DetectCompression(start));

    public static TheoryData<string, Type, long> MalformedCases => new()
    {
        { "empty", typeof(TruncatedDataException), 0 },
        { "100 bytes", typeof(TruncatedDataException), 0 },
        { "1023 bytes", typeof(TruncatedDataException), 0 },
        { "bad boot_flag", typeof(MalformedDataException), 0x1FE },
        { "wrong magic", typeof(MalformedDataException), 0x202 },
        { "version 0x1FF", typeof(MalformedDataException), 0x206 },
        { "huge setup_sects", typeof(MalformedDataException), 0x1F1 },
        { "kernel_version out of range", typeof(MalformedDataException), 0x20E },
        { "payload_length lying", typeof(MalformedDataException), 0x248 },
        { "payload_offset lying", typeof(MalformedDataException), 0x248 },
        { "kernel_info past end", typeof(TruncatedDataException), Synth.BzPm + 0x7FFF0 },
        { "kernel_info bad magic", typeof(MalformedDataException), Synth.BzPm + Synth.BzKernelInfoOffset },
        { "kernel_info size_total lying", typeof(MalformedDataException), Synth.BzPm + Synth.BzKernelInfoOffset + 8 },
    };

    private static byte[] Build(string name)
    {
        var b = Synth.BzImage();
        switch (name)
        {
            case "empty": return [];
            case "100 bytes": return b[..100];
            case "1023 bytes": return b[..1023];
            case "bad boot_flag": b[0x1FF] = 0x00; break;
            case "wrong magic": "HdrT"u8.CopyTo(b.AsSpan(0x202)); break;
            case "version 0x1FF": BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(0x206), 0x1FF); break;
            case "huge setup_sects": b[0x1F1] = 200; break;
            case "kernel_version out of range": BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(0x20E), 3 * 512); break;
            case "payload_length lying": BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(0x24C), 0xFFFFFFFF); break;
            case "payload_offset lying": BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(0x248), 0xFFFFFF00); break;
            case "kernel_info past end": BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(0x268), 0x7FFF0); break;
            case "kernel_info bad magic": b[Synth.BzPm + Synth.BzKernelInfoOffset] = (byte)'X'; break;
            case "kernel_info size_total lying":
                BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(Synth.BzPm + Synth.BzKernelInfoOffset + 8), 0x10000);
                break;
            default: throw new ArgumentException(name);
        }
        return b;
    }

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void Parse_RejectsMalformedHeader(string name, Type exceptionType, long offset)
    {
        var bytes = Build(name);
        var e = Assert.Throws(exceptionType, () => BzImage.Parse(bytes, 0));
        Assert.Equal(offset, ((MalformedDataException)e).Offset);
    }

    [Fact]
    public void Parse_RejectsHugeSetupSectsWithTheSpecMessage()
    {
        var b = Synth.BzImage();
        b[0x1F1] = 200;
        var e = Assert.Throws<MalformedDataException>(() => BzImageSetupHeader.Parse(b, 0));
        Assert.Equal("bzImage setup header at offset 0x1F1: setup_sects is 200; expected (setup_sects+1)*512 <= file size 4096", e.Message);
    }

    [Fact]
    public void Parse_RejectsWrongMagicNamingHdrS()
    {
        var b = Synth.BzImage();
        b[0x202] = 0;
        var e = Assert.Throws<MalformedDataException>(() => BzImageSetupHeader.Parse(b, 0));
        Assert.Contains("expected \"HdrS\"", e.Message, StringComparison.Ordinal);
        Assert.StartsWith("bzImage setup header at offset 0x202:", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_UsesTheGivenFileSizeForAHeaderPrefix()
    {
        var kernel = File.ReadAllBytes(Cache.Kernel);
        var h = BzImageSetupHeader.Parse(kernel.AsSpan(0, 0x10000), 0, kernel.Length);
        Assert.Equal(0x020F, h.Version);
        Assert.Throws<MalformedDataException>(() => BzImageSetupHeader.Parse(kernel.AsSpan(0, 0x10000), 0));
    }

    private static void OnlyAllowed(Action parse)
    {
        try { parse(); }
        catch (MalformedDataException) { }
        catch (UnsupportedFeatureException) { }
    }

    [Fact]
    public void Inspect_SurvivesTruncationsAndBitFlipsOfTheRealKernelHeader()
    {
        var kernel = File.ReadAllBytes(Cache.Kernel);
        for (int len = 0; len <= 0x300; len++)
            OnlyAllowed(() => KernelInspector.Inspect(kernel.AsSpan(0, len), "vmlinuz"));
        for (int len = 0x300; len < kernel.Length; len += 0x10001)
            OnlyAllowed(() => KernelInspector.Inspect(kernel.AsSpan(0, len), "vmlinuz"));

        var rng = new Random(1234);
        int window = Math.Min(kernel.Length, 0x10000);
        for (int i = 0; i < 2000; i++)
        {
            int at = i < 1000 ? rng.Next(0x1E0, 0x300) : rng.Next(window); // half on the setup header itself
            byte mask = (byte)(1 << rng.Next(8));
            kernel[at] ^= mask;
            try { OnlyAllowed(() => KernelInspector.Inspect(kernel, "vmlinuz")); }
            finally { kernel[at] ^= mask; }
        }
    }
}
