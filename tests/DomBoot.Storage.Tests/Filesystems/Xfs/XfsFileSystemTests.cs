using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using DomBoot.Storage.Filesystems;
using DomBoot.Storage.Filesystems.Xfs;
using DomBoot.Storage.Images;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Filesystems.Xfs;

public sealed partial class XfsFileSystemTests(XfsTestImages images) : IClassFixture<XfsTestImages>
{
    public static TheoryData<string> VariantNames => [.. XfsTestImages.Variants.Keys];

    [Theory]
    [MemberData(nameof(VariantNames))]
    public void Open_WalksWholeTreeLikeSource(string variant)
    {
        var image = images.Image(variant);
        string before = Tools.Sha256(image);
        using (var reader = new FileBlockReader(image))
        {
            var fs = XfsFileSystem.Open(reader);
            Assert.Equal("xfs", fs.TypeName);
            Assert.Equal(XfsTestImages.Uuid, fs.Uuid);
            Assert.Equal(XfsTestImages.Label(variant), fs.Label);
            Assert.Equal(FsNodeType.Directory, fs.Root.Type);
            Assert.Same(fs.Root, fs.Parent(fs.Root));

            int visited = CompareDirectory(fs, fs.Root, images.FullSource, isRoot: true);
            Assert.True(visited > XfsTestImages.NodeDirEntries);
        }
        Assert.Equal(before, Tools.Sha256(image));
    }

    [Theory]
    [MemberData(nameof(VariantNames))]
    public void Open_SuperblockMatchesXfsDb(string variant)
    {
        var image = images.Image(variant);
        var db = XfsDb(image, "sb 0", "p");
        using var reader = new FileBlockReader(image);
        var fs = XfsFileSystem.Open(reader);
        var sb = fs.Superblock;
        Assert.Equal("0x58465342", db["magicnum"]);
        Assert.Equal(ulong.Parse(db["blocksize"], CultureInfo.InvariantCulture), sb.BlockSize);
        Assert.Equal(ulong.Parse(db["dblocks"], CultureInfo.InvariantCulture), sb.DBlocks);
        Assert.Equal(ulong.Parse(db["agblocks"], CultureInfo.InvariantCulture), sb.AgBlocks);
        Assert.Equal(ulong.Parse(db["agcount"], CultureInfo.InvariantCulture), sb.AgCount);
        Assert.Equal(ulong.Parse(db["rootino"], CultureInfo.InvariantCulture), sb.RootIno);
        Assert.Equal(ulong.Parse(db["inodesize"], CultureInfo.InvariantCulture), sb.InodeSize);
        Assert.Equal(ulong.Parse(db["inopblog"], CultureInfo.InvariantCulture), sb.InoPBLog);
        Assert.Equal(ulong.Parse(db["agblklog"], CultureInfo.InvariantCulture), sb.AgBlkLog);
        Assert.Equal(ulong.Parse(db["dirblklog"], CultureInfo.InvariantCulture), sb.DirBlkLog);
        Assert.Equal(Hex(db["versionnum"]), sb.VersionNum);
        Assert.Equal(Hex(db["features2"]), sb.Features2);
        Assert.Equal(db["uuid"], fs.Uuid);
        Assert.StartsWith($"\"{fs.Label}", db["fname"], StringComparison.Ordinal);
        if (sb.IsV5)
        {
            Assert.Equal(Hex(db["features_incompat"]), sb.FeaturesIncompat);
            Assert.Equal(Hex(db["features_ro_compat"]), sb.FeaturesRoCompat);
            Assert.Contains("(correct)", db["crc"], StringComparison.Ordinal);
            Assert.Equal(variant == "v5-nrext64", sb.HasNrext64);
        }
        else
        {
            Assert.False(sb.HasFtype);
        }
    }

    [Theory]
    [MemberData(nameof(VariantNames))]
    public void Open_DirectoriesHaveEachForm(string variant)
    {
        using var reader = new FileBlockReader(images.Image(variant));
        var fs = XfsFileSystem.Open(reader);
        var sb = fs.Superblock;
        ulong leafFsb = XfsDirectory.LeafOffsetBytes >> sb.BlockLog;
        ulong freeFsb = 2 * leafFsb;

        var sf = XfsFileSystem.InodeOf(PathResolver.Resolve(fs, "/sf"));
        Assert.Equal(XfsDinodeFormat.Local, sf.Format);

        var block = PathResolver.Resolve(fs, "/block");
        Assert.Equal(sb.DirBlockSize, (ulong)block.SizeInBytes);

        var leaf = XfsFileSystem.ExtentsOf(PathResolver.Resolve(fs, "/leaf"));
        Assert.Contains(leaf, e => e.StartOff == leafFsb);
        Assert.DoesNotContain(leaf, e => e.StartOff >= freeFsb);

        var nodeDir = PathResolver.Resolve(fs, "/node");
        var node = XfsFileSystem.ExtentsOf(nodeDir);
        Assert.Contains(node, e => e.StartOff >= freeFsb); // a free index: node form
        Assert.Equal(XfsDinodeFormat.Btree, XfsFileSystem.InodeOf(nodeDir).Format); // fragmented: bmap btree

        var db = XfsDb(images.Image(variant), $"inode {nodeDir.Id}", "p core.format core.nextents");
        Assert.Equal("3 (btree)", db["core.format"]);
        Assert.Equal(db["core.nextents"], node.Count.ToString(CultureInfo.InvariantCulture));
    }

    [Theory]
    [MemberData(nameof(VariantNames))]
    public void Resolve_FollowsSymlinksAndDotDot(string variant)
    {
        using var reader = new FileBlockReader(images.Image(variant));
        var fs = XfsFileSystem.Open(reader);
        Assert.Equal("hello, xfs\n", ReadAll(fs, PathResolver.Resolve(fs, "/links/fast")));
        Assert.Equal("a\n", ReadAll(fs, PathResolver.Resolve(fs, "/links/absolute")));
        Assert.Equal("bb\n", ReadAll(fs, PathResolver.Resolve(fs, "/links/dirlink/../sf/b")));
        Assert.Equal("deep\n", ReadAll(fs, PathResolver.Resolve(fs, "/deep/a/b/../b/c/d/file")));
        Assert.Equal(XfsTestImages.RemoteLinkTarget, fs.ReadLink(PathResolver.Resolve(fs, "/links/remote", followLast: false)));
        Assert.Null(PathResolver.TryResolve(fs, "/links/dangling"));
        Assert.Null(fs.Lookup(fs.Root, "no-such-name"));
        var loop = Assert.Throws<DomBoot.Formats.Errors.MalformedDataException>(() => PathResolver.Resolve(fs, "/links/loop1"));
        Assert.Contains("too many levels", loop.Message, StringComparison.Ordinal);

        var deep = PathResolver.Resolve(fs, "/deep/a/b/c/d");
        Assert.Equal(PathResolver.Resolve(fs, "/deep/a/b/c").Id, fs.Parent(deep).Id);
        Assert.Equal(PathResolver.Resolve(fs, "/deep/a/b").Id, fs.Parent(fs.Parent(deep)).Id); // short-form parents
        Assert.Equal(fs.Root.Id, fs.Parent(PathResolver.Resolve(fs, "/node")).Id); // node-form ".."

        var entries = fs.ListDirectory(fs.Root).ToDictionary(e => e.Name);
        Assert.Equal(FsNodeType.CharDevice, entries["chardev"].Type);
        Assert.Equal(FsNodeType.BlockDevice, entries["blockdev"].Type);
        Assert.Equal(FsNodeType.Fifo, entries["fifo"].Type);
        var chr = fs.Lookup(fs.Root, "chardev")!;
        Assert.Equal(0x2000u | 0x1A4u, chr.Mode);
        var hello = fs.Lookup(fs.Root, "hello.txt")!;
        Assert.Equal(1000u, hello.Uid);
        Assert.Equal(100u, hello.Gid);
        Assert.Equal(1u, hello.LinkCount);
        Assert.True(hello.ModifiedTime > DateTimeOffset.UnixEpoch);
    }

    [Fact]
    public void HasMagic_MatchesXfsb()
    {
        Assert.True(XfsFileSystem.HasMagic("XFSB\0\0\x10\0"u8));
        Assert.False(XfsFileSystem.HasMagic("XFSA"u8));
        Assert.False(XfsFileSystem.HasMagic("XFS"u8));
    }

    [Fact]
    public void Read_StreamsAtAnyOffset()
    {
        var source = File.ReadAllBytes(Path.Combine(images.FullSource, "big-3m"));
        using var reader = new FileBlockReader(images.Image("v5"));
        var fs = XfsFileSystem.Open(reader);
        var big = PathResolver.Resolve(fs, "/big-3m");
        var rng = new Random(99);
        var buf = new byte[70_000];
        for (int i = 0; i < 50; i++)
        {
            long off = rng.NextInt64(source.Length + 100);
            int len = rng.Next(buf.Length);
            int n = fs.Read(big, off, buf.AsSpan(0, len));
            int want = (int)Math.Clamp(source.Length - off, 0, len);
            Assert.Equal(want, n);
            Assert.True(buf.AsSpan(0, n).SequenceEqual(source.AsSpan((int)Math.Min(off, source.Length), n)));
        }
    }

    internal static string ReadAll(IFileSystem fs, FsNode node)
    {
        var buf = new byte[node.SizeInBytes];
        Assert.Equal(buf.Length, fs.Read(node, 0, buf));
        return Encoding.UTF8.GetString(buf);
    }

    internal static string Sha256Of(IFileSystem fs, FsNode node)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buf = new byte[1 << 16];
        long off = 0;
        int n;
        while ((n = fs.Read(node, off, buf)) > 0)
        {
            h.AppendData(buf, 0, n);
            off += n;
        }
        Assert.Equal(node.SizeInBytes, off);
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }

    private static int CompareDirectory(IFileSystem fs, FsNode dir, string source, bool isRoot)
    {
        var entries = fs.ListDirectory(dir);
        var expected = new DirectoryInfo(source).EnumerateFileSystemInfos().Select(e => e.Name).ToList();
        if (isRoot) expected.AddRange(["chardev", "blockdev", "fifo"]);
        Assert.Equal(expected.Order(StringComparer.Ordinal), entries.Select(e => e.Name).Order(StringComparer.Ordinal));
        int count = entries.Count;
        foreach (var e in entries)
        {
            var node = fs.Lookup(dir, e.Name);
            Assert.NotNull(node);
            Assert.Equal(e.Id, node.Id);
            Assert.Equal(e.Type, node.Type);
            var path = Path.Combine(source, e.Name);
            var info = new FileInfo(path);
            if (isRoot && e.Name is "chardev" or "blockdev" or "fifo") continue;
            if (info.LinkTarget is { } target)
            {
                Assert.Equal(FsNodeType.Symlink, node.Type);
                Assert.Equal(target, fs.ReadLink(node));
                Assert.Equal(Encoding.UTF8.GetByteCount(target), node.SizeInBytes);
            }
            else if (Directory.Exists(path))
            {
                Assert.Equal(FsNodeType.Directory, node.Type);
                Assert.Equal(dir.Id, fs.Parent(node).Id);
                count += CompareDirectory(fs, node, path, isRoot: false);
            }
            else
            {
                Assert.Equal(FsNodeType.Regular, node.Type);
                Assert.Equal(info.Length, node.SizeInBytes);
                Assert.Equal(Tools.Sha256(path), Sha256Of(fs, node));
            }
        }
        return count;
    }

    private static uint Hex(string s) => uint.Parse(s.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    internal static Dictionary<string, string> XfsDb(string image, params string[] commands)
    {
        var args = new List<string> { "-r" };
        foreach (var c in commands) { args.Add("-c"); args.Add(c); }
        args.Add(image);
        var r = Tools.Run("xfs_db", args);
        var d = new Dictionary<string, string>();
        foreach (var line in r.Stdout.Split('\n'))
        {
            int eq = line.IndexOf(" = ", StringComparison.Ordinal);
            if (eq > 0) d[line[..eq].Trim()] = line[(eq + 3)..].Trim();
        }
        return d;
    }
}
