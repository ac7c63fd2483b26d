using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using DomBoot.Engine.Accel;
using DomBoot.Engine.Planning;
using DomBoot.Engine.Running;
using DomBoot.Formats.Errors;
using DomBoot.Formats.Kernel;
using DomBoot.Net.Packing;
using DomBoot.Net.Tests.Netboot;
using DomBoot.TestSupport;

namespace DomBoot.Net.Tests.Packing;

/// <summary>Packs the Debian cloud kernel and a busybox initramfs onto Debian's systemd-stub and reads, unpacks and boots the result.</summary>
public sealed class UkiPackerTests : IDisposable
{
    private const string Cmdline = "console=ttyS0 quiet panic=-1";
    private const string OsRelease = "ID=domboot\nNAME=\"domboot test\"\n";
    private readonly TempDir _dir = new("domboot-pack");

    public void Dispose() => _dir.Dispose();

    private static string StubPath
    {
        get
        {
            Assert.True(File.Exists(UkiPackRequest.DefaultStubPath), $"{UkiPackRequest.DefaultStubPath} missing: run scripts/setup.sh (systemd-boot-efi)");
            return UkiPackRequest.DefaultStubPath;
        }
    }

    private (string Path, string Marker, byte[] Initrd, IReadOnlyList<UkiPacker.PackedSection> Sections) PackDemo()
    {
        var marker = GuestHarness.Marker();
        var initrd = GuestHarness.Initramfs(marker);
        var initrdPath = _dir.File("initrd.cpio");
        File.WriteAllBytes(initrdPath, initrd);
        var osrel = _dir.File("os-release");
        File.WriteAllText(osrel, OsRelease);
        var outPath = _dir.File("demo.efi");
        var sections = UkiPacker.PackToFile(UkiPackRequest.FromFiles(Cache.Kernel, [initrdPath], Cmdline, osrel, StubPath), outPath);
        return (outPath, marker, initrd, sections);
    }

    [Fact]
    public void Pack_ObjdumpListsTheSectionsAtTheOffsetsWritten()
    {
        Tools.Require("objdump");
        var (path, _, _, sections) = PackDemo();
        Assert.Equal([".osrel", ".cmdline", ".uname", ".initrd", ".linux"], sections.Select(s => s.Name));
        var listing = Tools.Run("objdump", "-h", path).Stdout;
        foreach (var s in sections)
        {
            var line = listing.Split('\n').Single(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [_, var n, ..] && n == s.Name);
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            // Idx Name Size VMA LMA File-off Algn
            Assert.Equal(s.VirtualSize, uint.Parse(f[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
            Assert.Equal((ulong)s.VirtualAddress, ulong.Parse(f[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
            Assert.Equal(s.PointerToRawData, uint.Parse(f[5], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
        }
        Assert.Contains(".sdmagic", listing, StringComparison.Ordinal);
        var headers = Tools.Run("objdump", "-p", path).Stdout;
        var last = sections[^1];
        uint sizeOfImage = (last.VirtualAddress + last.VirtualSize + 0x1FFu) & ~0x1FFu;
        Assert.Contains("SizeOfImage\t\t" + sizeOfImage.ToString("x8", CultureInfo.InvariantCulture), headers, StringComparison.Ordinal);
    }

    [Fact]
    public void Pack_KernelInspectorReadsItBack()
    {
        var (path, _, initrd, _) = PackDemo();
        var image = KernelInspector.Inspect(path);
        Assert.Equal(KernelKind.Uki, image.Kind);
        var uki = image.Uki!;
        Assert.Equal(Cmdline, uki.Cmdline);
        Assert.Equal(OsRelease, uki.OsRelease);
        Assert.Equal(KernelKind.BzImage, uki.Linux.Kind);
        var release = File.ReadAllText(Path.Combine(Cache.Root, "kernel", "release")).Trim();
        Assert.Equal(release, uki.Uname);
        Assert.Equal(release, uki.Linux.BzImage!.KernelRelease);
        Assert.Equal(initrd.Length, (int)uki.FindSection(".initrd")!.SizeInBytes);
        var pe = uki.Pe;
        Assert.Equal(13, pe.NumberOfSections);
        var bytes = File.ReadAllBytes(path);
        int opt = (int)pe.PeHeaderOffset + 24;
        Assert.Equal(UkiPacker.Checksum(bytes, opt + 64), pe.CheckSum);
    }

    [Fact]
    public void Unpack_RoundTripsByteIdentically()
    {
        var (path, _, initrd, _) = PackDemo();
        var outDir = _dir.File("out");
        var written = UkiUnpacker.UnpackToDirectory(path, outDir);
        Assert.Equal(["linux", "initrd", "cmdline", "osrel", "uname"], written.Select(Path.GetFileName));
        Assert.Equal(Tools.Sha256(Cache.Kernel), Tools.Sha256(Path.Combine(outDir, "linux")));
        Assert.Equal(initrd, File.ReadAllBytes(Path.Combine(outDir, "initrd")));
        Assert.Equal(Cmdline, File.ReadAllText(Path.Combine(outDir, "cmdline")));
        Assert.Equal(OsRelease, File.ReadAllText(Path.Combine(outDir, "osrel")));
        // repacking the unpacked parts gives the same image
        var again = UkiPacker.Pack(UkiPackRequest.FromFiles(Path.Combine(outDir, "linux"), [Path.Combine(outDir, "initrd")], Cmdline,
            Path.Combine(outDir, "osrel"), StubPath), out _);
        Assert.Equal(Tools.Sha256(path), Tools.Sha256(again));
    }

    [Fact]
    public void Pack_SeveralInitrdsAreConcatenatedFourAligned()
    {
        var stub = File.ReadAllBytes(StubPath);
        var kernel = File.ReadAllBytes(Cache.Kernel);
        byte[] a = [1, 2, 3], b = [4, 5, 6, 7, 8];
        var uki = UkiPacker.Pack(new UkiPackRequest { Stub = stub, Linux = kernel, Initrds = [a, b] }, out var sections);
        var s = sections.Single(x => x.Name == ".initrd");
        Assert.Equal(new byte[] { 1, 2, 3, 0, 4, 5, 6, 7, 8 }, uki.AsSpan((int)s.PointerToRawData, (int)s.VirtualSize).ToArray());
        Assert.DoesNotContain(sections, x => x.Name is ".cmdline" or ".osrel");
    }

    [Fact]
    public void Checksum_MatchesTheStubsOwn()
    {
        var stub = File.ReadAllBytes(StubPath);
        var pe = PeImage.Parse(stub, 0);
        Assert.NotEqual(0u, pe.CheckSum);
        Assert.Equal(pe.CheckSum, UkiPacker.Checksum(stub, (int)pe.PeHeaderOffset + 24 + 64));
    }

    [Fact]
    public void Pack_StubMutationSweep_OnlyDocumentedExceptions()
    {
        var good = File.ReadAllBytes(StubPath);
        var rng = new Random(1234);
        byte[] linux = [1, 2, 3, 4];
        for (int i = 0; i < 300; i++)
        {
            var work = (byte[])good.Clone();
            for (int k = 0; k < 1 + rng.Next(4); k++) work[rng.Next(0x400)] = (byte)rng.Next(256);
            int length = rng.Next(8) == 0 ? rng.Next(work.Length) : work.Length;
            try { UkiPacker.Pack(new UkiPackRequest { Stub = work.AsMemory(0, length), Linux = linux, Cmdline = "c", Initrds = [linux] }, out _); }
            catch (MalformedDataException) { }
            catch (UnsupportedFeatureException) { }
        }
    }

    [Fact]
    public void Pack_RejectsAStubThatIsAlreadyAUki()
    {
        var (path, _, _, _) = PackDemo();
        var ex = Assert.Throws<MalformedDataException>(() => UkiPacker.Pack(new UkiPackRequest { Stub = File.ReadAllBytes(path), Linux = File.ReadAllBytes(Cache.Kernel) }, out _));
        Assert.Contains(".linux", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Pack_RejectsAStubWithoutRoomForSectionHeaders()
    {
        var stub = File.ReadAllBytes(StubPath);
        var pe = PeImage.Parse(stub, 0);
        int opt = (int)pe.PeHeaderOffset + 24;
        int tableEnd = opt + pe.SizeOfOptionalHeader + pe.NumberOfSections * 40;
        BinaryPrimitives.WriteUInt32LittleEndian(stub.AsSpan(opt + 60), (uint)tableEnd + 80); // room for two more only
        var ex = Assert.Throws<UnsupportedFeatureException>(() => UkiPacker.Pack(
            new UkiPackRequest { Stub = stub, Linux = File.ReadAllBytes(Cache.Kernel), Cmdline = "x", OsRelease = "y" }, out _));
        Assert.Contains("room for 10 section headers", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unpack_RejectsHostileImages()
    {
        var (path, _, _, _) = PackDemo();
        var good = File.ReadAllBytes(path);
        var pe = PeImage.Parse(good, 0);
        int table = (int)pe.PeHeaderOffset + 24 + pe.SizeOfOptionalHeader;

        // .linux PointerToRawData past the end of the file
        var bad = (byte[])good.Clone();
        int linuxHeader = table + 12 * 40;
        BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(linuxHeader + 20), (uint)good.Length);
        var ex = Assert.Throws<MalformedDataException>(() => UkiUnpacker.Split(bad, "bad.efi"));
        Assert.Equal(linuxHeader + 20, ex.Offset);

        // e_lfanew pointing outside the file
        bad = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(0x3C), 0xFFFFFFF0);
        Assert.Throws<MalformedDataException>(() => UkiUnpacker.Split(bad, "bad.efi"));

        // truncated in the section table
        Assert.Throws<TruncatedDataException>(() => UkiUnpacker.Split(good.AsMemory(0, table + 100), "short.efi"));

        // the bare stub: a PE but not a UKI
        Assert.Throws<MalformedDataException>(() => UkiUnpacker.Split(File.ReadAllBytes(StubPath), "stub.efi"));

        // .linux renamed: no kernel inside
        bad = (byte[])good.Clone();
        bad[linuxHeader + 1] = (byte)'x';
        Assert.Throws<MalformedDataException>(() => UkiUnpacker.Split(bad, "nolinux.efi"));
    }

    [Fact]
    public void Unpack_HeaderMutationSweep_OnlyDocumentedExceptions()
    {
        var (path, _, _, _) = PackDemo();
        var good = File.ReadAllBytes(path);
        var rng = new Random(1234);
        var work = new byte[good.Length];
        for (int i = 0; i < 150; i++)
        {
            good.CopyTo(work, 0);
            for (int k = 0; k < 1 + rng.Next(4); k++) work[rng.Next(0x400)] = (byte)rng.Next(256);
            int length = rng.Next(8) == 0 ? rng.Next(work.Length) : work.Length;
            try { UkiUnpacker.Split(work.AsMemory(0, length), "mutant.efi"); }
            catch (MalformedDataException) { }
            catch (UnsupportedFeatureException) { }
        }
    }

    [Fact]
    public async Task Run_PackedImageBootsDirectly()
    {
        var (path, marker, _, _) = PackDemo();
        var runtime = GuestHarness.Runtime(_dir);
        var plan = DirectBoot.Plan(new BootRequest { KernelPath = path, MemoryMiB = 256, Accelerator = AcceleratorRequest.Tcg }, runtime, GuestHarness.NoKvm);
        Assert.Equal(Cmdline, plan.Cmdline);
        var (result, console, diag) = await GuestHarness.Run(plan, runtime, TimeSpan.FromMinutes(3));
        Assert.True(console.Contains(marker, StringComparison.Ordinal), $"no marker; {result.Describe()}\nconsole: {console}\nqemu: {diag}");
        Assert.True(result.Outcome == GuestOutcome.PoweredOff, $"{result.Describe()}\n{console}\n{diag}");
    }

    [Fact]
    public async Task Run_PackedImageBootsThroughOvmf()
    {
        Tools.Require("mkfs.vfat");
        Tools.Require("mcopy");
        Assert.True(File.Exists(QemuCommandLine.OvmfCode), $"{QemuCommandLine.OvmfCode} missing: run scripts/setup.sh (ovmf)");
        var (path, marker, _, _) = PackDemo();
        var runtime = GuestHarness.Runtime(_dir);
        var plan = DirectBoot.Plan(new BootRequest { KernelPath = path, MemoryMiB = 256, Accelerator = AcceleratorRequest.Tcg, Firmware = BootFirmware.Uefi },
            runtime, GuestHarness.NoKvm);
        Assert.Equal(BootMethod.Uefi, plan.Method);
        Assert.Contains("q35,accel=tcg", plan.QemuArgv);
        Assert.DoesNotContain("-kernel", plan.QemuArgv);
        Assert.Contains("Firmware:", BootPlanText.Render(plan), StringComparison.Ordinal);
        UefiBoot.Prepare(plan, runtime);
        Assert.Contains("BOOTX64.EFI", Tools.Run("mdir", "-b", "-i", runtime.Esp, "::/EFI/BOOT").Stdout, StringComparison.Ordinal);
        var (result, console, diag) = await GuestHarness.Run(plan, runtime, TimeSpan.FromMinutes(4));
        Assert.True(console.Contains(marker, StringComparison.Ordinal), $"no marker; {result.Describe()}\nconsole: {console}\nqemu: {diag}");
        Assert.True(result.Outcome == GuestOutcome.PoweredOff, $"{result.Describe()}\n{console}\n{diag}");
    }
}
