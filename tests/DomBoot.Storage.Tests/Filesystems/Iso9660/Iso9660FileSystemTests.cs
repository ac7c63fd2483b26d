using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;
using DomBoot.Storage.Filesystems;
using DomBoot.Storage.Filesystems.Iso9660;
using DomBoot.Storage.Images;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Filesystems.Iso9660;

public sealed class Iso9660FileSystemTests(IsoImages images) : IClassFixture<IsoImages>
{
    private static Iso9660FileSystem Open(string path) => Iso9660FileSystem.Open(new MemoryBlockReader(File.ReadAllBytes(path)));

    [Fact]
    public void Open_RockRidgeTreeMatchesSource()
    {
        var fs = Open(images.RockJoliet);
        Assert.Equal(Iso9660FileSystem.NameMode.RockRidge, fs.Names);
        Assert.Equal(FsTree.FromHost(images.Source), FsTree.FromFs(fs));
        Assert.Equal("/etc/passwd", fs.ReadLink(PathResolver.Resolve(fs, "/abs", followLast: false)));
        Assert.Equal(3 * 1024 * 1024 + 77, PathResolver.Resolve(fs, "/Deep/level1/up").SizeInBytes);
        Assert.Equal(FsNodeType.Directory, PathResolver.Resolve(fs, "/Deep/dotted").Type);
        Assert.Equal(FsNodeType.Regular, PathResolver.Resolve(fs, "/dirlink/Level Two/3/four/5/six/7/eight/9/leaf file.txt").Type);
        Assert.Null(PathResolver.TryResolve(fs, "/mixed.txt")); // Rock Ridge names are case-sensitive
        var many = PathResolver.Resolve(fs, "/many");
        Assert.Equal(fs.Root.Id, fs.Parent(many).Id);
        Assert.True(many.SizeInBytes > 2048, "the 300-entry folder spans several blocks");
    }

    [Fact]
    public void Open_RelocatedDeepFoldersAreShownInPlace()
    {
        var fs = Open(images.Relocated);
        Assert.Equal(Iso9660FileSystem.NameMode.RockRidge, fs.Names);
        // libisofs marks rr_moved itself with RE, so it disappears with the relocated folders, as under Linux.
        Assert.Equal(FsTree.FromHost(images.Source), FsTree.FromFs(fs));
        Assert.Null(fs.Lookup(fs.Root, "rr_moved"));
        var leafDir = PathResolver.Resolve(fs, "/Deep/level1/Level Two/3/four/5/six/7/eight/9");
        Assert.Equal(PathResolver.Resolve(fs, "/Deep/level1/Level Two/3/four/5/six/7/eight").Id, fs.Parent(leafDir).Id);
    }

    [Fact]
    public void Open_JolietTreeMatchesSourceWithoutSymlinks()
    {
        var fs = Open(images.JolietOnly);
        Assert.Equal(Iso9660FileSystem.NameMode.Joliet, fs.Names);
        Assert.NotNull(fs.Joliet);
        // Joliet holds no symlinks and at most 64 UCS-2 characters per name.
        var expected = FsTree.FromHost(images.Source, p => !File.GetAttributes(images.Source + p).HasFlag(FileAttributes.ReparsePoint)
            && !p.Contains(IsoImages.LongName, StringComparison.Ordinal));
        var actual = FsTree.FromFs(fs);
        actual.Remove(actual.Keys.Single(k => k.StartsWith("/nnnn", StringComparison.Ordinal)));
        Assert.Equal(expected, actual);
        Assert.NotNull(PathResolver.TryResolve(fs, "/MIXED.TXT")); // Joliet lookups are case-insensitive (check=relaxed)
    }

    [Fact]
    public void Open_PlainTreeMatchesXorrisoNames()
    {
        var fs = Open(images.Plain);
        Assert.Equal(Iso9660FileSystem.NameMode.Plain, fs.Names);
        var listing = Tools.Run("xorriso", "-read_fs", "norock", "-indev", images.Plain, "-find", "/").Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim('\'')).Where(l => l != "/")
            .Select(l => l.ToLowerInvariant()).Order(StringComparer.Ordinal).ToList();
        var actual = FsTree.FromFs(fs);
        Assert.Equal(listing, actual.Keys.ToList());
        // Names are mangled to 8.3, so compare contents as a multiset.
        var expected = FsTree.FromHost(images.Source).Values.Where(v => v.StartsWith("f ", StringComparison.Ordinal)).Order(StringComparer.Ordinal);
        Assert.Equal(expected, actual.Values.Where(v => v.StartsWith("f ", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("rrj")]
    [InlineData("joliet")]
    [InlineData("plain")]
    [InlineData("eltorito")]
    public void Open_LabelAndUuidMatchBlkid(string variant)
    {
        string path = variant switch { "rrj" => images.RockJoliet, "joliet" => images.JolietOnly, "plain" => images.Plain, _ => images.ElTorito };
        var export = Tools.Run("blkid", "-p", "-o", "export", path).Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1].Replace("\\ ", " ", StringComparison.Ordinal));
        var fs = Open(path);
        Assert.Equal(export["TYPE"], fs.TypeName);
        Assert.Equal(export["LABEL"], fs.Label);
        Assert.Equal(export["UUID"], fs.Uuid);
        Assert.Equal(IsoImages.Uuid, fs.Uuid);
        Assert.True(Iso9660FileSystem.HasMagic(File.ReadAllBytes(path).AsSpan(32768, 2048)));
    }

    [Fact]
    public void BootCatalog_MatchesXorrisoReport()
    {
        var fs = Open(images.ElTorito);
        var report = Tools.Run("xorriso", "-indev", images.ElTorito, "-report_el_torito", "plain").Stdout
            .Split('\n').Where(l => l.StartsWith("El Torito boot img :", StringComparison.Ordinal))
            .Select(l => l.Split(':', 2)[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        Assert.Equal(2, report.Count);
        Assert.Equal(report.Count, fs.BootCatalog.Count);
        for (int i = 0; i < report.Count; i++)
        {
            var r = report[i]; // N Pltf B Emul Ld_seg Hdpt Ldsiz LBA
            var e = fs.BootCatalog[i];
            Assert.Equal(r[1] == "UEFI" ? ElToritoPlatform.Efi : ElToritoPlatform.X86, e.Platform);
            Assert.Equal(r[2] == "y", e.Bootable);
            Assert.Equal(ElToritoMediaType.NoEmulation, e.BootMediaType);
            Assert.Equal(Convert.ToUInt16(r[4], 16), e.LoadSegment);
            Assert.Equal(ushort.Parse(r[6], CultureInfo.InvariantCulture), e.SectorCount);
            Assert.Equal(uint.Parse(r[7], CultureInfo.InvariantCulture), e.LoadRba);
        }
        var boot = PathResolver.Resolve(fs, "/boot/boot.img");
        var iso = File.ReadAllBytes(images.ElTorito);
        Assert.Equal(fs.BootCatalog[0].LoadRba, BinaryPrimitives.ReadUInt32LittleEndian(iso.AsSpan((int)boot.Id + 2)));
        Assert.NotNull(PathResolver.TryResolve(fs, "/boot.catalog"));
        Assert.Empty(Open(images.RockJoliet).BootCatalog);
    }

    /// <summary>
    /// Multi-extent files need more than 4 GiB of data from xorriso, too big for a test; so this patches a real
    /// image instead: part1.bin (4096 bytes) gets the multi-extent flag, which makes the next record (part2.bin)
    /// its second section, exactly as a file larger than 4 GiB is recorded (ECMA-119 6.5.1, 9.1.6 bit 7).
    /// </summary>
    [Fact]
    public void Read_ConcatenatesMultiExtentSections()
    {
        var bytes = File.ReadAllBytes(images.Small);
        var fs0 = Iso9660FileSystem.Open(new MemoryBlockReader(bytes.ToArray()));
        var p1 = PathResolver.Resolve(fs0, "/part1.bin");
        var p2 = PathResolver.Resolve(fs0, "/part2.bin");
        int rec1 = (int)p1.Id;
        Assert.Equal(rec1 + bytes[rec1], (int)p2.Id); // adjacent records
        bytes[rec1 + 25] |= 0x80;
        var fs = Iso9660FileSystem.Open(new MemoryBlockReader(bytes));
        var joined = PathResolver.Resolve(fs, "/part1.bin");
        Assert.Equal(4096 + 3000, joined.SizeInBytes);
        Assert.Null(PathResolver.TryResolve(fs, "/part2.bin"));
        var expected = FsTree.Pattern(21, 4096).Concat(FsTree.Pattern(22, 3000)).ToArray();
        Assert.Equal(Tools.Sha256(expected), FsTree.Sha256(fs, joined));
        var middle = new byte[200];
        Assert.Equal(200, fs.Read(joined, 4000, middle));
        Assert.Equal(expected.AsSpan(4000, 200).ToArray(), middle);
    }

    // ---- malformed input -------------------------------------------------------------------------------------

    public enum Patch
    {
        BadMagic, BlockSizeZero, BlockSizeHuge, SpaceSizeZero, RootRecordLengthZero, NoTerminator, RecordTooShort,
        IdentifierOverrun, FileClaimsTooMuch, DirectoryPastVolume, CeLoop, CeOutsideBlock, SymlinkComponentOverrun,
        Interleaved, CatalogChecksum,
    }

    public static TheoryData<Patch, Type> Malformed => new()
    {
        { Patch.BadMagic, typeof(MalformedDataException) },
        { Patch.BlockSizeZero, typeof(MalformedDataException) },
        { Patch.BlockSizeHuge, typeof(MalformedDataException) },
        { Patch.SpaceSizeZero, typeof(MalformedDataException) },
        { Patch.RootRecordLengthZero, typeof(MalformedDataException) },
        { Patch.NoTerminator, typeof(MalformedDataException) },
        { Patch.RecordTooShort, typeof(MalformedDataException) },
        { Patch.IdentifierOverrun, typeof(MalformedDataException) },
        { Patch.FileClaimsTooMuch, typeof(MalformedDataException) },
        { Patch.DirectoryPastVolume, typeof(MalformedDataException) },
        { Patch.CeLoop, typeof(MalformedDataException) },
        { Patch.CeOutsideBlock, typeof(MalformedDataException) },
        { Patch.SymlinkComponentOverrun, typeof(MalformedDataException) },
        { Patch.Interleaved, typeof(UnsupportedFeatureException) },
        { Patch.CatalogChecksum, typeof(MalformedDataException) },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Parse_RejectsMalformed(Patch patch, Type exceptionType)
    {
        var bytes = File.ReadAllBytes(patch == Patch.CatalogChecksum ? images.ElTorito : images.Small);
        var fs0 = Iso9660FileSystem.Open(new MemoryBlockReader(bytes.ToArray()));
        const int Pvd = 16 * 2048;
        int file = patch == Patch.CatalogChecksum ? 0 : (int)PathResolver.Resolve(fs0, "/part1.bin").Id;
        int dir = patch == Patch.CatalogChecksum ? 0 : (int)PathResolver.Resolve(fs0, "/dir").Id;
        long expected;
        Action<Iso9660FileSystem> after = _ => { };
        switch (patch)
        {
            case Patch.BadMagic: bytes[Pvd + 5] = (byte)'2'; expected = Pvd + 1; break;
            case Patch.BlockSizeZero: bytes[Pvd + 128] = 0; bytes[Pvd + 129] = 0; expected = Pvd + 128; break;
            case Patch.BlockSizeHuge: BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(Pvd + 128), 4096); expected = Pvd + 128; break;
            case Patch.SpaceSizeZero: BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(Pvd + 80), 0); expected = Pvd + 80; break;
            case Patch.RootRecordLengthZero: bytes[Pvd + 156] = 0; expected = Pvd + 156; break;
            case Patch.NoTerminator:
                {
                    int term = fs0.VolumeDescriptors.Count - 1 + 16;
                    bytes[term * 2048] = 3; // a partition descriptor instead of the terminator; the next sector is not a descriptor
                    expected = (term + 1) * 2048L + 1;
                    break;
                }
            case Patch.RecordTooShort: bytes[file] = 20; expected = file; after = fs => fs.ListDirectory(fs.Root); break;
            case Patch.IdentifierOverrun: bytes[file + 32] = 200; expected = file + 32; after = fs => fs.ListDirectory(fs.Root); break;
            case Patch.FileClaimsTooMuch:
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(file + 10), uint.MaxValue);
                expected = file + 10;
                after = fs => fs.Lookup(fs.Root, "part1.bin");
                break;
            case Patch.DirectoryPastVolume:
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(dir + 2), 0xFFFFFF00);
                expected = dir + 10;
                after = fs => fs.Lookup(fs.Root, "dir");
                break;
            case Patch.CeLoop:
            case Patch.CeOutsideBlock:
                {
                    int rec = (int)PathResolver.Resolve(fs0, "/" + IsoImages.LongName).Id;
                    int len = bytes[rec];
                    int su = rec + 33 + bytes[rec + 32] + ((bytes[rec + 32] & 1) == 0 ? 1 : 0);
                    int ce = IndexOf(bytes, su, rec + len, "CE"u8);
                    for (int nm; (nm = IndexOf(bytes, su, rec + len, "NM"u8)) >= 0;) bytes[nm] = (byte)'X';
                    BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(ce + 4), (uint)(su / 2048));
                    BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(ce + 12), (uint)(patch == Patch.CeLoop ? su % 2048 : 2040));
                    BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(ce + 20), (uint)(rec + len - su));
                    expected = ce;
                    after = fs => fs.ListDirectory(fs.Root);
                    break;
                }
            case Patch.SymlinkComponentOverrun:
                {
                    int rec = (int)PathResolver.Resolve(fs0, "/link", followLast: false).Id;
                    int sl = IndexOf(bytes, rec + 34, rec + bytes[rec], "SL"u8);
                    bytes[sl + 6] = 250;
                    expected = sl + 6;
                    after = fs => fs.ListDirectory(fs.Root);
                    break;
                }
            case Patch.Interleaved: bytes[file + 26] = 1; expected = -2; after = fs => fs.ListDirectory(fs.Root); break;
            case Patch.CatalogChecksum:
                {
                    long cat = fs0.BootCatalog[0].ImageOffset - 32;
                    bytes[cat + 28] ^= 0x55;
                    expected = cat + 28;
                    after = fs => _ = fs.BootCatalog;
                    break;
                }
            default: throw new InvalidOperationException();
        }
        var ex = Assert.Throws(exceptionType, () => after(Iso9660FileSystem.Open(new MemoryBlockReader(bytes))));
        if (expected != -2) Assert.Equal(expected, ((MalformedDataException)ex).Offset);
    }

    [Fact]
    public void Parse_RejectsTruncatedDescriptor()
    {
        var bytes = File.ReadAllBytes(images.Small).AsMemory(0, 16 * 2048 + 100);
        var ex = Assert.Throws<TruncatedDataException>(() => Iso9660FileSystem.Open(new MemoryBlockReader(bytes)));
        Assert.Equal(16 * 2048, ex.Offset);
    }

    [Fact]
    public void Parse_MutationSweepLetsOnlyAllowedExceptionsOut()
    {
        var original = File.ReadAllBytes(images.Small);
        var rng = new Random(1234);
        var sw = Stopwatch.StartNew();
        int opened = 0;
        int metadataEnd = Math.Min(original.Length, 40 * 2048);
        for (int iter = 0; iter < 400; iter++)
        {
            var bytes = original.ToArray();
            int flips = 1 + rng.Next(8);
            for (int k = 0; k < flips; k++)
            {
                int at = 16 * 2048 + rng.Next(metadataEnd - 16 * 2048);
                bytes[at] = rng.Next(3) == 0 ? (byte)rng.Next(256) : (byte)(bytes[at] ^ (1 << rng.Next(8)));
            }
            int length = iter % 10 == 9 ? rng.Next(bytes.Length) : bytes.Length;
            var image = bytes.AsMemory(0, length);
            string before = Tools.Sha256(image.Span);
            try
            {
                var fs = Iso9660FileSystem.Open(new MemoryBlockReader(image));
                opened++;
                FsTree.BoundedWalk(fs);
                _ = fs.BootCatalog;
                _ = PathResolver.TryResolve(fs, "/link");
            }
            catch (Exception e) when (FsTree.IsAllowed(e))
            {
            }
            Assert.Equal(before, Tools.Sha256(image.Span));
        }
        Assert.True(opened > 50, $"only {opened} mutated images opened; the sweep should exercise the walker");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"sweep took {sw.Elapsed}");
    }

    private static int IndexOf(byte[] bytes, int from, int to, ReadOnlySpan<byte> what)
    {
        int i = bytes.AsSpan(from, to - from).IndexOf(what);
        return i < 0 ? -1 : from + i;
    }
}
