using System.Buffers.Binary;
using System.Diagnostics;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;
using DomBoot.Storage.Filesystems;
using DomBoot.Storage.Filesystems.Fat;
using DomBoot.Storage.Images;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Filesystems.Fat;

public sealed class FatFileSystemTests(FatImages images) : IClassFixture<FatImages>
{
    public static TheoryData<int, string, FatType> Variants => new()
    {
        { 12, "FAT12LABEL", FatType.Fat12 },
        { 16, "FAT16LABEL", FatType.Fat16 },
        { 32, "FAT32LABEL", FatType.Fat32 },
    };

    private string Image(int bits) => bits switch { 12 => images.Fat12, 16 => images.Fat16, _ => images.Fat32 };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Open_WholeTreeMatchesSource(int bits, string label, FatType type)
    {
        using var reader = new FileBlockReader(Image(bits));
        var fs = FatFileSystem.Open(reader);
        Assert.Equal(type, fs.Type);
        Assert.Equal("vfat", fs.TypeName);
        Assert.Equal(label, fs.Label);
        Assert.Equal(FatImages.Uuid, fs.Uuid);
        var expected = FsTree.FromHost(images.Source);
        var actual = FsTree.FromFs(fs);
        Assert.Equal(expected, actual);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Open_LabelAndUuidMatchBlkid(int bits, string label, FatType type)
    {
        _ = label;
        var export = Tools.Run("blkid", "-p", "-o", "export", Image(bits)).Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        using var reader = new FileBlockReader(Image(bits));
        var fs = FatFileSystem.Open(reader);
        Assert.Equal(export["TYPE"], fs.TypeName);
        Assert.Equal(export["LABEL"], fs.Label);
        Assert.Equal(export["UUID"], fs.Uuid);
        Assert.Equal(export["VERSION"], "FAT" + (int)type);
        Assert.True(FatFileSystem.HasMagic(File.ReadAllBytes(Image(bits)).AsSpan(0, 512)));
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Lookup_IsAsciiCaseInsensitiveAndAcceptsShortNames(int bits, string label, FatType type)
    {
        _ = (label, type);
        using var reader = new FileBlockReader(Image(bits));
        var fs = FatFileSystem.Open(reader);
        Assert.NotNull(PathResolver.TryResolve(fs, "/a long file name with SPACES.TXT"));
        Assert.NotNull(PathResolver.TryResolve(fs, "/MIXED.TXT"));
        Assert.NotNull(PathResolver.TryResolve(fs, "/deep/LEVEL1/level two/3/FOUR/5/SIX/7/EIGHT/9/LEAF FILE.TXT"));
        Assert.NotNull(PathResolver.TryResolve(fs, "/Boot/efi/boot/bootx64.efi"));
        Assert.NotNull(PathResolver.TryResolve(fs, "/lower.txt."));
        var many = PathResolver.Resolve(fs, "/many");
        Assert.Equal(300, fs.ListDirectory(many).Count);
        Assert.Equal(PathResolver.Resolve(fs, "/Deep").Id, fs.Parent(PathResolver.Resolve(fs, "/Deep/level1")).Id);
        Assert.Equal(37 * 123, PathResolver.Resolve(fs, "/many/FILE WITH A LONG NAME 123.DAT").SizeInBytes);
        Assert.Equal(fs.Root.Id, fs.Parent(many).Id);
        Assert.Equal("lowbase.TXT", fs.ListDirectory(fs.Root).Single(e => e.Name.StartsWith("lowb", StringComparison.Ordinal)).Name);
        var big = PathResolver.Resolve(fs, "/Deep/../big.bin");
        var buf = new byte[100];
        Assert.Equal(100, fs.Read(big, 3 * 1024 * 1024, buf));
        Assert.Equal(FsTree.Pattern(1, 3 * 1024 * 1024 + 123).AsSpan(3 * 1024 * 1024, 100).ToArray(), buf);
        Assert.Equal(23, fs.Read(big, 3 * 1024 * 1024 + 100, buf));
        Assert.Equal(0, fs.Read(big, 3 * 1024 * 1024 + 123, buf));
        Assert.Null(PathResolver.TryResolve(fs, "/no-such-file"));
    }

    // ---- malformed input -------------------------------------------------------------------------------------

    public enum Patch
    {
        Signature, JmpBoot, BytsPerSecZero, BytsPerSecOdd, SecPerClusZero, SecPerClusThree, NumFATsZero, RsvdZero,
        TotSecZero, TotSecTiny, FatTooSmall, ChainLoop, ChainOutOfRange, ChainFreeLink, FileSizeHuge, FileSizePastChain,
        DirClusterOutOfRange, DataPastVolume,
    }

    public static TheoryData<Patch, Type, string> Malformed => new()
    {
        { Patch.Signature, typeof(MalformedDataException), "boot:510" },
        { Patch.JmpBoot, typeof(MalformedDataException), "boot:0" },
        { Patch.BytsPerSecZero, typeof(MalformedDataException), "boot:11" },
        { Patch.BytsPerSecOdd, typeof(MalformedDataException), "boot:11" },
        { Patch.SecPerClusZero, typeof(MalformedDataException), "boot:13" },
        { Patch.SecPerClusThree, typeof(MalformedDataException), "boot:13" },
        { Patch.NumFATsZero, typeof(MalformedDataException), "boot:16" },
        { Patch.RsvdZero, typeof(MalformedDataException), "boot:14" },
        { Patch.TotSecZero, typeof(MalformedDataException), "boot:32" },
        { Patch.TotSecTiny, typeof(MalformedDataException), "boot:19" },
        { Patch.FatTooSmall, typeof(MalformedDataException), "boot:22" },
        { Patch.ChainLoop, typeof(MalformedDataException), "fat:second" },
        { Patch.ChainOutOfRange, typeof(MalformedDataException), "fat:first" },
        { Patch.ChainFreeLink, typeof(MalformedDataException), "fat:first" },
        { Patch.FileSizeHuge, typeof(MalformedDataException), "entry:28" },
        { Patch.FileSizePastChain, typeof(MalformedDataException), "entry:28" },
        { Patch.DirClusterOutOfRange, typeof(MalformedDataException), "dir:20" },
        { Patch.DataPastVolume, typeof(MalformedDataException), "boot:19" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Parse_RejectsMalformed(Patch patch, Type exceptionType, string where)
    {
        var bytes = File.ReadAllBytes(images.Small);
        var fs0 = FatFileSystem.Open(new MemoryBlockReader(bytes.ToArray()));
        var bs = fs0.BootSector;
        var file = PathResolver.Resolve(fs0, "/A Long Name.Data"); // 5000 bytes: 10 clusters of 512
        var dir = PathResolver.Resolve(fs0, "/dir/Sub Dir");
        long entry = (long)file.Id;
        uint firstCluster = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan((int)entry + 26));
        long fatOffset = bs.RsvdSecCnt * 512L;
        uint second = Fat12Get(bytes, fatOffset, firstCluster);
        long FatEntry(uint c) => fatOffset + c + c / 2;

        long expectedOffset = where switch
        {
            "fat:first" => FatEntry(firstCluster),
            "fat:second" => FatEntry(second),
            "entry:28" => entry + 28,
            "dir:20" => (long)dir.Id + 20,
            _ => long.Parse(where.AsSpan(5), System.Globalization.CultureInfo.InvariantCulture),
        };

        bool openOnly = true;
        switch (patch)
        {
            case Patch.Signature: bytes[510] = 0; break;
            case Patch.JmpBoot: bytes[0] = 0; break;
            case Patch.BytsPerSecZero: bytes[11] = 0; bytes[12] = 0; break;
            case Patch.BytsPerSecOdd: BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(11), 3000); break;
            case Patch.SecPerClusZero: bytes[13] = 0; break;
            case Patch.SecPerClusThree: bytes[13] = 3; break;
            case Patch.NumFATsZero: bytes[16] = 0; break;
            case Patch.RsvdZero: bytes[14] = 0; bytes[15] = 0; break;
            case Patch.TotSecZero: bytes[19] = 0; bytes[20] = 0; BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(32), 0); break;
            case Patch.TotSecTiny: BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(19), 5); break;
            case Patch.FatTooSmall: BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(22), 1); bytes[16] = 1; break;
            case Patch.DataPastVolume:
                bytes = bytes[..2048]; // the boot sector claims 1 MiB; the data region starts past these 2 KiB
                break;
            case Patch.ChainLoop: Fat12Set(bytes, fatOffset, second, firstCluster); openOnly = false; break;
            case Patch.ChainOutOfRange: Fat12Set(bytes, fatOffset, firstCluster, 0xFF0); openOnly = false; break;
            case Patch.ChainFreeLink: Fat12Set(bytes, fatOffset, firstCluster, 0); openOnly = false; break;
            case Patch.FileSizeHuge: BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan((int)entry + 28), uint.MaxValue); openOnly = false; break;
            case Patch.FileSizePastChain: BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan((int)entry + 28), 6000); openOnly = false; break;
            case Patch.DirClusterOutOfRange: BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan((int)dir.Id + 26), 0xFFF); openOnly = false; break;
        }

        var ex = Assert.Throws(exceptionType, () =>
        {
            var fs = FatFileSystem.Open(new MemoryBlockReader(bytes));
            if (openOnly) return;
            if (patch == Patch.DirClusterOutOfRange) { _ = PathResolver.Resolve(fs, "/dir/Sub Dir"); return; }
            var f = PathResolver.Resolve(fs, "/A Long Name.Data");
            fs.Read(f, 0, new byte[8192]);
        });
        Assert.Equal(expectedOffset, ((MalformedDataException)ex).Offset);
    }

    [Fact]
    public void Parse_RejectsDirectoryChainLoop()
    {
        var bytes = File.ReadAllBytes(images.Small);
        var fs0 = FatFileSystem.Open(new MemoryBlockReader(bytes.ToArray()));
        var dir = PathResolver.Resolve(fs0, "/dir");
        uint c = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan((int)dir.Id + 26));
        long fatOffset = fs0.BootSector.RsvdSecCnt * 512L;
        Fat12Set(bytes, fatOffset, c, c); // the folder's first cluster links to itself
        var fs = FatFileSystem.Open(new MemoryBlockReader(bytes));
        var ex = Assert.Throws<MalformedDataException>(() => fs.ListDirectory(PathResolver.Resolve(fs, "/dir")));
        Assert.Equal(fatOffset + c + c / 2, ex.Offset);
    }

    [Theory]
    [InlineData(44, 0u)]            // BPB_RootClus below 2
    [InlineData(44, 0x0FFFFFFFu)]   // BPB_RootClus past the cluster count
    [InlineData(42, 1u)]            // BPB_FSVer not 0
    public void Parse_RejectsBadFat32Fields(int offset, uint value)
    {
        var sector = new byte[512];
        using (var f = File.OpenRead(images.Fat32)) f.ReadExactly(sector);
        if (offset == 42) BinaryPrimitives.WriteUInt16LittleEndian(sector.AsSpan(offset), (ushort)value);
        else BinaryPrimitives.WriteUInt32LittleEndian(sector.AsSpan(offset), value);
        var ex = Assert.Throws<MalformedDataException>(() => FatBootSector.Parse(sector, 0));
        Assert.Equal(offset, ex.Offset);
    }

    [Fact]
    public void Parse_RejectsTruncatedBootSector()
    {
        var ex = Assert.Throws<TruncatedDataException>(() => FatBootSector.Parse(new byte[100], 4096));
        Assert.Equal(4096, ex.Offset);
    }

    [Fact]
    public void Parse_MutationSweepLetsOnlyAllowedExceptionsOut()
    {
        var original = File.ReadAllBytes(images.Small);
        var rng = new Random(1234);
        var sw = Stopwatch.StartNew();
        int opened = 0;
        // Metadata lives in the first 64 KiB: boot sector, both FATs, the root folder and the first folders' clusters.
        for (int iter = 0; iter < 400; iter++)
        {
            var bytes = original.ToArray();
            int flips = 1 + rng.Next(8);
            for (int k = 0; k < flips; k++)
            {
                int at = rng.Next(iter % 4 == 0 ? 512 : 65536);
                bytes[at] = rng.Next(3) == 0 ? (byte)rng.Next(256) : (byte)(bytes[at] ^ (1 << rng.Next(8)));
            }
            int length = iter % 10 == 9 ? rng.Next(bytes.Length) : bytes.Length;
            var image = bytes.AsMemory(0, length);
            string before = Tools.Sha256(image.Span);
            try
            {
                var fs = FatFileSystem.Open(new MemoryBlockReader(image));
                opened++;
                FsTree.BoundedWalk(fs);
                _ = PathResolver.TryResolve(fs, "/dir/Sub Dir/inner.bin");
            }
            catch (Exception e) when (FsTree.IsAllowed(e))
            {
            }
            Assert.Equal(before, Tools.Sha256(image.Span));
        }
        Assert.True(opened > 50, $"only {opened} mutated images opened; the sweep should exercise the walker");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"sweep took {sw.Elapsed}");
    }

    private static uint Fat12Get(byte[] b, long fat, uint c)
    {
        int at = (int)(fat + c + c / 2);
        int v = b[at] | b[at + 1] << 8;
        return (uint)((c & 1) != 0 ? v >> 4 : v & 0xFFF);
    }

    private static void Fat12Set(byte[] b, long fat, uint c, uint value)
    {
        int at = (int)(fat + c + c / 2);
        int v = b[at] | b[at + 1] << 8;
        v = (c & 1) != 0 ? (v & 0x000F) | (int)(value << 4) : (v & 0xF000) | (int)value;
        b[at] = (byte)v;
        b[at + 1] = (byte)(v >> 8);
    }
}
