using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;
using DomBoot.Storage.Filesystems;
using DomBoot.Storage.Filesystems.Ext;
using DomBoot.Storage.Images;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Filesystems.Ext;

public sealed partial class ExtFileSystemTests
{
    private const int Sb = 1024;

    /// <summary>Where things live in the small ext4 image (1 KiB blocks, 64bit, metadata_csum).</summary>
    private sealed record Layout(long RootInode, long BigInode, long FragInode, long TargetEntry, long FragLeafBlock, long Gd0);

    private static string MalformedBase => ExtTestImages.SmallImage("ext4-1k", "-t", "ext4", "-b", "1024");

    private static readonly Lazy<Layout> BaseLayout = new(() =>
    {
        var bytes = File.ReadAllBytes(MalformedBase);
        var fs = ExtFileSystem.Open(new MemoryBlockReader(bytes));
        long InodeOf(FsNode n) => ((ExtFileSystem.ExtNode)n.Handle!).Inode.ImageOffset;
        var big = fs.Lookup(fs.Root, "big.bin")!;
        var frag = fs.Lookup(fs.Root, "frag.bin")!;
        long fragInode = InodeOf(frag);
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan((int)fragInode + 0x28 + 6))); // depth 1
        var name = "target-file.txt"u8.ToArray();
        int at = bytes.AsSpan().IndexOf(name);
        Assert.True(at > 0 && bytes.AsSpan(at + 1).IndexOf(name) < 0, "the entry name must occur once");
        return new Layout(InodeOf(fs.Root), InodeOf(big), fragInode, at - 8,
            BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)fragInode + 0x28 + 12 + 4)), 2 * 1024);
    });

    private static void U16(byte[] b, long at, int v) => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan((int)at), (ushort)v);
    private static void U32(byte[] b, long at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan((int)at), v);
    private static uint ReadU32(byte[] b, long at) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan((int)at));

    /// <summary>Recomputes s_checksum so a superblock patch is judged on its own merits, not on the checksum.</summary>
    private static void FixSuperblockChecksum(byte[] b) => U32(b, Sb + 0x3FC, Crc32c.Update(uint.MaxValue, b.AsSpan(Sb, 0x3FC)));

    private static void SetIncompat(byte[] b, uint bit)
    {
        U32(b, Sb + 0x60, ReadU32(b, Sb + 0x60) | bit);
        FixSuperblockChecksum(b);
    }

    private static void Lookup(IBlockReader v, string name) => ExtFileSystem.Open(v).Lookup(ExtFileSystem.Open(v).Root, name);

    private static void ReadAll(IBlockReader v, string path)
    {
        var fs = ExtFileSystem.Open(v);
        var node = PathResolver.Resolve(fs, path);
        var buf = new byte[65536];
        for (long off = 0; fs.Read(node, off, buf) is int n && n > 0; off += n) { }
    }

    /// <summary>One malformed case: patch the image, say what must be thrown where, and how to reach it.</summary>
    private sealed record Case(Type Exception, Func<byte[], Layout, long> Patch, Action<IBlockReader> Act, string? Message = null);

    private static readonly Dictionary<string, Case> Cases = new()
    {
        ["bad magic"] = new(typeof(MalformedDataException), (b, _) => { U16(b, Sb + 0x38, 0x1234); return Sb + 0x38; }, v => ExtFileSystem.Open(v)),
        ["log_block_size absurd"] = new(typeof(MalformedDataException), (b, _) => { U32(b, Sb + 0x18, 20); FixSuperblockChecksum(b); return Sb + 0x18; }, v => ExtFileSystem.Open(v)),
        ["inodes_count zero"] = new(typeof(MalformedDataException), (b, _) => { U32(b, Sb + 0x0, 0); FixSuperblockChecksum(b); return Sb; }, v => ExtFileSystem.Open(v)),
        ["blocks_count past the volume"] = new(typeof(MalformedDataException), (b, _) => { U32(b, Sb + 0x4, ReadU32(b, Sb + 0x4) + 8192); U32(b, Sb + 0x0, ReadU32(b, Sb + 0x28) * 2); FixSuperblockChecksum(b); return Sb + 0x4; }, v => ExtFileSystem.Open(v)),
        ["inode_size not a power of two"] = new(typeof(MalformedDataException), (b, _) => { U16(b, Sb + 0x58, 300); FixSuperblockChecksum(b); return Sb + 0x58; }, v => ExtFileSystem.Open(v)),
        ["superblock checksum"] = new(typeof(MalformedDataException), (b, _) => { b[Sb + 0x78] ^= 1; return Sb + 0x3FC; }, v => ExtFileSystem.Open(v)),
        ["incompat encrypt"] = new(typeof(UnsupportedFeatureException), (b, _) => { SetIncompat(b, 0x10000); return -1; }, v => ExtFileSystem.Open(v),
            "ext4 superblock at offset 0x400: incompatible feature 0x10000 (encrypt) is not supported"),
        ["incompat casefold"] = new(typeof(UnsupportedFeatureException), (b, _) => { SetIncompat(b, 0x20000); return -1; }, v => ExtFileSystem.Open(v),
            "ext4 superblock at offset 0x400: incompatible feature 0x20000 (casefold) is not supported"),
        ["incompat journal_dev"] = new(typeof(UnsupportedFeatureException), (b, _) => { SetIncompat(b, 0x8); return -1; }, v => ExtFileSystem.Open(v),
            "ext4 superblock at offset 0x400: incompatible feature 0x8 (journal_dev) is not supported"),
        ["incompat compression"] = new(typeof(UnsupportedFeatureException), (b, _) => { SetIncompat(b, 0x1); return -1; }, v => ExtFileSystem.Open(v),
            "ext4 superblock at offset 0x400: incompatible feature 0x1 (compression) is not supported"),
        ["incompat unknown bit"] = new(typeof(UnsupportedFeatureException), (b, _) => { SetIncompat(b, 0x80000000); return -1; }, v => ExtFileSystem.Open(v),
            "ext4 superblock at offset 0x400: incompatible feature 0x80000000 (unknown) is not supported"),
        ["truncated volume"] = new(typeof(TruncatedDataException), (b, _) => Sb, v => ExtFileSystem.Open(new Truncated(v, 1500))),
        ["inode table past the volume"] = new(typeof(MalformedDataException), (b, l) => { U32(b, l.Gd0 + 0x8, 0x0FFFFFFF); return l.Gd0 + 0x8; }, v => ExtFileSystem.Open(v)),
        ["root inode not a directory"] = new(typeof(MalformedDataException), (b, l) => { U16(b, l.RootInode, 0x81A4); return l.RootInode; }, v => ExtFileSystem.Open(v)),
        ["inode number out of range"] = new(typeof(MalformedDataException), (b, l) => { U32(b, l.TargetEntry, 0x7FFFFFF0); return l.TargetEntry; }, v => Lookup(v, "target-file.txt")),
        ["inode number out of range (listing)"] = new(typeof(MalformedDataException), (b, l) => { U32(b, l.TargetEntry, 0x7FFFFFF0); return l.TargetEntry; }, v => ExtFileSystem.Open(v).ListDirectory(ExtFileSystem.Open(v).Root)),
        ["dir entry rec_len 0"] = new(typeof(MalformedDataException), (b, l) => { U16(b, l.TargetEntry + 4, 0); return l.TargetEntry + 4; }, v => Lookup(v, "target-file.txt")),
        ["dir entry rec_len overruns the block"] = new(typeof(MalformedDataException), (b, l) => { U16(b, l.TargetEntry + 4, 0x7FFC); return l.TargetEntry + 4; }, v => Lookup(v, "target-file.txt")),
        ["dir entry rec_len not 4-aligned"] = new(typeof(MalformedDataException), (b, l) => { U16(b, l.TargetEntry + 4, 26); return l.TargetEntry + 4; }, v => Lookup(v, "target-file.txt")),
        ["dir entry name_len over rec_len - 8"] = new(typeof(MalformedDataException), (b, l) => { U16(b, l.TargetEntry + 4, 12); return l.TargetEntry + 6; }, v => Lookup(v, "target-file.txt")),
        ["unused inode referenced"] = new(typeof(MalformedDataException), (b, l) => { U16(b, l.BigInode + 0x1A, 0); return l.BigInode; }, v => Lookup(v, "big.bin")),
        ["file claiming 2^60 bytes"] = new(typeof(MalformedDataException), (b, l) => { U32(b, l.BigInode + 0x6C, 1u << 28); return l.BigInode + 0x6C; }, v => Lookup(v, "big.bin")),
        ["i_extra_isize not 4-aligned"] = new(typeof(MalformedDataException), (b, l) => { U16(b, l.BigInode + 0x80, 30); return l.BigInode + 0x80; }, v => Lookup(v, "big.bin")),
        ["extent pointing past the volume"] = new(typeof(MalformedDataException), (b, l) => { U32(b, l.BigInode + 0x28 + 12 + 8, 0x00FFFFFF); return l.BigInode + 0x28 + 12; }, v => ReadAll(v, "/big.bin")),
        ["extent header bad magic"] = new(typeof(MalformedDataException), (b, l) => { U16(b, l.BigInode + 0x28, 0xF30B); return l.BigInode + 0x28; }, v => ReadAll(v, "/big.bin")),
        ["extent eh_entries above eh_max"] = new(typeof(MalformedDataException), (b, l) => { U16(b, l.FragInode + 0x28 + 2, 5); return l.FragInode + 0x28 + 2; }, v => ReadAll(v, "/frag.bin")),
        ["extent tree too deep"] = new(typeof(MalformedDataException), (b, l) => { U16(b, l.FragInode + 0x28 + 6, 6); return l.FragInode + 0x28 + 6; }, v => ReadAll(v, "/frag.bin")),
        ["extent child depth mismatch"] = new(typeof(MalformedDataException), (b, l) =>
        {
            U16(b, l.FragLeafBlock * 1024 + 6, 1);
            return l.FragLeafBlock * 1024 + 6;
        }, v => ReadAll(v, "/frag.bin")),
        ["extent tree cycle"] = new(typeof(MalformedDataException), (b, l) =>
        {
            long leaf = l.FragLeafBlock * 1024;
            U16(b, l.FragInode + 0x28 + 6, 2); // root claims depth 2
            U16(b, leaf + 2, 1); // the leaf becomes an index node of depth 1 whose only child is itself
            U16(b, leaf + 6, 1);
            U32(b, leaf + 12, 0);
            U32(b, leaf + 16, (uint)l.FragLeafBlock);
            U16(b, leaf + 20, 0);
            return leaf + 12;
        }, v => ReadAll(v, "/frag.bin")),
        ["symlink loop"] = new(typeof(MalformedDataException), (b, _) => -1, v => PathResolver.Resolve(ExtFileSystem.Open(v), "/loopa")),
    };

    public static TheoryData<string> MalformedCases => new(Cases.Keys);

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void Open_RejectsMalformed(string name)
    {
        var c = Cases[name];
        var bytes = File.ReadAllBytes(MalformedBase);
        long offset = c.Patch(bytes, BaseLayout.Value);
        var ex = Assert.ThrowsAny<Exception>(() => c.Act(new MemoryBlockReader(bytes)));
        Assert.True(ex.GetType() == c.Exception, $"{name}: expected {c.Exception.Name}, got {ex.GetType().Name}: {ex.Message}");
        if (ex is MalformedDataException m) Assert.True(offset == m.Offset, $"{name}: expected offset 0x{offset:X}, got 0x{m.Offset:X}: {m.Message}");
        if (c.Message is not null) Assert.Equal(c.Message, ex.Message);
    }

    [Fact]
    public void HasMagic_ChecksTheSuperblockMagic()
    {
        var bytes = File.ReadAllBytes(MalformedBase).AsSpan(0, 4096).ToArray();
        Assert.True(ExtFileSystem.HasMagic(bytes));
        Assert.False(ExtFileSystem.HasMagic(bytes.AsSpan(0, 1024 + 0x39)));
        bytes[Sb + 0x38] = 0;
        Assert.False(ExtFileSystem.HasMagic(bytes));
    }

    [Fact]
    public void Crc32c_MatchesTheCheckValue() => Assert.Equal(0xE3069283u, Crc32c.Compute("123456789"u8));

    /// <summary>A view of a volume cut short at <paramref name="length"/> bytes.</summary>
    private sealed class Truncated(IBlockReader inner, long length) : IBlockReader
    {
        public long Length => length;

        public void ReadExactly(long offset, Span<byte> destination)
        {
            if (offset < 0 || offset > length || destination.Length > length - offset)
                throw new TruncatedDataException("volume", offset, destination.Length, length - offset);
            inner.ReadExactly(offset, destination);
        }
    }

    // ------------------------------------------------------------------------------------------ mutation sweep

    public static TheoryData<string> SweepImages => new("ext4-1k-nocsum", "ext4-1k-inline", "ext2-1k");

    private static string SweepImage(string name) => name switch
    {
        "ext4-1k-nocsum" => ExtTestImages.SmallImage(name, "-t", "ext4", "-b", "1024", "-O", "^metadata_csum"),
        "ext4-1k-inline" => ExtTestImages.SmallImage(name, "-t", "ext4", "-b", "1024", "-O", "inline_data,^metadata_csum"),
        _ => ExtTestImages.SmallImage(name, "-t", "ext2", "-b", "1024"),
    };

    [Theory]
    [MemberData(nameof(SweepImages))]
    public void MutationSweep_OnlyAllowedExceptionsEscape(string name)
    {
        var path = SweepImage(name);
        var before = Tools.Sha256(path);
        var pristine = File.ReadAllBytes(path);

        // Regions: superblock, the first group descriptor block, the first 32 inodes, and the root directory block.
        long inodeTable = BinaryPrimitives.ReadUInt32LittleEndian(pristine.AsSpan(2048 + 8)) * 1024L;
        int inodeSize = BinaryPrimitives.ReadUInt16LittleEndian(pristine.AsSpan(Sb + 0x58));
        int rootDirAt = pristine.AsSpan().IndexOf("target-file.txt"u8) / 1024 * 1024;
        Assert.True(rootDirAt > 0);
        (string Name, int Start, int Length)[] regions =
        [
            ("superblock", Sb, 1024),
            ("group descriptors", 2048, 1024),
            ("inode table", (int)inodeTable, 32 * inodeSize),
            ("root directory block", rootDirAt, 1024),
        ];

        var bytes = (byte[])pristine.Clone();
        var rng = new Random(1234);
        var failures = new List<string>();
        int thrown = 0;
        const int perRegion = 250;
        foreach (var region in regions)
        {
            for (int i = 0; i < perRegion; i++)
            {
                int flips = 1 + rng.Next(3);
                var positions = new int[flips];
                for (int k = 0; k < flips; k++)
                {
                    positions[k] = region.Start + rng.Next(region.Length);
                    bytes[positions[k]] ^= (byte)(1 << rng.Next(8));
                }
                long allocated = GC.GetAllocatedBytesForCurrentThread();
                var clock = Stopwatch.StartNew();
                try
                {
                    BoundedWalk(ExtFileSystem.Open(new MemoryBlockReader(bytes)));
                }
                catch (Exception ex) when (ex is MalformedDataException or UnsupportedFeatureException or IOException or OperationCanceledException)
                {
                    thrown++;
                }
                catch (Exception ex)
                {
                    failures.Add($"{region.Name} #{i} flips at {string.Join(",", positions.Select(p => "0x" + p.ToString("X", System.Globalization.CultureInfo.InvariantCulture)))}: {ex.GetType().Name}: {ex.Message}\n{ex.StackTrace}");
                }
                long used = GC.GetAllocatedBytesForCurrentThread() - allocated;
                Assert.True(used < 256L << 20, $"{region.Name} #{i}: the walk allocated {used} bytes");
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"{region.Name} #{i}: the walk took {clock.Elapsed}");
                Array.Copy(pristine, bytes, bytes.Length);
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n\n", failures.Take(5)));
        Assert.True(thrown > 0, "no mutation was detected at all");

        // The reader never writes: walking the real file leaves it byte-for-byte unchanged.
        using (var volume = new FileBlockReader(path)) BoundedWalk(ExtFileSystem.Open(volume));
        Assert.Equal(before, Tools.Sha256(path));
    }

    [Fact]
    public void MutationSweep_HtreeIndexBlocks()
    {
        // Bit flips over the dx_root and the first leaf of an indexed directory: lookups go through the hash tree
        // and fall back to the linear scan; only the allowed exceptions may escape.
        var path = ExtTestImages.HtreeImage("half_md4");
        var pristine = File.ReadAllBytes(path);
        long RootBlock(int logical) => long.Parse(Tools.Run("debugfs", "-R", $"bmap /names {logical}", path).Stdout.Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 4096;
        long dxRoot = RootBlock(0), leaf = RootBlock(1);
        var fs0 = ExtFileSystem.Open(new MemoryBlockReader(pristine));
        var names = fs0.ListDirectory(PathResolver.Resolve(fs0, "/names")).Select(e => e.Name).Where((_, i) => i % 50 == 0).ToArray();
        var bytes = (byte[])pristine.Clone();
        var rng = new Random(1234);
        var failures = new List<string>();
        for (int i = 0; i < 300; i++)
        {
            long region = i % 2 == 0 ? dxRoot : leaf;
            int at = (int)region + rng.Next(i % 2 == 0 ? 256 : 4096);
            bytes[at] ^= (byte)(1 << rng.Next(8));
            try
            {
                var fs = ExtFileSystem.Open(new MemoryBlockReader(bytes));
                var dir = PathResolver.Resolve(fs, "/names");
                foreach (var name in names) _ = fs.Lookup(dir, name);
                _ = fs.Lookup(dir, "absent-name");
                _ = fs.ListDirectory(dir);
            }
            catch (Exception ex) when (ex is MalformedDataException or UnsupportedFeatureException or IOException) { }
            catch (Exception ex)
            {
                failures.Add($"#{i} flip at 0x{at:X}: {ex.GetType().Name}: {ex.Message}\n{ex.StackTrace}");
            }
            Array.Copy(pristine, bytes, bytes.Length);
        }
        Assert.True(failures.Count == 0, string.Join("\n\n", failures.Take(5)));
    }

    /// <summary>Visits every reachable node once (bounded count and depth), reads up to 256 KiB of each file.</summary>
    private static void BoundedWalk(ExtFileSystem fs)
    {
        var seen = new HashSet<ulong> { fs.Root.Id };
        var pending = new Stack<(FsNode Node, int Depth)>();
        pending.Push((fs.Root, 0));
        var buffer = new byte[64 * 1024];
        int nodes = 0;
        while (pending.Count > 0 && nodes < 10_000)
        {
            var (dir, depth) = pending.Pop();
            fs.Parent(dir);
            foreach (var entry in fs.ListDirectory(dir))
            {
                if (++nodes >= 10_000) break;
                var node = fs.Lookup(dir, entry.Name);
                if (node is null) continue;
                switch (node.Type)
                {
                    case FsNodeType.Directory when depth < 16 && seen.Add(node.Id):
                        pending.Push((node, depth + 1));
                        break;
                    case FsNodeType.Symlink:
                        _ = fs.ReadLink(node);
                        break;
                    case FsNodeType.Regular:
                        for (long off = 0; off < 256 * 1024 && fs.Read(node, off, buffer) is int n && n > 0; off += n) { }
                        break;
                }
            }
        }
        _ = PathResolver.TryResolve(fs, "/link1");
        _ = PathResolver.TryResolve(fs, "/dir/up");
        _ = Encoding.UTF8.GetByteCount(fs.Label ?? "");
    }
}
