using System.Buffers.Binary;
using System.Globalization;
using System.Text.RegularExpressions;
using DomBoot.Formats.Errors;
using DomBoot.Formats.Kernel;
using DomBoot.TestSupport;

namespace DomBoot.Formats.Tests.Kernel;

/// <summary>Extracts the vmlinux from the Debian bzImage's LZ4 payload once per test class, with dd-free shell tools.</summary>
public sealed class VmlinuxFixture : IDisposable
{
    private readonly TempDir _dir = new("domboot-vmlinux");

    public string Path { get; }
    public byte[] Bytes { get; }

    public VmlinuxFixture()
    {
        var kernel = File.ReadAllBytes(Cache.Kernel);
        int setupSects = kernel[0x1F1] == 0 ? 4 : kernel[0x1F1];
        long payload = (setupSects + 1) * 512L + BinaryPrimitives.ReadUInt32LittleEndian(kernel.AsSpan(0x248));
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(kernel.AsSpan(0x24C));
        Tools.Require("lz4");
        Path = _dir.File("vmlinux");
        // lz4 exits 1 because of the 4-byte size trailer after the legacy frame; the output is complete
        Tools.Shell(FormattableString.Invariant(
            $"tail -c +{payload + 1} '{Cache.Kernel}' | head -c {length} | lz4 -dc > '{Path}'"), check: false);
        Bytes = File.ReadAllBytes(Path);
        Assert.True(Bytes.Length > 64 && ElfKernel.HasMagic(Bytes), "lz4 did not produce an ELF from the bzImage payload");
    }

    public void Dispose() => _dir.Dispose();
}

public sealed class ElfKernelTests(VmlinuxFixture vmlinux) : IClassFixture<VmlinuxFixture>
{
    [Fact]
    public void Parse_MatchesReadelfOnTheDebianVmlinux()
    {
        var elf = ElfKernel.Parse(vmlinux.Bytes, 0);
        Assert.Equal(64, elf.Class);
        Assert.Equal(62, elf.Machine);

        var header = Tools.Run("readelf", "-hW", vmlinux.Path).Stdout;
        var entry = Regex.Match(header, @"Entry point address:\s+0x([0-9a-f]+)").Groups[1].Value;
        Assert.Equal(ulong.Parse(entry, NumberStyles.HexNumber, CultureInfo.InvariantCulture), elf.Entry);

        var segments = Tools.Run("readelf", "-lW", vmlinux.Path).Stdout;
        var loads = Regex.Matches(segments, @"^\s+LOAD\s+0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+)",
            RegexOptions.Multiline);
        var ours = elf.ProgramHeaders.Where(p => p.TypeName == "LOAD").ToList();
        Assert.Equal(loads.Count, ours.Count);
        Assert.NotEmpty(ours);
        static ulong H(Match m, int g) => ulong.Parse(m.Groups[g].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        for (int i = 0; i < ours.Count; i++)
        {
            Assert.Equal(H(loads[i], 1), ours[i].Offset);
            Assert.Equal(H(loads[i], 2), ours[i].VAddr);
            Assert.Equal(H(loads[i], 3), ours[i].PAddr);
            Assert.Equal(H(loads[i], 4), ours[i].FileSize);
            Assert.Equal(H(loads[i], 5), ours[i].MemSize);
        }

        var notes = Tools.Run("readelf", "-nW", vmlinux.Path).Stdout;
        var pvh = Regex.Match(notes, @"Xen\s+0x0000000[48]\s+Unknown note type: \(0x00000012\)\s+description data: ((?:[0-9a-f]{2} ?)+)");
        Assert.True(pvh.Success, "readelf -n shows no Xen note 0x12");
        var desc = pvh.Groups[1].Value.Trim().Split(' ').Select(x => byte.Parse(x, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(BinaryPrimitives.ReadUInt32LittleEndian(desc), elf.Phys32Entry);
        Assert.Equal(Regex.Count(notes, @"^\s+Xen\s+0x", RegexOptions.Multiline), elf.XenNotes.Count);
        Assert.Equal("PT_NOTE", elf.XenNotesSource);
        Assert.Equal("linux", elf.XenNotes.Single(n => n.TypeName == "GUEST_OS").StringValue);
        Assert.Equal("xen-3.0", elf.XenNotes.Single(n => n.TypeName == "XEN_VERSION").StringValue);
        Assert.Equal([1ul, 1ul], elf.XenNotes.Single(n => n.TypeName == "L1_MFN_VALID").Values);
        string release = File.ReadAllText(System.IO.Path.Combine(System.IO.Path.GetDirectoryName(Cache.Kernel)!, "release")).Trim();
        Assert.Equal(release, elf.LinuxBuildSalt);
        Assert.True(elf.IsLinuxOrPvh);
    }

    [Fact]
    public void Inspect_ReportsTheVmlinuxAsElfAndRendersIt()
    {
        var image = KernelInspector.Inspect(vmlinux.Bytes, "vmlinux");
        Assert.Equal(KernelKind.Elf, image.Kind);
        Assert.Null(image.Multiboot1);
        Assert.Null(image.Multiboot2);
        var text = KernelImageText.Render(image);
        Assert.Contains(FormattableString.Invariant($"PVH entry (PHYS32_ENTRY): 0x{image.Elf!.Phys32Entry:X}\n"), text, StringComparison.Ordinal);
        using var doc = System.Text.Json.JsonDocument.Parse(KernelImageJson.ToJson(image, indented: false));
        Assert.Equal(image.Elf.Phys32Entry, doc.RootElement.GetProperty("elf").GetProperty("phys32Entry").GetUInt32());
    }

    [Fact]
    public void Inspect_SurvivesBitFlipsAndTruncationsOfTheVmlinuxHeaders()
    {
        var bytes = vmlinux.Bytes.ToArray();
        var elf = ElfKernel.Parse(bytes, 0);
        var note = elf.ProgramHeaders.First(p => p.TypeName == "NOTE");
        int headerEnd = 64 + elf.ProgramHeaders.Count * 56;
        for (int len = 0; len <= headerEnd; len += 3)
            OnlyAllowed(() => KernelInspector.Inspect(bytes.AsSpan(0, len), "vmlinux"));
        var rng = new Random(1234);
        for (int i = 0; i < 2000; i++)
        {
            int at = i % 2 == 0 ? rng.Next(headerEnd) : (int)note.Offset + rng.Next((int)note.FileSize);
            byte mask = (byte)(1 << rng.Next(8));
            bytes[at] ^= mask;
            try { OnlyAllowed(() => KernelInspector.Inspect(bytes, "vmlinux")); }
            finally { bytes[at] ^= mask; }
        }
    }

    internal static void OnlyAllowed(Action parse)
    {
        try { parse(); }
        catch (MalformedDataException) { }
        catch (UnsupportedFeatureException) { }
    }
}

/// <summary>Synthetic ELF edge cases: ELF32 with __xen_guest, notes only in sections, malformed headers.</summary>
public sealed class ElfKernelSyntheticTests
{
    private static readonly Synth.Note[] LinuxNotes =
    [
        new("Xen", 6, "linux\0"u8.ToArray()),
        new("Xen", 5, "xen-3.0\0"u8.ToArray()),
        new("Xen", 3, Synth.U32Bytes(0xC0000000)),
        new("Xen", 18, Synth.U32Bytes(0x100400)),
        new("Xen", 19, [.. Synth.U32Bytes(0x200000), .. Synth.U32Bytes(0x1000000), .. Synth.U32Bytes(0x7FFFFFFF)]),
        new("GNU", 3, new byte[20]),
    ];

    [Fact]
    public void Parse_ReadsElf32NotesAndXenGuestSection()
    {
        var b = Synth.Elf(false, LinuxNotes, "GUEST_OS=linux,GUEST_VER=2.6,XEN_VER=xen-3.0,VIRT_BASE=0xC0000000,PAE=yes[extended-cr3],BSD_SYMTAB");
        var elf = ElfKernel.Parse(b, 0);
        Assert.Equal(32, elf.Class);
        Assert.Equal("i386", elf.MachineName);
        Assert.Equal(0x100000ul, elf.Entry);
        Assert.Equal(0x100400u, elf.Phys32Entry);
        Assert.Equal(5, elf.XenNotes.Count);
        Assert.Equal("PHYS32_RELOC", elf.XenNotes[4].TypeName);
        Assert.Equal([0x200000ul, 0x1000000ul, 0x7FFFFFFFul], elf.XenNotes[4].Values);
        Assert.Equal(0xC0000000ul, elf.XenNotes[2].NumericValue);
        Assert.Equal(6, elf.XenGuest.Count);
        Assert.Equal(new XenGuestPair("PAE", "yes[extended-cr3]"), elf.XenGuest[4]);
        Assert.Equal(new XenGuestPair("BSD_SYMTAB", ""), elf.XenGuest[5]);
        Assert.StartsWith("GUEST_OS=linux,", elf.XenGuestString, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_FallsBackToShtNoteSections()
    {
        var b = Synth.Elf(true, LinuxNotes, notesInProgramHeader: false, machine: 62);
        var elf = ElfKernel.Parse(b, 0);
        Assert.Equal("SHT_NOTE", elf.XenNotesSource);
        Assert.Equal(0x100400u, elf.Phys32Entry);
        Assert.Single(elf.ProgramHeaders);
    }

    [Fact]
    public void Parse_ReportsOtherMachinesWithoutRefusing()
    {
        var elf = ElfKernel.Parse(Synth.Elf(true, [], machine: 183), 0);
        Assert.Equal("aarch64", elf.MachineName);
        Assert.Empty(elf.XenNotes);
        Assert.Null(elf.Phys32Entry);
        Assert.Null(elf.XenNotesSource);
    }

    public static TheoryData<string, Type, long> MalformedCases => new()
    {
        { "EI_CLASS 3", typeof(MalformedDataException), 4 },
        { "EI_DATA 0", typeof(MalformedDataException), 5 },
        { "phnum huge", typeof(MalformedDataException), 44 },
        { "phentsize small", typeof(MalformedDataException), 42 },
        { "phoff past end", typeof(MalformedDataException), 28 },
        { "p_filesz past end", typeof(MalformedDataException), 52 + 4 },
        { "shoff past end", typeof(MalformedDataException), 32 },
        { "shnum huge", typeof(MalformedDataException), 48 },
        { "note namesz lying", typeof(MalformedDataException), -1 },
        { "note descsz lying", typeof(MalformedDataException), -1 },
        { "PHYS32_ENTRY 2 bytes", typeof(MalformedDataException), -2 },
        { "__xen_guest key too long", typeof(MalformedDataException), -1 },
        { "truncated header", typeof(TruncatedDataException), 0 },
    };

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void Parse_RejectsMalformedElf(string name, Type exceptionType, long offset)
    {
        var notes = LinuxNotes;
        string? guest = null;
        if (name == "PHYS32_ENTRY 2 bytes") notes = [new("Xen", 18, [1, 2])];
        if (name == "__xen_guest key too long") guest = new string('K', 32) + "=1";
        var b = Synth.Elf(false, notes, guest);
        int noteAt = 52 + 2 * 32; // notes follow the two program headers
        void W16(int o, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(o), v);
        void W32(int o, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(o), v);
        switch (name)
        {
            case "EI_CLASS 3": b[4] = 3; break;
            case "EI_DATA 0": b[5] = 0; break;
            case "phnum huge": W16(44, 0xFFFF); break;
            case "phentsize small": W16(42, 16); break;
            case "phoff past end": W32(28, (uint)b.Length - 8); break;
            case "p_filesz past end": W32(52 + 16, (uint)b.Length + 1); break;
            case "shoff past end": W32(32, 0xFFFFFFF0); break;
            case "shnum huge": W16(48, 5000); break;
            case "note namesz lying": W32(noteAt, 0x7FFFFFFF); offset = noteAt; break;
            case "note descsz lying": W32(noteAt + 4, 0x1000); offset = noteAt; break;
            case "PHYS32_ENTRY 2 bytes": offset = noteAt + 12 + 4; break;
            case "__xen_guest key too long": offset = b.AsSpan().IndexOf("KKKK"u8); break; // the section start
            case "truncated header": b = b[..40]; break;
        }
        var e = Assert.Throws(exceptionType, () => ElfKernel.Parse(b, 0));
        Assert.Equal(offset, ((MalformedDataException)e).Offset);
    }

    [Fact]
    public void Parse_IgnoresWhereEmptyNoteAreasPoint()
    {
        var b = Synth.Elf(false, LinuxNotes, "GUEST_OS=linux");
        int note = 52 + 32; // second program header: PT_NOTE
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(note + 4), 0xFFFFFFF0);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(note + 16), 0);
        // every section empty and far away, too
        int shoff = (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(32));
        for (int i = 1; i < BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(48)); i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(shoff + i * 40 + 16), 0xFFFFFFF0);
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(shoff + i * 40 + 20), 0);
        }
        var elf = ElfKernel.Parse(b, 0);
        Assert.Empty(elf.XenNotes);
        Assert.Null(elf.XenGuestString); // .shstrtab is empty too, so no section has a name
    }

    [Fact]
    public void Parse_RefusesBigEndianAsUnsupported()
    {
        var b = Synth.Elf(false, []);
        b[5] = 2;
        Assert.Throws<UnsupportedFeatureException>(() => ElfKernel.Parse(b, 0));
    }

    [Fact]
    public void Parse_RefusesMoreNotesThanTheLimit()
    {
        var many = Enumerable.Range(0, Limits.MaxElfNotes + 1).Select(_ => new Synth.Note("X", 1, [])).ToArray();
        var e = Assert.Throws<MalformedDataException>(() => ElfKernel.Parse(Synth.Elf(false, many), 0));
        Assert.Contains("more than 4096 notes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Inspect_SurvivesBitFlipsOfSyntheticElf32AndElf64()
    {
        var rng = new Random(1234);
        foreach (bool is64 in new[] { false, true })
        {
            var b = Synth.Elf(is64, LinuxNotes, "GUEST_OS=linux,XEN_VER=xen-3.0", machine: (ushort)(is64 ? 62 : 3));
            for (int i = 0; i < 2000; i++)
            {
                // one to three flips at a time
                var flips = Enumerable.Range(0, 1 + rng.Next(3)).Select(_ => (at: rng.Next(b.Length), mask: (byte)(1 << rng.Next(8)))).ToArray();
                foreach (var (at, mask) in flips) b[at] ^= mask;
                try { ElfKernelTests.OnlyAllowed(() => KernelInspector.Inspect(b, "elf")); }
                finally { foreach (var (at, mask) in flips.Reverse()) b[at] ^= mask; }
            }
            for (int len = 0; len < b.Length; len++)
                ElfKernelTests.OnlyAllowed(() => KernelInspector.Inspect(b.AsSpan(0, len), "elf"));
        }
    }
}
