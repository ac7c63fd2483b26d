using System.Buffers.Binary;
using System.Globalization;
using System.Text.RegularExpressions;
using DomBoot.Formats.Errors;
using DomBoot.Formats.Kernel;
using DomBoot.TestSupport;

namespace DomBoot.Formats.Tests.Kernel;

/// <summary>A UKI built once per class from Debian's systemd-stub (package systemd-boot-efi) with objcopy.</summary>
public sealed class UkiFixture : IDisposable
{
    public const string Stub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
    public const string Cmdline = "root=/dev/vda1 console=ttyS0 quiet";
    public const string OsRel = "ID=debian\nVERSION_ID=12\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
    private readonly TempDir _dir = new("domboot-uki");

    public string Path { get; }
    public string Release { get; }
    public string ObjdumpSections { get; }

    public UkiFixture()
    {
        Tools.Require(Stub);
        Release = File.ReadAllText(System.IO.Path.Combine(System.IO.Path.GetDirectoryName(Cache.Kernel)!, "release")).Trim();
        File.WriteAllText(_dir.File("cmdline"), Cmdline);
        File.WriteAllText(_dir.File("osrel"), OsRel);
        File.WriteAllText(_dir.File("uname"), Release);
        File.WriteAllBytes(_dir.File("initrd"), Enumerable.Range(0, 3000).Select(i => (byte)i).ToArray());
        Path = _dir.File("uki.efi");
        Tools.Run("objcopy",
            "--add-section", ".osrel=" + _dir.File("osrel"), "--change-section-vma", ".osrel=0x20000",
            "--add-section", ".cmdline=" + _dir.File("cmdline"), "--change-section-vma", ".cmdline=0x30000",
            "--add-section", ".uname=" + _dir.File("uname"), "--change-section-vma", ".uname=0x40000",
            "--add-section", ".initrd=" + _dir.File("initrd"), "--change-section-vma", ".initrd=0x50000",
            "--add-section", ".linux=" + Cache.Kernel, "--change-section-vma", ".linux=0x2000000",
            Stub, Path);
        ObjdumpSections = Tools.Run("objdump", "-h", Path).Stdout;
    }

    public void Dispose() => _dir.Dispose();
}

public sealed class UkiImageTests(UkiFixture uki) : IClassFixture<UkiFixture>
{
    [Fact]
    public void Inspect_ReadsTheUkiSectionsAsObjdumpListsThem()
    {
        var image = KernelInspector.Inspect(uki.Path);
        Assert.Equal(KernelKind.Uki, image.Kind);
        var u = image.Uki!;
        Assert.Equal(UkiFixture.Cmdline, u.Cmdline);
        Assert.Equal(uki.Release, u.Uname);
        Assert.Equal(UkiFixture.OsRel, u.OsRelease);
        Assert.Equal([".sbat", ".osrel", ".cmdline", ".uname", ".initrd", ".linux"], u.Sections.Select(s => s.Name)); // .sbat comes from the stub
        Assert.Contains(u.Pe.Sections, s => s.Name == ".sdmagic");

        // objdump -h: "Idx Name Size VMA LMA File-off Algn"
        var rows = Regex.Matches(uki.ObjdumpSections, @"^\s*\d+ (\S+)\s+([0-9a-f]{8})\s+([0-9a-f]{16})\s+[0-9a-f]{16}\s+([0-9a-f]{8})", RegexOptions.Multiline);
        Assert.Equal(rows.Count, u.Pe.Sections.Count);
        static ulong H(string s) => ulong.Parse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        foreach (Match row in rows)
        {
            var pe = u.Pe.FindSection(row.Groups[1].Value)!;
            Assert.Equal(H(row.Groups[2].Value), pe.VirtualSize);
            Assert.Equal(H(row.Groups[3].Value), u.Pe.ImageBase + pe.VirtualAddress);
            Assert.Equal(H(row.Groups[4].Value), pe.PointerToRawData);
            if (u.FindSection(pe.Name) is { } s)
            {
                Assert.Equal((long)H(row.Groups[4].Value), s.FileOffset);
                Assert.Equal(Math.Min(pe.VirtualSize, pe.SizeOfRawData), s.SizeInBytes);
            }
        }
        Assert.Equal(3000u, u.FindSection(".initrd")!.SizeInBytes);
        Assert.Equal((uint)new FileInfo(Cache.Kernel).Length, u.FindSection(".linux")!.SizeInBytes);

        Assert.Equal(KernelKind.BzImage, u.Linux.Kind);
        Assert.Equal(uki.Release, u.Linux.BzImage!.KernelRelease);
        Assert.Equal(u.FindSection(".linux")!.FileOffset + u.Linux.BzImage.Header.ProtectedModeOffset, u.Linux.BzImage.ProtectedModeFileOffset);

        var text = KernelImageText.Render(image);
        Assert.Contains("Kind: Unified Kernel Image (UKI)\n", text, StringComparison.Ordinal);
        Assert.Contains("Command line: " + UkiFixture.Cmdline + "\n", text, StringComparison.Ordinal);
        Assert.Contains("  Protocol: 2.15\n", text, StringComparison.Ordinal);
        using var doc = System.Text.Json.JsonDocument.Parse(KernelImageJson.ToJson(image));
        Assert.Equal("BzImage", doc.RootElement.GetProperty("uki").GetProperty("linux").GetProperty("kind").GetString());
    }

    [Fact]
    public void Inspect_RejectsAUkiWhoseLinuxSectionIsTheUkiItself()
    {
        // point .linux at file offset 0 with the whole file's size: the recursion must stop at the depth limit
        var b = File.ReadAllBytes(uki.Path);
        var pe = PeImage.Parse(b, 0);
        var linux = pe.FindSection(".linux")!;
        int header = (int)pe.PeHeaderOffset + 24 + pe.SizeOfOptionalHeader + linux.Index * 40;
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(header + 20), 0);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(header + 16), (uint)b.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(header + 8), (uint)b.Length);
        var e = Assert.Throws<MalformedDataException>(() => KernelInspector.Inspect(b, "loop.efi"));
        Assert.Contains("nested more than", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Inspect_SurvivesBitFlipsOfTheUkiHeaders()
    {
        var b = File.ReadAllBytes(uki.Path);
        var pe = PeImage.Parse(b, 0);
        int end = (int)pe.PeHeaderOffset + 24 + pe.SizeOfOptionalHeader + pe.NumberOfSections * 40;
        var rng = new Random(1234);
        for (int i = 0; i < 2000; i++)
        {
            int at = rng.Next(end);
            byte mask = (byte)(1 << rng.Next(8));
            b[at] ^= mask;
            try { ElfKernelTests.OnlyAllowed(() => KernelInspector.Inspect(b, "uki.efi")); }
            finally { b[at] ^= mask; }
        }
    }
}

/// <summary>PE header checks, on the EFI-stub PE of the Debian bzImage.</summary>
public sealed class PeImageTests
{
    private static readonly byte[] Kernel = File.ReadAllBytes(Cache.Kernel);

    public static TheoryData<string, Type> MalformedCases => new()
    {
        { "NumberOfSections huge", typeof(MalformedDataException) },
        { "section raw pointer past end", typeof(MalformedDataException) },
        { "section raw size past end", typeof(MalformedDataException) },
        { "VirtualAddress + VirtualSize overflow", typeof(MalformedDataException) },
        { "e_lfanew past end", typeof(MalformedDataException) },
        { "bad PE signature", typeof(MalformedDataException) },
        { "bad optional header magic", typeof(MalformedDataException) },
        { "SizeOfOptionalHeader small", typeof(MalformedDataException) },
        { "section table past end", typeof(TruncatedDataException) },
    };

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void Parse_RejectsMalformedPe(string name, Type exceptionType)
    {
        var b = Kernel.ToArray();
        int pe = (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(0x3C));
        int opt = pe + 24;
        int table = opt + BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(pe + 20));
        long offset;
        switch (name)
        {
            case "NumberOfSections huge": BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(pe + 6), 0xFFFF); offset = pe + 6; break;
            case "section raw pointer past end": BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(table + 40 + 20), 0xFFFFFF00); offset = table + 40 + 20; break;
            case "section raw size past end": BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(table + 16), (uint)b.Length); offset = table + 20; break;
            case "VirtualAddress + VirtualSize overflow":
                BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(table + 8), 0xFFFFFFFF);
                BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(table + 12), 0x1000);
                offset = table + 12;
                break;
            case "e_lfanew past end": BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(0x3C), 0xFFFFFFF0); offset = 0x3C; break;
            case "bad PE signature": b[pe + 1] = (byte)'X'; offset = pe; break;
            case "bad optional header magic": BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(opt), 0x107); offset = opt; break;
            case "SizeOfOptionalHeader small": BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(pe + 20), 100); offset = pe + 20; break;
            case "section table past end":
                b = b[..(table + 40)];
                offset = table;
                break;
            default: throw new ArgumentException(name);
        }
        var e = Assert.Throws(exceptionType, () => PeImage.Parse(b, 0));
        Assert.Equal(offset, ((MalformedDataException)e).Offset);
    }
}
