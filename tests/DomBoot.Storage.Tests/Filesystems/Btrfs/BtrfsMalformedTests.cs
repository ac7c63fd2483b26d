using System.Diagnostics;
using DomBoot.Formats.Errors;
using DomBoot.Storage.Filesystems;
using DomBoot.Storage.Filesystems.Btrfs;
using DomBoot.Storage.Images;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Filesystems.Btrfs;

/// <summary>Malformed-input table and mutation sweep over the single-metadata image, through an in-memory overlay.</summary>
[Collection("btrfs images")]
public sealed class BtrfsMalformedTests(BtrfsTestImages images)
{
    private const long Sb = BtrfsSuperblock.PrimaryOffset;

    /// <summary>Where the structures the table mutates live in <see cref="BtrfsTestImages.SingleImage"/>.</summary>
    private sealed record Layout(int NodeSize, long ChunkRoot, long RootTree, long FsRoot, ulong FsRootLogical, BtrfsLeafItem BigExtent,
        BtrfsLeafItem RootDirIndex, BtrfsLeafItem DataChunk);

    private static Layout Locate(BtrfsFileSystem fs)
    {
        var sb = fs.Superblock;
        var fsRoot = fs.FsTreeRoot(5);
        Assert.True(fsRoot.Level >= 1);
        var big = fs.Lookup(fs.Root, "big.bin")!;
        var chunkRoot = new BtrfsTreeRoot(3, sb.ChunkRoot, sb.ChunkRootLevel, -1);
        var dataChunk = fs.Reader.Scan(chunkRoot, new BtrfsKey(256, 228, 0), new BtrfsKey(256, 228, ulong.MaxValue))
            .First(i => (BtrfsChunk.Parse(i.Data.Span, i.DataImageOffset, i.Key.Offset, out _).Type & 1) != 0);
        var dirIndex = fs.Reader.Scan(fsRoot, new BtrfsKey(256, 96, 0), new BtrfsKey(256, 96, ulong.MaxValue)).First();
        return new Layout((int)sb.NodeSize, fs.Reader.PhysicalOf(sb.ChunkRoot, "t", -1), fs.Reader.PhysicalOf(sb.Root, "t", -1),
            fs.Reader.PhysicalOf(fsRoot.Bytenr, "t", -1), fsRoot.Bytenr, BtrfsTestImages.ExtentItems(fs, big)[0], dirIndex, dataChunk);
    }

    public static TheoryData<string> Cases => new()
    {
        "bad magic", "superblock csum", "sectorsize absurd", "nodesize zero", "nodesize not a power of two", "sys_chunk_array_size overrun",
        "sys chunk num_stripes overrun", "root_level too deep", "csum type sha256", "unknown incompat bit", "chunk root unmapped",
        "key pointer to unmapped logical", "tree cycle", "node level too deep", "child level mismatch", "nritems overrun",
        "item offset past leaf", "tree block csum", "file extent claims 2^60 bytes", "compression type unknown",
        "extent on unmapped logical", "data chunk RAID5", "volume truncated", "dir item name_len zero",
    };

    /// <summary>Applies case <paramref name="name"/>; returns the exception type and offset (-1: none) it must cause.</summary>
    private static (Type Type, long Offset) Apply(string name, OverlayBlockReader o, Layout l)
    {
        int h = BtrfsHeader.Size;
        long ptr1 = l.FsRoot + h + BtrfsKeyPtr.Size + BtrfsKeyPtr.Offsets.Blockptr;
        long ext = l.BigExtent.DataImageOffset;
        void FixSb() => o.FixCsum(Sb, BtrfsSuperblock.Size);
        void Fix(long node) => o.FixCsum(node, l.NodeSize);
        switch (name)
        {
            case "bad magic": o.Set(Sb + 0x40, "_BHRfS_X"u8); return (typeof(MalformedDataException), Sb + 0x40);
            case "superblock csum": o.Set(Sb + 0x12B, "x"u8); return (typeof(MalformedDataException), Sb);
            case "sectorsize absurd": o.SetU32(Sb + 0x90, 1 << 20); FixSb(); return (typeof(MalformedDataException), Sb + 0x90);
            case "nodesize zero": o.SetU32(Sb + 0x94, 0); FixSb(); return (typeof(MalformedDataException), Sb + 0x94);
            case "nodesize not a power of two": o.SetU32(Sb + 0x94, 12288); FixSb(); return (typeof(MalformedDataException), Sb + 0x94);
            case "sys_chunk_array_size overrun": o.SetU32(Sb + 0xA0, 2049); FixSb(); return (typeof(MalformedDataException), Sb + 0xA0);
            case "sys chunk num_stripes overrun":
                o.Set(Sb + 0x32B + 17 + 0x2C, [60, 0]); FixSb();
                return (typeof(TruncatedDataException), Sb + 0x32B + 17);
            case "root_level too deep": o.Set(Sb + 0xC6, [8]); FixSb(); return (typeof(MalformedDataException), Sb + 0xC6);
            case "csum type sha256": o.Set(Sb + 0xC4, [2, 0]); FixSb(); return (typeof(UnsupportedFeatureException), -1);
            case "unknown incompat bit": o.Set(Sb + 0xBC + 5, [1]); FixSb(); return (typeof(UnsupportedFeatureException), -1);
            case "chunk root unmapped": o.SetU64(Sb + 0x58, 0x7000_0000_0000); FixSb(); return (typeof(MalformedDataException), Sb + 0x58);
            case "key pointer to unmapped logical": o.SetU64(ptr1, 0x7000_0000_0000); Fix(l.FsRoot); return (typeof(MalformedDataException), ptr1);
            case "tree cycle": o.SetU64(ptr1, l.FsRootLogical); Fix(l.FsRoot); return (typeof(MalformedDataException), ptr1);
            case "node level too deep": o.Set(l.FsRoot + 0x64, [9]); Fix(l.FsRoot); return (typeof(MalformedDataException), l.FsRoot + 0x64);
            case "child level mismatch":
                // the root block claims one level more than its ROOT_ITEM records
                o.Set(l.FsRoot + 0x64, [2]); Fix(l.FsRoot);
                return (typeof(MalformedDataException), l.FsRoot + 0x64);
            case "nritems overrun":
                o.SetU32(l.BigExtent.NodeImageOffset + 0x60, 10000); Fix(l.BigExtent.NodeImageOffset);
                return (typeof(MalformedDataException), l.BigExtent.NodeImageOffset + 0x60);
            case "item offset past leaf":
                o.SetU32(l.BigExtent.ItemImageOffset + BtrfsItem.Offsets.Offset, 20000); Fix(l.BigExtent.NodeImageOffset);
                return (typeof(MalformedDataException), l.BigExtent.ItemImageOffset + BtrfsItem.Offsets.Offset);
            case "tree block csum": o.Set(ext + 1, [0x55]); return (typeof(MalformedDataException), l.BigExtent.NodeImageOffset);
            case "file extent claims 2^60 bytes":
                o.SetU64(ext + BtrfsFileExtentItem.Offsets.NumBytes, 1UL << 60); Fix(l.BigExtent.NodeImageOffset);
                return (typeof(MalformedDataException), ext + BtrfsFileExtentItem.Offsets.NumBytes);
            case "compression type unknown":
                o.Set(ext + BtrfsFileExtentItem.Offsets.Compression, [7]); Fix(l.BigExtent.NodeImageOffset);
                return (typeof(MalformedDataException), ext + BtrfsFileExtentItem.Offsets.Compression);
            case "extent on unmapped logical":
                o.SetU64(ext + BtrfsFileExtentItem.Offsets.DiskBytenr, 0x7000_0000_0000); Fix(l.BigExtent.NodeImageOffset);
                return (typeof(MalformedDataException), ext + BtrfsFileExtentItem.Offsets.DiskBytenr);
            case "data chunk RAID5":
                o.SetU64(l.DataChunk.DataImageOffset + BtrfsChunk.Offsets.Type, 1 | BtrfsChunk.BlockGroup.Raid5); Fix(l.DataChunk.NodeImageOffset);
                return (typeof(UnsupportedFeatureException), -1);
            case "volume truncated": o.LengthOverride = 0x10800; return (typeof(TruncatedDataException), Sb);
            case "dir item name_len zero":
                o.Set(l.RootDirIndex.DataImageOffset + BtrfsDirItem.Offsets.NameLen, [0, 0]); Fix(l.RootDirIndex.NodeImageOffset);
                return (typeof(MalformedDataException), l.RootDirIndex.DataImageOffset + BtrfsDirItem.Offsets.NameLen);
            default: throw new ArgumentException(name, nameof(name));
        }
    }

    /// <summary>Opens and walks everything (bounded): lists every directory, reads the head and tail of every file and link.</summary>
    internal static int Walk(IFileSystem fs, int budget = 5000)
    {
        var buf = new byte[65536];
        var queue = new Queue<FsNode>([fs.Root]);
        int seen = 0;
        while (queue.Count > 0 && seen < budget)
        {
            var dir = queue.Dequeue();
            fs.Parent(dir);
            foreach (var e in fs.ListDirectory(dir))
            {
                if (++seen >= budget) break;
                var n = fs.Lookup(dir, e.Name);
                if (n is null) continue;
                if (n.Type == FsNodeType.Directory) queue.Enqueue(n);
                else if (n.Type == FsNodeType.Symlink) fs.ReadLink(n);
                else if (n.Type == FsNodeType.Regular)
                {
                    fs.Read(n, 0, buf);
                    if (n.SizeInBytes > buf.Length) fs.Read(n, n.SizeInBytes - 5000, buf);
                }
            }
        }
        return seen;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Open_RejectsMalformedImage(string name)
    {
        using var file = new FileBlockReader(images.SingleImage);
        var layout = Locate(BtrfsFileSystem.Open(file));
        var o = new OverlayBlockReader(file);
        var (type, offset) = Apply(name, o, layout);
        var ex = Assert.Throws(type, () => Walk(BtrfsFileSystem.Open(o)));
        if (offset >= 0) Assert.Equal(offset, ((MalformedDataException)ex).Offset);
        if (name == "tree cycle") Assert.Contains("cycle", ex.Message, StringComparison.Ordinal);
        if (name == "data chunk RAID5") Assert.Contains("RAID5", ex.Message, StringComparison.Ordinal);
        if (name == "csum type sha256") Assert.Contains("sha256", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_AcceptsUnmutatedOverlay()
    {
        using var file = new FileBlockReader(images.SingleImage);
        Assert.True(Walk(BtrfsFileSystem.Open(new OverlayBlockReader(file))) > 600);
    }

    private static bool Allowed(Exception e) =>
        e is MalformedDataException or UnsupportedFeatureException or IOException or OperationCanceledException;

    [Fact]
    public void MutationSweep_OnlyAllowedExceptionsEscape()
    {
        string before = Tools.Sha256(images.SingleImage);
        using (var file = new FileBlockReader(images.SingleImage))
        {
            var layout = Locate(BtrfsFileSystem.Open(file));
            var regions = new (string Name, long Offset, int Size)[]
            {
                ("superblock", Sb, BtrfsSuperblock.Size),
                ("chunk tree", layout.ChunkRoot, layout.NodeSize),
                ("root tree", layout.RootTree, layout.NodeSize),
                ("fs tree root", layout.FsRoot, layout.NodeSize),
                ("fs tree leaf", layout.BigExtent.NodeImageOffset, layout.NodeSize),
            };
            var rnd = new Random(1234);
            var sw = Stopwatch.StartNew();
            int failures = 0, iterations = 0;
            foreach (var (region, start, size) in regions)
            {
                for (int i = 0; i < 40; i++, iterations++)
                {
                    var o = new OverlayBlockReader(file);
                    int flips = rnd.Next(1, 4);
                    // most mutations land in the header and item table, where the parser makes decisions
                    for (int k = 0; k < flips; k++)
                    {
                        int at = rnd.Next(2) == 0 ? rnd.Next(32, Math.Min(size, 1024)) : rnd.Next(32, size);
                        var b = o.Get(start + at, 1);
                        b[0] = rnd.Next(2) == 0 ? (byte)(b[0] ^ (1 << rnd.Next(8))) : (byte)rnd.Next(256);
                        o.Set(start + at, b);
                    }
                    if (rnd.Next(4) != 0) o.FixCsum(start, size);
                    try { Walk(BtrfsFileSystem.Open(o), 800); }
                    catch (Exception e) when (Allowed(e)) { failures++; }
                }
            }
            foreach (long len in new long[] { 0, Sb, Sb + 0x800, layout.ChunkRoot + 100, layout.FsRoot + 5, layout.RootTree })
            {
                var o = new OverlayBlockReader(file) { LengthOverride = len };
                var ex = Record.Exception(() => Walk(BtrfsFileSystem.Open(o), 800));
                Assert.True(ex is MalformedDataException, $"truncation at {len}: {ex}");
            }
            Assert.True(failures > iterations / 4, $"only {failures} of {iterations} mutations were rejected");
            Assert.True(sw.Elapsed < TimeSpan.FromMinutes(1), $"sweep took {sw.Elapsed}");
        }
        Assert.Equal(before, Tools.Sha256(images.SingleImage));
    }
}
