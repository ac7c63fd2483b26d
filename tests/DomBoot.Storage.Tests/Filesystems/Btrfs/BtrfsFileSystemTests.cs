using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using DomBoot.Formats.Errors;
using DomBoot.Storage.Filesystems;
using DomBoot.Storage.Filesystems.Btrfs;
using DomBoot.Storage.Images;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Filesystems.Btrfs;

[CollectionDefinition("btrfs images")]
public sealed class BtrfsImagesGroup : ICollectionFixture<BtrfsTestImages>;

[Collection("btrfs images")]
public sealed partial class BtrfsFileSystemTests(BtrfsTestImages images)
{
    /// <summary>Reads a whole file in odd-sized pieces so reads straddle extent and sector boundaries.</summary>
    internal static byte[] ReadAll(IFileSystem fs, FsNode node)
    {
        var data = new byte[node.SizeInBytes];
        long at = 0;
        while (at < data.Length)
        {
            int n = fs.Read(node, at, data.AsSpan((int)at, (int)Math.Min(65536 + 7, data.Length - at)));
            Assert.True(n > 0);
            at += n;
        }
        Assert.Equal(0, fs.Read(node, at, new byte[16]));
        return data;
    }

    /// <summary>Walks the filesystem and the host folder together; returns how many entries matched.</summary>
    internal static int CompareTree(IFileSystem fs, FsNode dir, string hostDir, ISet<string>? skip = null, string rel = "")
    {
        var entries = fs.ListDirectory(dir);
        var hostNames = Directory.EnumerateFileSystemEntries(hostDir).Select(p => Path.GetFileName(p)!).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(hostNames, entries.Select(e => e.Name).Order(StringComparer.Ordinal).ToList());
        int count = 0;
        foreach (var e in entries)
        {
            var host = Path.Combine(hostDir, e.Name);
            var node = fs.Lookup(dir, e.Name);
            Assert.NotNull(node);
            Assert.Equal(e.Id, node.Id);
            Assert.Equal(e.Type, node.Type);
            count++;
            var info = new FileInfo(host);
            if (info.LinkTarget is { } target)
            {
                Assert.Equal(FsNodeType.Symlink, node.Type);
                Assert.Equal(target, fs.ReadLink(node));
            }
            else if (Directory.Exists(host))
            {
                Assert.Equal(FsNodeType.Directory, node.Type);
                Assert.Equal(dir.Id, fs.Parent(node).Id);
                count += CompareTree(fs, node, host, skip, rel + "/" + e.Name);
            }
            else
            {
                Assert.Equal(FsNodeType.Regular, node.Type);
                Assert.Equal(info.Length, node.SizeInBytes);
                if (skip?.Contains(rel + "/" + e.Name) == true) continue;
                Assert.True(Tools.Sha256(host) == Tools.Sha256(ReadAll(fs, node)), $"{rel}/{e.Name}: contents differ");
            }
        }
        return count;
    }

    [Fact]
    public void DefaultImage_TreeMatchesSource()
    {
        using var r = new FileBlockReader(images.DefaultImage);
        var fs = BtrfsFileSystem.Open(r);
        Assert.Equal("btrfs", fs.TypeName);
        Assert.Equal(BtrfsTestImages.Label, fs.Label);
        Assert.Equal(BtrfsTestImages.Uuid, fs.Uuid);
        Assert.Equal(5UL, fs.SubvolumeId);
        Assert.Empty(fs.Subvolumes);
        Assert.Equal(fs.Root, fs.Parent(fs.Root));
        Assert.True(CompareTree(fs, fs.Root, images.Source) > 600);
    }

    [Fact]
    public void SingleMetadataImage_TreeMatchesSource()
    {
        using var r = new FileBlockReader(images.SingleImage);
        var fs = BtrfsFileSystem.Open(r);
        Assert.Equal(BtrfsTestImages.SingleUuid, fs.Uuid);
        Assert.True(CompareTree(fs, fs.Root, images.Source) > 600);
        Assert.True(fs.FsTreeRoot(5).Level >= 1, "600 entries should need an internal node");
    }

    [Fact]
    public void HasMagic_MatchesImages()
    {
        var head = new byte[0x11000];
        using (var r = new FileBlockReader(images.DefaultImage)) r.ReadExactly(0, head);
        Assert.True(BtrfsFileSystem.HasMagic(head));
        head[0x10040] ^= 1;
        Assert.False(BtrfsFileSystem.HasMagic(head));
        Assert.False(BtrfsFileSystem.HasMagic(head.AsSpan(0, 0x10000)));
    }

    [Fact]
    public void Superblock_MatchesDumpSuper()
    {
        var dump = Tools.Run("btrfs", "inspect-internal", "dump-super", images.DefaultImage).Stdout;
        string Field(string name)
        {
            var m = Regex.Match(dump, "^" + Regex.Escape(name) + @"\t+(\S+)", RegexOptions.Multiline);
            Assert.True(m.Success, $"dump-super has no {name}");
            return m.Groups[1].Value;
        }
        ulong U(string name) => Field(name).StartsWith("0x", StringComparison.Ordinal)
            ? ulong.Parse(Field(name).AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture)
            : ulong.Parse(Field(name), CultureInfo.InvariantCulture);
        using var r = new FileBlockReader(images.DefaultImage);
        var sb = BtrfsFileSystem.Open(r).Superblock;
        Assert.Equal(Field("fsid"), sb.FsId.ToString());
        Assert.Equal(Field("label"), sb.Label);
        Assert.Equal(U("generation"), sb.Generation);
        Assert.Equal(U("root"), sb.Root);
        Assert.Equal(U("chunk_root"), sb.ChunkRoot);
        Assert.Equal(U("root_level"), sb.RootLevel);
        Assert.Equal(U("chunk_root_level"), sb.ChunkRootLevel);
        Assert.Equal(U("total_bytes"), sb.TotalBytes);
        Assert.Equal(U("bytes_used"), sb.BytesUsed);
        Assert.Equal(U("sectorsize"), sb.SectorSize);
        Assert.Equal(U("nodesize"), sb.NodeSize);
        Assert.Equal(U("stripesize"), sb.StripeSize);
        Assert.Equal(U("root_dir"), sb.RootDirObjectId);
        Assert.Equal(U("num_devices"), sb.NumDevices);
        Assert.Equal(U("sys_array_size"), sb.SysChunkArraySize);
        Assert.Equal(U("compat_ro_flags"), sb.CompatRoFlags);
        Assert.Equal(U("incompat_flags"), sb.IncompatFlags);
        Assert.Equal(U("csum_type"), sb.CsumType);
        Assert.Equal(U("dev_item.devid"), sb.DevItemDevId);
        Assert.Equal(Field("dev_item.uuid"), sb.DevItemUuid.ToString());
        // DUP metadata: the system chunk has two stripes on device 1
        var sys = Assert.Single(sb.SystemChunks);
        Assert.Equal("DUP", sys.ProfileName);
        Assert.Equal(2, sys.NumStripes);
    }

    [Fact]
    public void NameHash_MatchesDirItemKeys()
    {
        var dump = Tools.Run("btrfs", "inspect-internal", "dump-tree", "-t", "5", images.DefaultImage).Stdout;
        var m = Regex.Matches(dump, @"key \((\d+) DIR_ITEM (\d+)\)[^\n]*\n[^\n]*\n[^\n]*\n\s+name: ([^\n]+)");
        Assert.True(m.Count > 600);
        foreach (Match x in m.Take(50))
            Assert.Equal(uint.Parse(x.Groups[2].Value, CultureInfo.InvariantCulture), BtrfsCrc32C.NameHash(System.Text.Encoding.UTF8.GetBytes(x.Groups[3].Value)));
    }

    [Fact]
    public void PathResolver_FollowsSymlinksAndDotDot()
    {
        using var r = new FileBlockReader(images.DefaultImage);
        var fs = BtrfsFileSystem.Open(r);
        string Cat(string path) => System.Text.Encoding.UTF8.GetString(ReadAll(fs, PathResolver.Resolve(fs, path)));
        Assert.Equal("hello btrfs\n", Cat("/link"));
        Assert.Equal("deep file\n", Cat("/abslink"));
        Assert.Equal("deep file\n", Cat("/dirlink/deep.txt"));
        Assert.Equal("hello btrfs\n", Cat("/d/e/up"));
        Assert.Equal("hello btrfs\n", Cat("/d/e/../../d/./e/up"));
        Assert.Equal("utf-8 name\n", Cat("/grüße.txt"));
        Assert.Equal(FsNodeType.Symlink, PathResolver.Resolve(fs, "/link", followLast: false).Type);
        Assert.Null(PathResolver.TryResolve(fs, "/dangling"));
        Assert.Null(PathResolver.TryResolve(fs, "/nope"));
        Assert.Null(fs.Lookup(fs.Root, "no-such-name"));
        Assert.Equal(fs.Root.Id, PathResolver.Resolve(fs, "/d/e/../..").Id);
    }

    [Fact]
    public void SparseFile_ReadsHolesAsZeros()
    {
        using var r = new FileBlockReader(images.DefaultImage);
        var fs = BtrfsFileSystem.Open(r);
        var node = fs.Lookup(fs.Root, "sparse.bin")!;
        var host = File.ReadAllBytes(Path.Combine(images.Source, "sparse.bin"));
        var buf = new byte[3000];
        foreach (long at in new long[] { 0, 2 * 1024 * 1024 - 1000, 2 * 1024 * 1024 + 8000, 5 * 1024 * 1024 - 2000 })
        {
            int n = fs.Read(node, at, buf);
            Assert.Equal((int)Math.Min(buf.Length, host.Length - at), n);
            Assert.True(host.AsSpan((int)at, n).SequenceEqual(buf.AsSpan(0, n)));
        }
        var holes = fs.Lookup(fs.Root, "hole-only")!;
        Assert.All(ReadAll(fs, holes), b => Assert.Equal(0, b));
    }

    [Fact]
    public void ParallelReads_AgreeWithSource()
    {
        using var r = new FileBlockReader(images.DefaultImage);
        var fs = BtrfsFileSystem.Open(r);
        var expected = Tools.Sha256(Path.Combine(images.Source, "big.bin"));
        var node = PathResolver.Resolve(fs, "/big.bin");
        var results = new string[8];
        Parallel.For(0, results.Length, i =>
        {
            var f = PathResolver.Resolve(fs, i % 2 == 0 ? "/big.bin" : "/many/entry-0123.txt");
            results[i] = Tools.Sha256(ReadAll(fs, f));
        });
        for (int i = 0; i < results.Length; i += 2) Assert.Equal(expected, results[i]);
        Assert.Equal(node.Id, PathResolver.Resolve(fs, "/big.bin").Id);
    }

    [Fact]
    public void CompressedImage_PassesBtrfsCheckAndRestore()
    {
        Tools.Run("btrfs", "check", "--readonly", "--check-data-csum", images.CompressedImage);
        using var outDir = new TempDir("domboot-btrfs-restore");
        Tools.Run("btrfs", "restore", images.CompressedImage, outDir.Path);
        foreach (var (name, plain) in images.CompressedPlain)
            Assert.True(Tools.Sha256(plain) == Tools.Sha256(Path.Combine(outDir.Path, name)), $"btrfs restore disagrees on {name}");
        var dump = Tools.Run("btrfs", "inspect-internal", "dump-tree", "-t", "5", images.CompressedImage).Stdout;
        Assert.Contains("compression 1 (zlib)", dump, StringComparison.Ordinal);
        Assert.Contains("compression 2 (lzo)", dump, StringComparison.Ordinal);
        Assert.Contains("compression 3 (zstd)", dump, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("zlib.txt")]
    [InlineData("lzo.txt")]
    [InlineData("zlib-inline.txt")]
    [InlineData("lzo-inline.txt")]
    public void CompressedImage_ReadsCompressedExtents(string name)
    {
        using var r = new FileBlockReader(images.CompressedImage);
        var fs = BtrfsFileSystem.Open(r);
        var node = fs.Lookup(fs.Root, name)!;
        var items = BtrfsTestImages.ExtentItems(fs, node);
        Assert.NotEqual(0, items[0].Data.Span[16]);
        Assert.Equal(Tools.Sha256(images.CompressedPlain[name]), Tools.Sha256(ReadAll(fs, node)));
        Assert.Equal(Tools.Sha256(Path.Combine(images.Source, name)), Tools.Sha256(ReadAll(fs, node)));
    }

    [Fact]
    public void CompressedImage_ZstdIsUnsupportedByName()
    {
        using var r = new FileBlockReader(images.CompressedImage);
        var fs = BtrfsFileSystem.Open(r);
        var node = fs.Lookup(fs.Root, "zstd.txt")!;
        var ex = Assert.Throws<UnsupportedFeatureException>(() => fs.Read(node, 0, new byte[100]));
        Assert.Contains("zstd", ex.Message, StringComparison.Ordinal);
        Assert.True(CompareTree(fs, fs.Root, images.Source, new HashSet<string> { "/zstd.txt" }) > 600);
    }

    [Fact]
    public void ConvertedImage_ListsExt2SavedSubvolume()
    {
        using var r = new FileBlockReader(images.ConvertedImage);
        var fs = BtrfsFileSystem.Open(r);
        Assert.Equal(BtrfsTestImages.ConvertUuid, fs.Uuid);
        Assert.Equal(BtrfsTestImages.Label, fs.Label);
        Assert.Equal(5UL, fs.DefaultSubvolumeId);
        var sub = Assert.Single(fs.Subvolumes);
        Assert.Equal(new BtrfsSubvolume(256, "ext2_saved", 5), sub);
        var dump = Tools.Run("btrfs", "inspect-internal", "dump-tree", "-t", "root", images.ConvertedImage).Stdout;
        Assert.Matches(@"key \(256 ROOT_BACKREF 5\)[^\n]*\n\s+root backref key dirid 256 sequence \d+ name ext2_saved", dump);

        var saved = fs.Lookup(fs.Root, "ext2_saved")!;
        Assert.Equal(FsNodeType.Directory, saved.Type);
        Assert.Equal(fs.Root.Id, fs.Parent(saved).Id);
        var image = fs.Lookup(saved, "image")!;
        Assert.Equal(new FileInfo(images.ExtImage).Length, image.SizeInBytes);
        Assert.Equal("not really a kernel\n", System.Text.Encoding.UTF8.GetString(ReadAll(fs, PathResolver.Resolve(fs, "/boot/vmlinuz"))));
        Assert.Equal(Tools.Sha256(BtrfsTestImages.CompressibleText(300_000, 9)), Tools.Sha256(ReadAll(fs, PathResolver.Resolve(fs, "/data.bin"))));
        Assert.Equal(image.Id, PathResolver.Resolve(fs, "/boot/../ext2_saved/./image").Id);
    }

    [Fact]
    public void ConvertedImage_OpensSubvolumeByPathAndId()
    {
        using var r = new FileBlockReader(images.ConvertedImage);
        foreach (var fs in new[] { BtrfsFileSystem.Open(r, "ext2_saved"), BtrfsFileSystem.Open(r, "/ext2_saved/"), BtrfsFileSystem.Open(r, 256UL) })
        {
            Assert.Equal(256UL, fs.SubvolumeId);
            Assert.Equal(["image"], fs.ListDirectory(fs.Root).Select(e => e.Name));
            Assert.Equal(fs.Root, fs.Parent(fs.Root));
            Assert.Equal(fs.Root.Id, PathResolver.Resolve(fs, "/../..").Id);
        }
        var top = BtrfsFileSystem.Open(r, 5UL);
        Assert.Contains("ext2_saved", top.ListDirectory(top.Root).Select(e => e.Name));
        Assert.Throws<FileNotFoundException>(() => BtrfsFileSystem.Open(r, "@/root"));
        Assert.Throws<FileNotFoundException>(() => BtrfsFileSystem.Open(r, 257UL));
    }

    [Fact]
    public void ConvertedImage_SavedImageEqualsOriginalExt4()
    {
        using var r = new FileBlockReader(images.ConvertedImage);
        var fs = BtrfsFileSystem.Open(r, "ext2_saved");
        var image = fs.Lookup(fs.Root, "image")!;
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buf = new byte[1 << 20];
        for (long at = 0; at < image.SizeInBytes;)
        {
            int n = fs.Read(image, at, buf);
            sha.AppendData(buf, 0, n);
            at += n;
        }
        Assert.Equal(Tools.Sha256(images.ExtImage), Convert.ToHexStringLower(sha.GetHashAndReset()));
    }

    [Fact]
    public void DefaultSubvolumeEntry_SelectsTheMountedSubvolume()
    {
        // btrfs-progs cannot set-default without mounting: point the root tree's "default" DIR_ITEM at 256 instead
        using var file = new FileBlockReader(images.ConvertedImage);
        var overlay = new OverlayBlockReader(file);
        var before = BtrfsFileSystem.Open(overlay);
        var item = before.Reader.TryGet(before.RootTreeRoot, new BtrfsKey(6, 84, BtrfsCrc32C.NameHash("default"u8)))!.Value;
        overlay.SetU64(item.DataImageOffset + BtrfsDirItem.Offsets.Location, 256);
        overlay.FixCsum(item.NodeImageOffset, (int)before.Superblock.NodeSize);
        var fs = BtrfsFileSystem.Open(overlay);
        Assert.Equal(256UL, fs.DefaultSubvolumeId);
        Assert.Equal(256UL, fs.SubvolumeId);
        Assert.Equal(["image"], fs.ListDirectory(fs.Root).Select(e => e.Name));
        Assert.Equal(5UL, BtrfsFileSystem.Open(overlay, "/").SubvolumeId);
    }
}
