using System.Diagnostics;
using DomBoot.Formats.Errors;
using DomBoot.Storage.Filesystems;
using DomBoot.Storage.Filesystems.Xfs;
using DomBoot.Storage.Images;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Filesystems.Xfs;

public sealed partial class XfsFileSystemTests
{
    /// <summary>Offsets of the structures the malformed cases patch, found on the clean image.</summary>
    private sealed record Layout(XfsSuperblock Sb, long RootInode, long HelloInode, long HelloExtent, ulong HelloLinear,
        long SfInode, long SfFirstEntry, long FastLinkInode, long BlockDirBlock, long BlockDirFree, long NodeInode, int NodeForkSize, long NodeLeaf)
    {
        public static Layout Of(XfsFileSystem fs)
        {
            var sb = fs.Superblock;
            long Ino(string path) => XfsFileSystem.InodeOf(PathResolver.Resolve(fs, path, followLast: false)).ImageOffset;
            long BlockOf(XfsBmbtRecord e) => (long)(sb.FsbToLinear(e.StartBlock, 1)!.Value * sb.BlockSize);

            var hello = PathResolver.Resolve(fs, "/hello.txt");
            var helloExtent = XfsFileSystem.ExtentsOf(hello)[0];
            var sf = XfsFileSystem.InodeOf(PathResolver.Resolve(fs, "/sf"));
            long sfFirst = -1;
            XfsDirectory.Walk(VolumeOf(fs), sf, () => XfsExtentMap.Empty, (_, _, _, at) => { sfFirst = at; return true; });

            var blockDir = PathResolver.Resolve(fs, "/block");
            var blockInode = XfsFileSystem.InodeOf(blockDir);
            long blockAt = BlockOf(XfsFileSystem.ExtentsOf(blockDir)[0]);
            long lastAt = -1;
            int lastLen = 0;
            XfsDirectory.Walk(VolumeOf(fs), blockInode, () => XfsFileSystem.ExtentsMapOf(blockDir), (name, _, _, at) => { lastAt = at; lastLen = name.Length; return false; });
            long free = lastAt + ((9 + lastLen + (sb.HasFtype ? 1 : 0) + 2 + 7) & ~7);

            long nodeInode = -1, nodeLeaf = -1;
            int nodeFork = 0;
            if (PathResolver.TryResolve(fs, "/node") is { } node)
            {
                var ni = XfsFileSystem.InodeOf(node);
                nodeInode = ni.ImageOffset;
                nodeFork = ni.DataForkSize;
                int maxRecs = (nodeFork - 4) / 16;
                ulong ptr = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(ni.DataFork.AsSpan(4 + maxRecs * 8));
                nodeLeaf = (long)(sb.FsbToLinear(ptr, 1)!.Value * sb.BlockSize);
            }
            return new Layout(sb, Ino("/"), Ino("/hello.txt"), helloExtent.ImageOffset, sb.FsbToLinear(helloExtent.StartBlock, 1)!.Value,
                sf.ImageOffset, sfFirst, Ino("/links/fast"), blockAt, free, nodeInode, nodeFork, nodeLeaf);
        }
    }

    private static XfsVolume VolumeOf(XfsFileSystem fs) => fs.Volume;

    private sealed record Case(bool FullImage, Func<PatchedBlockReader, Layout, Action> Arrange, Type Expected, Func<Layout, long> Offset);

    private static void FixSb(PatchedBlockReader p, Layout l) => p.FixCrc(0, l.Sb.SectSize, XfsSuperblock.Offsets.sb_crc);
    private static void FixInode(PatchedBlockReader p, Layout l, long at) => p.FixCrc(at, l.Sb.InodeSize, XfsDinode.Offsets.di_crc);
    private static Action OpenIt(PatchedBlockReader p) => () => XfsFileSystem.Open(p);
    private static Action ListIt(PatchedBlockReader p, string path) => () => { var fs = XfsFileSystem.Open(p); fs.ListDirectory(PathResolver.Resolve(fs, path)); };
    private static Action ReadIt(PatchedBlockReader p, string path) => () => { var fs = XfsFileSystem.Open(p); fs.Read(PathResolver.Resolve(fs, path), 0, new byte[64]); };

    private static readonly Dictionary<string, Case> Cases = new()
    {
        ["bad magic"] = new(false, (p, _) => { p.U32(0, 0x58465343); return OpenIt(p); }, typeof(MalformedDataException), _ => 0),
        ["zero block size"] = new(false, (p, l) => { p.U32(4, 0); FixSb(p, l); return OpenIt(p); }, typeof(MalformedDataException), _ => 4),
        ["absurd block size"] = new(false, (p, l) => { p.U32(4, 1 << 20); FixSb(p, l); return OpenIt(p); }, typeof(MalformedDataException), _ => 4),
        ["agcount zero"] = new(false, (p, l) => { p.U32(88, 0); FixSb(p, l); return OpenIt(p); }, typeof(MalformedDataException), _ => 88),
        ["agcount absurd"] = new(false, (p, l) => { p.U32(88, 1u << 30); FixSb(p, l); return OpenIt(p); }, typeof(MalformedDataException), _ => 88),
        ["rootino out of range"] = new(false, (p, l) => { p.U64(56, 1UL << 50); FixSb(p, l); return OpenIt(p); }, typeof(MalformedDataException), _ => 56),
        ["superblock crc mismatch"] = new(false, (p, _) => { p.U8(108, (byte)'Z'); return OpenIt(p); }, typeof(MalformedDataException), _ => 224),
        ["unknown incompat feature"] = new(false, (p, l) => { p.U32(216, l.Sb.FeaturesIncompat | 0x8000_0000); FixSb(p, l); return OpenIt(p); }, typeof(UnsupportedFeatureException), _ => -1),
        ["needsrepair feature"] = new(false, (p, l) => { p.U32(216, l.Sb.FeaturesIncompat | 0x10); FixSb(p, l); return OpenIt(p); }, typeof(UnsupportedFeatureException), _ => -1),
        ["root inode bad magic"] = new(false, (p, l) => { p.U16(l.RootInode, 0x4E49); FixInode(p, l, l.RootInode); return OpenIt(p); }, typeof(MalformedDataException), l => l.RootInode),
        ["root inode crc mismatch"] = new(false, (p, l) => { p.U8(l.RootInode + 8, 0x55); return OpenIt(p); }, typeof(MalformedDataException), l => l.RootInode + 100),
        ["directory entry inode out of range"] = new(false, (p, l) =>
        {
            int nameLen = p.Get(l.SfFirstEntry, 1)[0];
            p.U32(l.SfFirstEntry + 3 + nameLen + 1, 0xFFFF_FF00);
            FixInode(p, l, l.SfInode);
            return ListIt(p, "/sf");
        }, typeof(MalformedDataException), l => l.SfFirstEntry),
        ["extent outside the filesystem"] = new(false, (p, l) =>
        {
            ulong l1 = p.GetU64(l.HelloExtent + 8);
            p.U64(l.HelloExtent + 8, (l1 & ((1UL << 21) - 1)) | ((200UL << l.Sb.AgBlkLog) << 21));
            FixInode(p, l, l.HelloInode);
            return ReadIt(p, "/hello.txt");
        }, typeof(MalformedDataException), l => l.HelloExtent),
        ["extent past the volume"] = new(false, (p, l) =>
        {
            // the last filesystem block, on a volume one block shorter than sb_dblocks
            ulong lastAg = l.Sb.AgCount - 1;
            ulong fsb = (lastAg << l.Sb.AgBlkLog) | (l.Sb.DBlocks - 1 - lastAg * l.Sb.AgBlocks);
            ulong l1 = p.GetU64(l.HelloExtent + 8);
            ulong l0 = p.GetU64(l.HelloExtent);
            p.U64(l.HelloExtent, (l0 & ~((1UL << 9) - 1)) | (fsb >> 43));
            p.U64(l.HelloExtent + 8, (l1 & ((1UL << 21) - 1)) | (fsb << 21));
            FixInode(p, l, l.HelloInode);
            return ReadIt(p, "/hello.txt");
        }, typeof(MalformedDataException), l => l.HelloExtent),
        ["extent count exceeds the fork"] = new(false, (p, l) => { p.U32(l.HelloInode + 76, 1000); FixInode(p, l, l.HelloInode); return ReadIt(p, "/hello.txt"); },
            typeof(MalformedDataException), l => l.HelloInode + 76),
        ["symlink claims 2^60 bytes"] = new(false, (p, l) => { p.U64(l.FastLinkInode + 56, 1UL << 60); FixInode(p, l, l.FastLinkInode); return () => PathResolver.Resolve(XfsFileSystem.Open(p), "/links/fast"); },
            typeof(MalformedDataException), l => l.FastLinkInode + 56),
        ["file size beyond XFS_MAXIOFFSET"] = new(false, (p, l) => { p.U64(l.HelloInode + 56, 1UL << 63); FixInode(p, l, l.HelloInode); return ReadIt(p, "/hello.txt"); },
            typeof(MalformedDataException), l => l.HelloInode + 56),
        ["realtime file"] = new(false, (p, l) => { p.U16(l.HelloInode + 90, 1); FixInode(p, l, l.HelloInode); return ReadIt(p, "/hello.txt"); },
            typeof(UnsupportedFeatureException), _ => -1),
        ["directory block bad magic"] = new(false, (_, _) => () => { }, typeof(MalformedDataException), l => l.BlockDirBlock),
        ["directory unused entry length zero"] = new(false, (_, _) => () => { }, typeof(MalformedDataException), l => l.BlockDirFree + 2),
        ["directory block tail count overruns"] = new(false, (_, _) => () => { }, typeof(MalformedDataException), l => l.BlockDirBlock + l.Sb.DirBlockSize - 8),
        ["bmap btree too deep"] = new(true, (p, l) => { p.U16(l.NodeInode + 176, 10); FixInode(p, l, l.NodeInode); return ListIt(p, "/node"); },
            typeof(MalformedDataException), l => l.NodeInode + 176),
        ["bmap btree cycle"] = new(true, (p, l) =>
        {
            p.U16(l.NodeInode + 176, 2);
            FixInode(p, l, l.NodeInode);
            int bs = (int)l.Sb.BlockSize;
            int maxRecs = (bs - 72) / 16;
            ulong self = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(p.Get(l.NodeInode + 176 + 4 + (l.NodeForkSize - 4) / 16 * 8, 8));
            p.U16(l.NodeLeaf + 4, 1);
            p.U16(l.NodeLeaf + 6, 1);
            p.U64(l.NodeLeaf + 72 + maxRecs * 8, self);
            p.FixCrc(l.NodeLeaf, bs, 64);
            return ListIt(p, "/node");
        }, typeof(MalformedDataException), l => l.NodeLeaf + 72 + ((int)l.Sb.BlockSize - 72) / 16 * 8),
    };

    public static TheoryData<string> MalformedCases => [.. Cases.Keys];

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void Open_RejectsMalformed(string name)
    {
        var c = Cases[name];
        var image = c.FullImage ? images.Image("v5") : images.Image("v5", full: false);
        string before = Tools.Sha256(image);
        using (var file = new FileBlockReader(image))
        {
            var layout = Layout.Of(XfsFileSystem.Open(file));
            var p = new PatchedBlockReader(file, name == "extent past the volume" ? (long)((layout.Sb.DBlocks - 1) * layout.Sb.BlockSize) : null);
            Action act = name switch
            {
                "directory block bad magic" => DirBlock(p, layout, () => p.U32(layout.BlockDirBlock, 0x58443243)),
                "directory unused entry length zero" => DirBlock(p, layout, () =>
                {
                    Assert.Equal(0xFFFF, p.GetU16(layout.BlockDirFree));
                    p.U16(layout.BlockDirFree + 2, 0);
                }),
                "directory block tail count overruns" => DirBlock(p, layout, () => p.U32(layout.BlockDirBlock + layout.Sb.DirBlockSize - 8, 0x1000_0000)),
                _ => c.Arrange(p, layout),
            };
            var ex = Assert.Throws(c.Expected, act);
            if (ex is MalformedDataException m) Assert.Equal(c.Offset(layout), m.Offset);
            Assert.DoesNotContain("Exception", ex.Message, StringComparison.Ordinal);
        }
        Assert.Equal(before, Tools.Sha256(image));
    }

    private static Action DirBlock(PatchedBlockReader p, Layout l, Action patch)
    {
        patch();
        if (l.Sb.IsV5) p.FixCrc(l.BlockDirBlock, (int)l.Sb.DirBlockSize, 4);
        return ListIt(p, "/block");
    }

    [Fact]
    public void Read_FileClaiming2To60BytesStreamsWithoutAllocating()
    {
        using var file = new FileBlockReader(images.Image("v5", full: false));
        var layout = Layout.Of(XfsFileSystem.Open(file));
        var p = new PatchedBlockReader(file);
        p.U64(layout.HelloInode + 56, 1UL << 60);
        FixInode(p, layout, layout.HelloInode);
        var fs = XfsFileSystem.Open(p);
        var hello = PathResolver.Resolve(fs, "/hello.txt");
        Assert.Equal(1L << 60, hello.SizeInBytes);
        var buf = new byte[64];
        Assert.Equal(64, fs.Read(hello, 0, buf));
        Assert.Equal("hello, xfs\n", System.Text.Encoding.ASCII.GetString(buf, 0, 11));
        buf.AsSpan().Fill(0xAA);
        Assert.Equal(16, fs.Read(hello, (1L << 60) - 16, buf));
        Assert.True(buf.AsSpan(0, 16).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(0, fs.Read(hello, 1L << 60, buf));
    }

    public static TheoryData<string> SweepVariants => ["v5", "v4"];

    /// <summary>Seeded random mutations of the superblock, inodes and directory blocks (v5: crcs recomputed most of the time).</summary>
    [Theory]
    [MemberData(nameof(SweepVariants))]
    public void Open_MutationSweepOnlyThrowsAllowedExceptions(string variant)
    {
        var image = images.Image(variant, full: false);
        string before = Tools.Sha256(image);
        var sw = Stopwatch.StartNew();
        using (var file = new FileBlockReader(image))
        {
            var clean = XfsFileSystem.Open(file);
            var sb = clean.Superblock;
            long Ino(string path) => XfsFileSystem.InodeOf(PathResolver.Resolve(clean, path, followLast: false)).ImageOffset;
            long Block(string path, int i) => (long)(sb.FsbToLinear(XfsFileSystem.ExtentsOf(PathResolver.Resolve(clean, path, followLast: false))[i].StartBlock, 1)!.Value * sb.BlockSize);
            var regions = new List<(long Offset, int Length, int CrcOffset)>
            {
                (0, sb.SectSize, XfsSuperblock.Offsets.sb_crc),
                (Ino("/"), sb.InodeSize, XfsDinode.Offsets.di_crc),
                (Ino("/sf"), sb.InodeSize, XfsDinode.Offsets.di_crc),
                (Ino("/block"), sb.InodeSize, XfsDinode.Offsets.di_crc),
                (Ino("/leaf"), sb.InodeSize, XfsDinode.Offsets.di_crc),
                (Ino("/hello.txt"), sb.InodeSize, XfsDinode.Offsets.di_crc),
                (Ino("/links/remote"), sb.InodeSize, XfsDinode.Offsets.di_crc),
                (Block("/block", 0), (int)sb.DirBlockSize, 4),
                (Block("/leaf", 0), (int)sb.DirBlockSize, 4),
                (Block("/links/remote", 0), (int)sb.BlockSize, 12),
            };
            if (XfsFileSystem.InodeOf(clean.Root).Format != XfsDinodeFormat.Local)
                regions.Add((Block("/", 0), (int)sb.DirBlockSize, 4)); // v4 root is a block directory
            var rng = new Random(1234);
            int failures = 0;
            var unexpected = new List<string>();
            for (int i = 0; i < 300; i++)
            {
                var (off, len, crcOff) = regions[rng.Next(regions.Count)];
                var p = new PatchedBlockReader(file);
                int n = 1 + rng.Next(4);
                for (int k = 0; k < n; k++)
                {
                    long at = off + rng.Next(len);
                    byte old = p.Get(at, 1)[0];
                    p.U8(at, rng.Next(2) == 0 ? (byte)(old ^ (1 << rng.Next(8))) : (byte)rng.Next(256));
                }
                if (sb.IsV5 && rng.Next(4) != 0) p.FixCrc(off, len, crcOff);
                try
                {
                    WalkBounded(XfsFileSystem.Open(p));
                }
                catch (Exception ex) when (ex is MalformedDataException or UnsupportedFeatureException or IOException)
                {
                    failures++;
                }
                catch (Exception ex)
                {
                    unexpected.Add($"iteration {i} region 0x{off:X}: {ex.GetType().Name}: {ex.Message}\n{ex.StackTrace}");
                }
            }
            Assert.Empty(unexpected);
            Assert.True(failures > 0);
        }
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), $"sweep took {sw.Elapsed}");
        Assert.Equal(before, Tools.Sha256(image));
    }

    private static void WalkBounded(XfsFileSystem fs)
    {
        int budget = 3000;
        var buf = new byte[1 << 16];
        void Walk(FsNode dir, int depth)
        {
            if (depth > 12) return;
            fs.Parent(dir);
            // lookups scan the directory, so only the first few names of each directory are looked up
            foreach (var e in fs.ListDirectory(dir).Take(24))
            {
                if (--budget < 0) return;
                var node = fs.Lookup(dir, e.Name);
                if (node is null) continue;
                switch (node.Type)
                {
                    case FsNodeType.Directory: Walk(node, depth + 1); break;
                    case FsNodeType.Symlink: fs.ReadLink(node); break;
                    case FsNodeType.Regular:
                        for (long off = 0; off < Math.Min(node.SizeInBytes, 1 << 18); off += buf.Length) fs.Read(node, off, buf);
                        fs.Read(node, Math.Max(0, node.SizeInBytes - 10), buf);
                        break;
                }
            }
        }
        Walk(fs.Root, 0);
    }
}
