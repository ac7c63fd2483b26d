using System.Buffers.Binary;
using System.Globalization;
using System.Text.RegularExpressions;
using DomBoot.TestSupport;

namespace DomBoot.Engine.Tests.Planning;

/// <summary>One PT_LOAD as `readelf -lW` prints it.</summary>
public sealed record LoadSegment(ulong PAddr, ulong MemSize)
{
    public ulong End => PAddr + MemSize;
}

/// <summary>A section as `objdump -h` prints it.</summary>
public sealed record ObjdumpSection(string Name, long Size, long FileOffset);

/// <summary>
/// Kernels built once for all planning tests, with the Debian tools: the ELF vmlinux pulled out of the cloud bzImage's
/// LZ4 payload (and its gzip), the gunzipped Xen hypervisor, and a UKI made with objcopy from systemd-boot-efi's stub.
/// Facts the tests compare against come from readelf and objdump, not from domboot's own parsers.
/// </summary>
public sealed partial class KernelsFixture : IDisposable
{
    public const string UkiStub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
    public const string UkiCmdline = "root=/dev/vda1 console=ttyS0 quiet";
    public const int UkiInitrdBytes = 3000;

    private readonly TempDir _dir = new("domboot-engine-kernels");
    private byte[]? _vmlinuxBytes;

    public string BzImage { get; } = Cache.Kernel;
    public string Release { get; }
    public string Vmlinux { get; }
    public string VmlinuxGz { get; }
    public uint PvhEntry { get; }
    public IReadOnlyList<LoadSegment> VmlinuxLoads { get; }
    public long VmlinuxNoteOffset { get; }
    public string XenGz { get; } = Cache.XenGz;
    public IReadOnlyList<LoadSegment> XenLoads { get; }
    public string Uki { get; }
    public IReadOnlyList<ObjdumpSection> UkiSections { get; }

    /// <summary>The vmlinux bytes (read once; tests patch copies).</summary>
    public byte[] VmlinuxBytes => _vmlinuxBytes ??= File.ReadAllBytes(Vmlinux);

    public KernelsFixture()
    {
        Tools.Require("lz4");
        Tools.Require("readelf");
        Tools.Require("objcopy");
        Tools.Require("objdump");
        Tools.Require("gzip");
        Release = File.ReadAllText(Path.Combine(Path.GetDirectoryName(Cache.Kernel)!, "release")).Trim();

        // The bzImage payload (boot.rst: payload_offset at 0x248 counts from the protected-mode code at
        // (setup_sects + 1) * 512, payload_length at 0x24C) is the LZ4-compressed vmlinux.
        var head = new byte[0x270];
        using (var f = File.OpenRead(Cache.Kernel)) f.ReadExactly(head);
        int setupSects = head[0x1F1] == 0 ? 4 : head[0x1F1];
        long payloadAt = (setupSects + 1) * 512L + BinaryPrimitives.ReadUInt32LittleEndian(head.AsSpan(0x248));
        long payloadLength = BinaryPrimitives.ReadUInt32LittleEndian(head.AsSpan(0x24C));
        Vmlinux = _dir.File("vmlinux");
        // lz4 exits non-zero on the 4-byte uncompressed-size trailer the kernel build appends; the ELF before it is whole.
        Tools.Shell(FormattableString.Invariant($"tail -c +{payloadAt + 1} '{Cache.Kernel}' | head -c {payloadLength} | lz4 -dc > '{Vmlinux}'"), check: false);
        var magic = new byte[4];
        using (var f = File.OpenRead(Vmlinux))
        {
            Assert.True(f.Length > 4, "lz4 produced no vmlinux from the bzImage payload");
            f.ReadExactly(magic);
        }
        Assert.Equal("\x7F" + "ELF", System.Text.Encoding.Latin1.GetString(magic));
        VmlinuxGz = _dir.File("vmlinux.gz");
        Tools.Shell($"gzip -1 -c '{Vmlinux}' > '{VmlinuxGz}'");

        PvhEntry = ReadPvhEntry(Tools.Run("readelf", "-nW", Vmlinux).Stdout);
        var vmPh = Tools.Run("readelf", "-lW", Vmlinux).Stdout;
        VmlinuxLoads = LoadSegments(vmPh);
        var note = NoteLine().Match(vmPh);
        Assert.True(note.Success, "readelf -lW shows no NOTE segment in vmlinux");
        VmlinuxNoteOffset = long.Parse(note.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);

        var xen = _dir.File("xen");
        Tools.Shell($"gzip -dc '{Cache.XenGz}' > '{xen}'");
        XenLoads = LoadSegments(Tools.Run("readelf", "-lW", xen).Stdout);

        Tools.Require(UkiStub);
        File.WriteAllText(_dir.File("cmdline"), UkiCmdline);
        File.WriteAllText(_dir.File("osrel"), "ID=debian\nVERSION_ID=12\n");
        File.WriteAllBytes(_dir.File("uki-initrd"), Enumerable.Range(0, UkiInitrdBytes).Select(i => (byte)(i * 7)).ToArray());
        Uki = _dir.File("uki.efi");
        Tools.Run("objcopy",
            "--add-section", ".osrel=" + _dir.File("osrel"), "--change-section-vma", ".osrel=0x20000",
            "--add-section", ".cmdline=" + _dir.File("cmdline"), "--change-section-vma", ".cmdline=0x30000",
            "--add-section", ".initrd=" + _dir.File("uki-initrd"), "--change-section-vma", ".initrd=0x50000",
            "--add-section", ".linux=" + Cache.Kernel, "--change-section-vma", ".linux=0x2000000",
            UkiStub, Uki);
        UkiSections = ObjdumpRow().Matches(Tools.Run("objdump", "-h", Uki).Stdout)
            .Select(m => new ObjdumpSection(m.Groups[1].Value, long.Parse(m.Groups[2].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                long.Parse(m.Groups[3].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture)))
            .ToList();
    }

    /// <summary>A UKI whose .linux section is <paramref name="linux"/> (built on demand into the fixture folder).</summary>
    public string UkiWithLinux(string name, string linux)
    {
        var path = _dir.File(name);
        if (!File.Exists(path))
            Tools.Run("objcopy", "--add-section", ".linux=" + linux, "--change-section-vma", ".linux=0x2000000", UkiStub, path);
        return path;
    }

    public string PathOf(string name) => _dir.File(name);

    public ObjdumpSection UkiSection(string name) => UkiSections.Single(s => s.Name == name);

    /// <summary>
    /// The Xen note of type 0x12 (XEN_ELFNOTE_PHYS32_ENTRY) in `readelf -n`: binutils prints its descriptor bytes on
    /// the same (-W) or the next line; the PVH entry is their little-endian low 32 bits.
    /// </summary>
    private static uint ReadPvhEntry(string readelfNotes)
    {
        var lines = readelfNotes.Split('\n');
        for (int i = 0; i + 1 < lines.Length; i++)
        {
            var l = lines[i].Trim();
            if (!l.StartsWith("Xen", StringComparison.Ordinal) || !(l.Contains("0x00000012", StringComparison.Ordinal) || l.Contains("PHYS32_ENTRY", StringComparison.Ordinal)))
                continue;
            // with -W binutils prints the descriptor on the note's line, without it on the next one
            var data = Regex.Match(lines[i] + "\n" + lines[i + 1], @"description data:((?: [0-9a-f]{2})+)");
            Assert.True(data.Success, "readelf printed no descriptor bytes for the PVH note: " + lines[i]);
            var bytes = data.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)
                .Select(b => byte.Parse(b, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();
            return BinaryPrimitives.ReadUInt32LittleEndian(bytes);
        }
        Assert.Fail("readelf -n shows no Xen note of type 0x12 in vmlinux:\n" + readelfNotes);
        return 0;
    }

    private static List<LoadSegment> LoadSegments(string readelfProgramHeaders)
    {
        static ulong H(string s) => ulong.Parse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        var list = LoadLine().Matches(readelfProgramHeaders).Select(m => new LoadSegment(H(m.Groups[1].Value), H(m.Groups[2].Value))).ToList();
        Assert.NotEmpty(list);
        return list;
    }

    // "  LOAD  0x200000 0xffffffff81000000 0x0000000001000000 0x1826634 0x1826634 R E 0x200000"
    [GeneratedRegex(@"^\s*LOAD\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)", RegexOptions.Multiline)]
    private static partial Regex LoadLine();

    [GeneratedRegex(@"^\s*NOTE\s+0x([0-9a-f]+)", RegexOptions.Multiline)]
    private static partial Regex NoteLine();

    // objdump -h: "Idx Name Size VMA LMA File-off Algn"
    [GeneratedRegex(@"^\s*\d+ (\S+)\s+([0-9a-f]{8})\s+[0-9a-f]{16}\s+[0-9a-f]{16}\s+([0-9a-f]{8})", RegexOptions.Multiline)]
    private static partial Regex ObjdumpRow();

    public void Dispose() => _dir.Dispose();
}

[CollectionDefinition(Name)]
public sealed class KernelsGroup : ICollectionFixture<KernelsFixture>
{
    public const string Name = "Kernels";
}
