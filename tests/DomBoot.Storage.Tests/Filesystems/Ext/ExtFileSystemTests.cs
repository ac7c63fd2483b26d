using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using DomBoot.Formats.Errors;
using DomBoot.Storage.Filesystems;
using DomBoot.Storage.Filesystems.Ext;
using DomBoot.Storage.Images;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Filesystems.Ext;

public sealed partial class ExtFileSystemTests
{
    public static TheoryData<string> AllVariants => new(ExtTestImages.Variants.Keys);

    [Theory]
    [MemberData(nameof(AllVariants))]
    public void Walk_MatchesSourceTree(string variant)
    {
        var image = ExtTestImages.Image(variant);
        using var volume = new FileBlockReader(image);
        var fs = ExtFileSystem.Open(volume);
        Assert.Equal(ExtTestImages.Label, fs.Label);
        Assert.Equal(ExtTestImages.Uuid, fs.Uuid);
        var blkidType = Tools.Run("blkid", "-p", "-o", "value", "-s", "TYPE", image).Stdout.Trim();
        Assert.Equal(blkidType, fs.TypeName);
        int files = CompareDirectory(fs, fs.Root, ExtTestImages.SourceTree, isRoot: true);
        Assert.True(files > 3000, $"walked only {files} entries");
    }

    private static int CompareDirectory(ExtFileSystem fs, FsNode dir, string sourceDir, bool isRoot)
    {
        var listed = fs.ListDirectory(dir).Where(e => !(isRoot && e.Name == "lost+found")).ToList();
        var infos = new DirectoryInfo(sourceDir).EnumerateFileSystemInfos().OrderBy(i => i.Name, StringComparer.Ordinal).ToList();
        Assert.Equal(infos.Select(i => i.Name), listed.Select(e => e.Name).Order(StringComparer.Ordinal));
        var byName = listed.ToDictionary(e => e.Name, StringComparer.Ordinal);
        int count = 0;
        foreach (var info in infos)
        {
            count++;
            var node = fs.Lookup(dir, info.Name);
            Assert.NotNull(node);
            Assert.Equal(byName[info.Name].Id, node.Id);
            Assert.Equal(node.Type, byName[info.Name].Type);
            Assert.Equal(0u, node.Uid);
            if (info.LinkTarget is { } target)
            {
                Assert.Equal(FsNodeType.Symlink, node.Type);
                Assert.Equal(target, fs.ReadLink(node));
                Assert.Equal(Encoding.UTF8.GetByteCount(target), node.SizeInBytes);
            }
            else if (info is DirectoryInfo)
            {
                Assert.Equal(FsNodeType.Directory, node.Type);
                Assert.Equal(dir.Id, fs.Parent(node).Id);
                count += CompareDirectory(fs, node, info.FullName, isRoot: false);
            }
            else
            {
                Assert.Equal(FsNodeType.Regular, node.Type);
                var fi = (FileInfo)info;
                Assert.Equal(fi.Length, node.SizeInBytes);
                Assert.Equal(new DateTimeOffset(fi.LastWriteTimeUtc).ToUnixTimeSeconds(), node.ModifiedTime!.Value.ToUnixTimeSeconds());
                Assert.True(Sha256(fs, node) == Tools.Sha256(fi.FullName), $"{fi.FullName}: contents differ");
            }
        }
        return count;
    }

    /// <summary>Streams the file through Read in odd-sized chunks and hashes it.</summary>
    internal static string Sha256(IFileSystem fs, FsNode file)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[(1 << 20) + 7];
        long offset = 0;
        while (true)
        {
            int n = fs.Read(file, offset, buffer);
            if (n == 0) break;
            hash.AppendData(buffer, 0, n);
            offset += n;
        }
        Assert.Equal(file.SizeInBytes, offset);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    [Theory]
    [MemberData(nameof(AllVariants))]
    public void Resolve_FollowsSymlinksAndRefusesLoops(string variant)
    {
        using var volume = new FileBlockReader(ExtTestImages.Image(variant));
        var fs = ExtFileSystem.Open(volume);
        var deep = PathResolver.Resolve(fs, "/dir/nested/deep.txt");
        var hello = PathResolver.Resolve(fs, "/hello.txt");
        Assert.Equal(deep.Id, PathResolver.Resolve(fs, "/link1").Id);
        Assert.Equal(deep.Id, PathResolver.Resolve(fs, "/abs").Id);
        Assert.Equal(deep.Id, PathResolver.Resolve(fs, "slowlink").Id);
        Assert.Equal(hello.Id, PathResolver.Resolve(fs, "/dir/up").Id);
        Assert.Equal(hello.Id, PathResolver.Resolve(fs, "/dir/nested/../../fastlink").Id);
        Assert.Equal(FsNodeType.Symlink, PathResolver.Resolve(fs, "/link1", followLast: false).Type);
        Assert.Equal(ExtTestImages.LongTarget, fs.ReadLink(PathResolver.Resolve(fs, "/slowlink", followLast: false)));
        Assert.Null(PathResolver.TryResolve(fs, "/dangling-long"));
        Assert.Null(PathResolver.TryResolve(fs, "/no/such"));
        var loop = Assert.Throws<MalformedDataException>(() => PathResolver.Resolve(fs, "/loopa"));
        Assert.Equal(-1, loop.Offset);
        Assert.Contains("too many levels of symbolic links", loop.Message, StringComparison.Ordinal);
        Assert.Equal(fs.Root.Id, fs.Parent(fs.Root).Id);
    }

    [Theory]
    [MemberData(nameof(AllVariants))]
    public void Stat_MatchesDebugfs(string variant)
    {
        var image = ExtTestImages.Image(variant);
        using var volume = new FileBlockReader(image);
        var fs = ExtFileSystem.Open(volume);
        // debugfs "ls -p": /inode/mode/uid/gid/name/size/ per entry.
        var listing = Tools.Run("debugfs", "-R", "ls -p /", image).Stdout;
        int seen = 0;
        foreach (var line in listing.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = line.Split('/');
            if (f.Length < 7 || f[5] is "." or ".." or "lost+found") continue;
            var node = fs.Lookup(fs.Root, f[5]);
            Assert.NotNull(node);
            Assert.Equal(ulong.Parse(f[1], System.Globalization.CultureInfo.InvariantCulture), node.Id);
            Assert.Equal(Convert.ToUInt32(f[2], 8), node.Mode);
            if (node.Type != FsNodeType.Directory)
                Assert.Equal(long.Parse(f[6], System.Globalization.CultureInfo.InvariantCulture), node.SizeInBytes);
            seen++;
        }
        Assert.True(seen >= 15, $"debugfs listed {seen} entries:\n{listing}");

        var stat = Tools.Run("debugfs", "-R", "stat /sparse.bin", image).Stdout;
        var size = SizePattern().Match(stat);
        Assert.True(size.Success, stat);
        Assert.Equal(long.Parse(size.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), PathResolver.Resolve(fs, "/sparse.bin").SizeInBytes);
        var manyCount = Tools.Run("debugfs", "-R", "ls -p /many", image).Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(l => l.StartsWith('/') && !l.StartsWith("/0/", StringComparison.Ordinal) && !l.Contains("/./", StringComparison.Ordinal) && !l.Contains("/../", StringComparison.Ordinal));
        Assert.Equal(manyCount, fs.ListDirectory(PathResolver.Resolve(fs, "/many")).Count);
    }

    [GeneratedRegex(@"Size: (\d+)")]
    private static partial Regex SizePattern();

    [Fact]
    public void Images_ExerciseTheInterestingLayouts()
    {
        // The tree walks above only prove something if the images really use these layouts.
        var ext41k = ExtTestImages.Image("ext4-1k");
        var dump = Tools.Run("debugfs", "-R", "dump_extents /frag.bin", ext41k).Stdout;
        Assert.Contains(" 2/ 2 ", dump, StringComparison.Ordinal); // an extent tree of depth 2
        var htree = Tools.Run("debugfs", "-R", "htree_dump /many", ExtTestImages.Image("ext4")).Stdout;
        Assert.Contains("Indirect levels", htree, StringComparison.Ordinal);
        var ext2 = Tools.Run("debugfs", "-R", "stat /sparse.bin", ExtTestImages.Image("ext2-1k")).Stdout;
        Assert.Contains("(TIND)", ext2, StringComparison.Ordinal);
        Assert.Contains("(DIND)", Tools.Run("debugfs", "-R", "stat /big.bin", ExtTestImages.Image("ext3-1k")).Stdout, StringComparison.Ordinal);
        var inline = Tools.Run("debugfs", "-R", "stat /small100.txt", ExtTestImages.Image("ext4-inline")).Stdout;
        Assert.Contains("Size of inline data: 100", inline, StringComparison.Ordinal);
        var inlineDir = Tools.Run("debugfs", "-R", "stat /dir/nested", ExtTestImages.Image("ext4-inline")).Stdout;
        Assert.Contains("Size of inline data", inlineDir, StringComparison.Ordinal);
    }

    public static TheoryData<string> HashAlgorithms => new("legacy", "half_md4", "tea", "legacy-unsigned", "half_md4-unsigned", "tea-unsigned");

    [Theory]
    [MemberData(nameof(HashAlgorithms))]
    public void HtreeLookup_FindsEveryName(string hashAlg)
    {
        var image = ExtTestImages.HtreeImage(hashAlg);
        Assert.Contains($"Hash Version: {Array.IndexOf(["legacy", "half_md4", "tea"], hashAlg.Replace("-unsigned", "", StringComparison.Ordinal))}",
            Tools.Run("debugfs", "-R", "htree_dump /names", image).Stdout, StringComparison.Ordinal);
        Assert.Equal(hashAlg.EndsWith("-unsigned", StringComparison.Ordinal),
            Tools.Run("dumpe2fs", "-h", image).Stdout.Contains("unsigned_directory_hash", StringComparison.Ordinal));
        using var volume = new FileBlockReader(image);
        var fs = ExtFileSystem.Open(volume);
        var dir = PathResolver.Resolve(fs, "/names");
        var entries = fs.ListDirectory(dir);
        Assert.Equal(2500, entries.Count);
        foreach (var e in entries)
            Assert.True(fs.HtreeLookup(dir, e.Name)?.Id == e.Id, $"{hashAlg}: the hash tree does not lead to {e.Name}");
        Assert.Null(fs.HtreeLookup(dir, "no-such-name"));
        Assert.Null(fs.Lookup(dir, "no-such-name"));
        CompareDirectory(fs, fs.Root, ExtTestImages.HtreeSourceTree, isRoot: true);
    }

    [Theory]
    [MemberData(nameof(AllVariants))]
    public void HtreeLookup_FindsEveryNameInEachVariant(string variant)
    {
        using var volume = new FileBlockReader(ExtTestImages.Image(variant));
        var fs = ExtFileSystem.Open(volume);
        var dir = PathResolver.Resolve(fs, "/many");
        foreach (var e in fs.ListDirectory(dir))
            Assert.True(fs.HtreeLookup(dir, e.Name)?.Id == e.Id, $"{variant}: the hash tree does not lead to {e.Name}");
    }

    [Fact]
    public void Read_ServesPartialAndOutOfRangeRequests()
    {
        using var volume = new FileBlockReader(ExtTestImages.Image("ext4-1k"));
        var fs = ExtFileSystem.Open(volume);
        var frag = PathResolver.Resolve(fs, "/frag.bin");
        var buf = new byte[3000];
        // Chunk 5 starts at 40960: read across the hole before it and into its data.
        Assert.Equal(3000, fs.Read(frag, 40960 - 1000, buf));
        Assert.All(buf[..1000], b => Assert.Equal(0, b));
        Assert.Equal(ExtTestImages.Pattern(5, 1024), buf[1000..2024]);
        Assert.Equal(0, fs.Read(frag, frag.SizeInBytes, buf));
        Assert.Equal(0, fs.Read(frag, long.MaxValue, buf));
        Assert.Equal(100, fs.Read(frag, frag.SizeInBytes - 100, buf));
        Assert.Throws<ArgumentOutOfRangeException>(() => fs.Read(frag, -1, buf));
        Assert.Null(fs.Lookup(fs.Root, "a/b"));
        Assert.Null(fs.Lookup(fs.Root, ""));
        Assert.Null(fs.Lookup(fs.Root, new string('n', 300)));
    }

    [Fact]
    public void Read_UninitializedExtentReadsAsZeros()
    {
        // debugfs fallocate adds uninitialized extents inside frag.bin's holes; zap_block then fills those blocks
        // with 0xAA, which a reader must not return.
        using var tmp = new TempDir("domboot-ext-uninit");
        var image = tmp.File("uninit.img");
        File.Copy(ExtTestImages.SmallImage("ext4-1k", "-t", "ext4", "-b", "1024"), image);
        Tools.Run("debugfs", "-w", "-R", "fallocate /frag.bin 1 6", image);
        var bmap = Tools.Run("debugfs", "-R", "bmap /frag.bin 3", image).Stdout.Trim();
        var physical = bmap.Split('\n').Last().Trim().Split(' ')[0]; // "1608 (uninit)"
        Assert.Matches(@"^\d+$", physical);
        Tools.Run("debugfs", "-w", "-R", $"zap_block -p 0xAA {physical}", image);
        var extents = Tools.Run("debugfs", "-R", "dump_extents /frag.bin", image).Stdout;
        Assert.Contains("Uninit", extents, StringComparison.Ordinal);

        using var volume = new FileBlockReader(image);
        var fs = ExtFileSystem.Open(volume);
        var frag = PathResolver.Resolve(fs, "/frag.bin");
        var buf = new byte[8192];
        Assert.Equal(8192, fs.Read(frag, 0, buf));
        Assert.Equal(ExtTestImages.Pattern(0, 1024), buf[..1024]);
        Assert.All(buf[1024..], b => Assert.Equal(0, b));
    }

    [Fact]
    public void Reads_AreThreadSafe()
    {
        using var volume = new FileBlockReader(ExtTestImages.Image("ext4"));
        var fs = ExtFileSystem.Open(volume);
        var expected = Tools.Sha256(Path.Combine(ExtTestImages.SourceTree, "big.bin"));
        var expectedFrag = Tools.Sha256(Path.Combine(ExtTestImages.SourceTree, "frag.bin"));
        Parallel.For(0, 16, i =>
        {
            var path = i % 2 == 0 ? "/big.bin" : "/frag.bin";
            var node = PathResolver.Resolve(fs, path);
            Assert.Equal(i % 2 == 0 ? expected : expectedFrag, Sha256(fs, node));
        });
    }
}
