using System.Buffers.Binary;
using DomBoot.Formats.Errors;
using DomBoot.Formats.Kernel;
using DomBoot.TestSupport;

namespace DomBoot.Formats.Tests.Kernel;

public sealed class MultibootTests
{
    /// <summary>Debian's xen.gz inflated by gzip(1), scanned here independently of the parser.</summary>
    private static byte[] GunzipXen()
    {
        using var dir = new TempDir("domboot-xen");
        var path = dir.File("xen");
        Tools.Shell($"gzip -dc '{Cache.XenGz}' > '{path}'");
        return File.ReadAllBytes(path);
    }

    private static int Scan(byte[] b, uint magic, int window, int align)
    {
        for (int at = 0; at + 4 <= Math.Min(window, b.Length); at += align)
            if (BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at)) == magic) return at;
        return -1;
    }

    [Fact]
    public void Inspect_InflatesXenGzAndFindsBothMultibootHeaders()
    {
        var xen = GunzipXen();
        var image = KernelInspector.Inspect(Cache.XenGz);
        Assert.True(image.WasGzipWrapped);
        Assert.Equal(new FileInfo(Cache.XenGz).Length, image.FileSizeInBytes);
        Assert.Equal(xen.Length, image.InflatedSizeInBytes);
        Assert.Equal(KernelKind.Multiboot, image.Kind);
        Assert.NotNull(image.Elf);
        Assert.Equal(32, image.Elf.Class);
        Assert.Equal(BinaryPrimitives.ReadUInt32LittleEndian(xen.AsSpan(24)), image.Elf.Entry);
        Assert.False(image.Elf.IsLinuxOrPvh);

        int mb1 = Scan(xen, 0x1BADB002, 8192, 4);
        Assert.True(mb1 >= 0);
        Assert.Equal(mb1, image.Multiboot1!.Offset);
        Assert.Equal(BinaryPrimitives.ReadUInt32LittleEndian(xen.AsSpan(mb1 + 4)), image.Multiboot1.Flags);
        Assert.Equal(0u, image.Multiboot1.UnknownRequiredFlags);

        int mb2 = Scan(xen, 0xE85250D6, 32768, 8);
        Assert.True(mb2 >= 0);
        var m2 = image.Multiboot2!;
        Assert.Equal(mb2, m2.Offset);
        Assert.Equal(BinaryPrimitives.ReadUInt32LittleEndian(xen.AsSpan(mb2 + 4)), m2.Architecture);
        Assert.Equal(BinaryPrimitives.ReadUInt32LittleEndian(xen.AsSpan(mb2 + 8)), m2.HeaderLength);
        Assert.Equal(0, m2.Tags[^1].Type);
        // independent tag walk
        int p = mb2 + 16, count = 0;
        while (true)
        {
            ushort type = BinaryPrimitives.ReadUInt16LittleEndian(xen.AsSpan(p));
            uint size = BinaryPrimitives.ReadUInt32LittleEndian(xen.AsSpan(p + 4));
            Assert.Equal(type, m2.Tags[count].Type);
            Assert.Equal(size, m2.Tags[count].SizeInBytes);
            Assert.Equal(p, m2.Tags[count].Offset);
            count++;
            if (type == 0) break;
            p += (int)((size + 7) & ~7u);
        }
        Assert.Equal(count, m2.Tags.Count);

        var text = KernelImageText.Render(image);
        Assert.Contains("Gzip-wrapped: yes", text, StringComparison.Ordinal);
        Assert.Contains("Multiboot 1 header: at 0x", text, StringComparison.Ordinal);
        Assert.Contains("Multiboot 2 header: at 0x", text, StringComparison.Ordinal);
        using var doc = System.Text.Json.JsonDocument.Parse(KernelImageJson.ToJson(image));
        Assert.Equal("Multiboot", doc.RootElement.GetProperty("kind").GetString());
        Assert.True(doc.RootElement.GetProperty("wasGzipWrapped").GetBoolean());
    }

    [Fact]
    public void Inspect_ReadsARawMultiboot1Image()
    {
        var image = KernelInspector.Inspect(Synth.Multiboot1(), "mb1.bin");
        Assert.Equal(KernelKind.Multiboot, image.Kind);
        var m = image.Multiboot1!;
        Assert.Equal(0x40, m.Offset);
        Assert.True(m.HasAddressFields);
        Assert.True(m.PageAlignModules);
        Assert.True(m.NeedsMemoryInfo);
        Assert.False(m.HasVideoFields);
        Assert.Equal(0x100080u, m.EntryAddr);
        Assert.Equal(0x100000u, m.LoadAddr);
        Assert.Null(m.ModeType);
        Assert.Null(image.Multiboot2);
        Assert.Null(image.Elf);
    }

    [Fact]
    public void Find_ReportsVideoFieldsAndUnknownRequiredBits()
    {
        var m = Multiboot1Header.Find(Synth.Multiboot1(flags: 0x00010000 | 0x4 | 0x8 | 0x100), 0)!;
        Assert.True(m.HasVideoFields);
        Assert.Equal(1u, m.ModeType);
        Assert.Equal(80u, m.Width);
        Assert.Equal(25u, m.Height);
        Assert.Equal(0x108u, m.UnknownRequiredFlags);
    }

    [Fact]
    public void Find_SkipsAMagicWithABadChecksumAndIgnoresHeadersPast8192()
    {
        var b = Synth.Multiboot1(at: 0x40);
        b[0x48] ^= 1;
        Assert.Null(Multiboot1Header.Find(b, 0));
        Assert.Null(Multiboot1Header.Find(Synth.Multiboot1(at: 8192, size: 16384), 0));
        Assert.Null(Multiboot2Header.Find(Synth.Multiboot2(at: 32768, size: 40000), 0));
    }

    [Fact]
    public void Inspect_ReadsARawMultiboot2Image()
    {
        var image = KernelInspector.Inspect(Synth.Multiboot2(), "mb2.bin");
        Assert.Equal(KernelKind.Multiboot, image.Kind);
        Assert.Null(image.Multiboot1);
        var m = image.Multiboot2!;
        Assert.Equal(0x1000, m.Offset);
        Assert.Equal([2, 3, 5, 0], m.Tags.Select(t => (int)t.Type));
        Assert.Equal(0x100200u, m.EntryAddr);
        Assert.True(m.Tags[2].IsOptional);
        Assert.Equal([1024u, 768u, 32u], m.Tags[2].Values);
        Assert.Equal("framebuffer", m.Tags[2].TypeName);
    }

    public static TheoryData<string, Type, long> MalformedCases => new()
    {
        { "MB1 header cut by the window", typeof(TruncatedDataException), 8192 - 12 },
        { "MB2 header_length past window", typeof(MalformedDataException), 0x1000 + 8 },
        { "MB2 tag size lying", typeof(MalformedDataException), 0x1000 + 16 + 4 },
        { "MB2 tag size below 8", typeof(MalformedDataException), 0x1000 + 16 + 4 },
        { "MB2 no end tag", typeof(MalformedDataException), 0x1000 + 16 + 24 + 16 + 24 + 8 },
        { "MB2 end tag size 16", typeof(MalformedDataException), 0x1000 + 16 + 24 + 16 + 24 + 4 },
    };

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void Find_RejectsMalformedHeaders(string name, Type exceptionType, long offset)
    {
        byte[] b;
        void Fix(int at)
        {
            // keep the checksum valid, so the header is taken as real and then checked
            uint arch = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at + 4));
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at + 8));
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at + 12), unchecked(0u - 0xE85250D6u - arch - len));
        }
        Action find;
        switch (name)
        {
            case "MB1 header cut by the window":
                b = Synth.Multiboot1(at: 8192 - 12, size: 16384);
                find = () => Multiboot1Header.Find(b, 0);
                break;
            default:
                b = Synth.Multiboot2();
                int tags = 0x1000 + 16, end = tags + 24 + 16 + 24;
                switch (name)
                {
                    case "MB2 header_length past window": BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(0x1008), 0x10000); break;
                    case "MB2 tag size lying": BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(tags + 4), 0x1000); break;
                    case "MB2 tag size below 8": BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(tags + 4), 4); break;
                    case "MB2 no end tag": BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(end), 7); break;
                    case "MB2 end tag size 16":
                        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(end + 4), 16);
                        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(0x1008), (uint)(end + 16 - 0x1000));
                        break;
                }
                Fix(0x1000);
                find = () => Multiboot2Header.Find(b, 0);
                break;
        }
        var e = Assert.Throws(exceptionType, find);
        Assert.Equal(offset, ((MalformedDataException)e).Offset);
    }

    [Fact]
    public void Inspect_SurvivesBitFlipsOfMultibootImages()
    {
        // flips with the checksum recomputed, so the tag walk and field reads see the damage
        var rng = new Random(1234);
        foreach (var (b, at0, mb2) in new[] { (Synth.Multiboot1(), 0x40, false), (Synth.Multiboot2(), 0x1000, true) })
        {
            var original = b.ToArray();
            for (int i = 0; i < 1000; i++)
            {
                int at = at0 + 4 + rng.Next(0x60);
                b[at] ^= (byte)(1 << rng.Next(8));
                if (mb2)
                {
                    uint arch = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at0 + 4));
                    uint len = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at0 + 8));
                    BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at0 + 12), unchecked(0u - 0xE85250D6u - arch - len));
                }
                else
                {
                    uint flags = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at0 + 4));
                    BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at0 + 8), unchecked(0u - 0x1BADB002u - flags));
                }
                ElfKernelTests.OnlyAllowed(() => KernelInspector.Inspect(b, "mb"));
                original.CopyTo(b, 0);
            }
        }
    }
}
