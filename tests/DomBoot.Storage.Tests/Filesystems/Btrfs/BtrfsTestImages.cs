using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using DomBoot.Formats.Binary;
using DomBoot.Storage.Filesystems;
using DomBoot.Storage.Filesystems.Btrfs;
using DomBoot.Storage.Images;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Filesystems.Btrfs;

/// <summary>
/// Images built once per test run with btrfs-progs 6.2 (Debian 12), which has no `mkfs.btrfs --compress` and no
/// `--subvol`: compressed extents are made by patching real mkfs extents (verified afterwards with `btrfs check
/// --check-data-csum` and `btrfs restore`); the subvolume image comes from `btrfs-convert` (its ext2_saved subvolume).
/// </summary>
public sealed class BtrfsTestImages : IDisposable
{
    public const string Uuid = "b7f5a3c2-1d4e-4f60-8a9b-0c1d2e3f4a5b";
    public const string Label = "domboot-btrfs";
    public const string SingleUuid = "b7f5a3c2-1d4e-4f60-8a9b-0c1d2e3f4a5c";
    public const string ConvertUuid = "b7f5a3c2-1d4e-4f60-8a9b-0c1d2e3f4a5d";
    public const string ExtUuid = "b7f5a3c2-1d4e-4f60-8a9b-0c1d2e3f4a5e";
    public const long ImageSize = 114 * 1024 * 1024;

    private readonly TempDir _dir = new("domboot-btrfs");

    /// <summary>The folder every image is made from.</summary>
    public string Source { get; }

    /// <summary>mkfs.btrfs -r defaults (DUP metadata).</summary>
    public string DefaultImage { get; }

    /// <summary>mkfs.btrfs -r -m single: one copy of each tree block, so single patches take effect.</summary>
    public string SingleImage { get; }

    /// <summary><see cref="SingleImage"/> with zlib/LZO/zstd extents patched in.</summary>
    public string CompressedImage { get; }

    /// <summary>btrfs-convert of an ext4 image: subvolume 256 "ext2_saved" holds "image".</summary>
    public string ConvertedImage { get; }

    /// <summary>The ext4 image as it was before conversion.</summary>
    public string ExtImage { get; }

    /// <summary>Plain contents of the files that <see cref="CompressedImage"/> stores compressed.</summary>
    public IReadOnlyDictionary<string, byte[]> CompressedPlain { get; }

    public BtrfsTestImages()
    {
        Tools.Require("mkfs.btrfs");
        Tools.Require("btrfs");
        Source = _dir.File("src");
        BuildSource(Source);
        DefaultImage = MakeImage("default.img", Uuid, []);
        SingleImage = MakeImage("single.img", SingleUuid, ["-m", "single"]);
        var plain = new Dictionary<string, byte[]>();
        CompressedImage = _dir.File("compressed.img");
        Tools.Run("cp", "--sparse=always", SingleImage, CompressedImage);
        PatchCompressed(CompressedImage, plain);
        CompressedPlain = plain;
        ExtImage = _dir.File("ext.img");
        ConvertedImage = _dir.File("converted.img");
        MakeConverted();
    }

    public void Dispose() => _dir.Dispose();

    public static byte[] CompressibleText(int length, int seed)
    {
        var sb = new StringBuilder();
        var rnd = new Random(seed);
        string[] words = ["btrfs", "extent", "inline", "subvolume", "chunk", "stripe", "leaf", "node", "the", "of", "and"];
        while (sb.Length < length) sb.Append(words[rnd.Next(words.Length)]).Append(rnd.Next(4) == 0 ? '\n' : ' ');
        return Encoding.ASCII.GetBytes(sb.ToString(0, length));
    }

    private static void BuildSource(string src)
    {
        Directory.CreateDirectory(src);
        var rnd = new Random(42);
        File.WriteAllText(Path.Combine(src, "small.txt"), "hello btrfs\n");
        File.WriteAllBytes(Path.Combine(src, "empty"), []);
        var big = new byte[3 * 1024 * 1024 + 123];
        rnd.NextBytes(big);
        File.WriteAllBytes(Path.Combine(src, "big.bin"), big);
        var text = new byte[4097];
        rnd.NextBytes(text);
        File.WriteAllBytes(Path.Combine(src, "text4097.bin"), text);
        using (var h = File.OpenHandle(Path.Combine(src, "sparse.bin"), FileMode.Create, FileAccess.Write))
        {
            var chunk = new byte[8192];
            rnd.NextBytes(chunk);
            RandomAccess.Write(h, chunk, 2 * 1024 * 1024);
            RandomAccess.Write(h, chunk.AsSpan(0, 100), 5 * 1024 * 1024 - 100);
        }
        using (var h = File.OpenHandle(Path.Combine(src, "hole-only"), FileMode.Create, FileAccess.Write))
            RandomAccess.SetLength(h, 1024 * 1024);
        File.CreateSymbolicLink(Path.Combine(src, "link"), "small.txt");
        File.CreateSymbolicLink(Path.Combine(src, "abslink"), "/d/e/deep.txt");
        File.CreateSymbolicLink(Path.Combine(src, "dirlink"), "d/e");
        File.CreateSymbolicLink(Path.Combine(src, "dangling"), "no/such/target");
        Directory.CreateDirectory(Path.Combine(src, "d", "e"));
        File.WriteAllText(Path.Combine(src, "d", "e", "deep.txt"), "deep file\n");
        File.CreateSymbolicLink(Path.Combine(src, "d", "e", "up"), "../../small.txt");
        File.WriteAllText(Path.Combine(src, "grüße.txt"), "utf-8 name\n");
        Directory.CreateDirectory(Path.Combine(src, "many"));
        for (int i = 0; i < 600; i++) File.WriteAllText(Path.Combine(src, "many", $"entry-{i:D4}.txt"), $"entry {i}\n");
        File.WriteAllBytes(Path.Combine(src, "zlib.txt"), CompressibleText(64 * 1024, 1));
        File.WriteAllBytes(Path.Combine(src, "lzo.txt"), CompressibleText(64 * 1024, 2));
        File.WriteAllBytes(Path.Combine(src, "zstd.txt"), CompressibleText(64 * 1024, 3));
        File.WriteAllBytes(Path.Combine(src, "zlib-inline.txt"), CompressibleText(1800, 4));
        File.WriteAllBytes(Path.Combine(src, "lzo-inline.txt"), CompressibleText(1800, 5));
    }

    private string MakeImage(string name, string uuid, string[] extra)
    {
        var img = _dir.File(name);
        using (var h = File.OpenHandle(img, FileMode.Create, FileAccess.Write)) RandomAccess.SetLength(h, ImageSize);
        Tools.Run("mkfs.btrfs", ["-q", "-f", "-r", Source, "-U", uuid, "-L", Label, .. extra, img]);
        return img;
    }

    private void MakeConverted()
    {
        Tools.Require("mkfs.ext4");
        Tools.Require("btrfs-convert");
        var src = _dir.File("extsrc");
        Directory.CreateDirectory(Path.Combine(src, "boot"));
        File.WriteAllText(Path.Combine(src, "boot", "vmlinuz"), "not really a kernel\n");
        File.WriteAllBytes(Path.Combine(src, "data.bin"), CompressibleText(300_000, 9));
        using (var h = File.OpenHandle(ExtImage, FileMode.Create, FileAccess.Write)) RandomAccess.SetLength(h, 100 * 1024 * 1024);
        Tools.Run("mkfs.ext4", "-q", "-F", "-b", "4096", "-L", Label, "-d", src, "-U", ExtUuid, "-E", "hash_seed=" + ExtUuid, ExtImage);
        Tools.Run("cp", "--sparse=always", ExtImage, ConvertedImage);
        // btrfs-convert 6.2 ignores -l; -L copies the ext4 label
        Tools.Run("btrfs-convert", "--no-progress", "--uuid", ConvertUuid, "-L", ConvertedImage);
    }

    // ---- patching compressed extents into a real image ----

    private static void PatchCompressed(string image, Dictionary<string, byte[]> plain)
    {
        var src = Path.GetDirectoryName(image)!;
        using var handle = File.OpenHandle(image, FileMode.Open, FileAccess.ReadWrite);
        var p = new FilePatcher(handle);
        foreach (var (name, compression) in new[] { ("zlib.txt", (byte)1), ("lzo.txt", (byte)2), ("zstd.txt", (byte)3), ("zlib-inline.txt", (byte)1), ("lzo-inline.txt", (byte)2) })
        {
            // reopen after every patch: the reader caches tree blocks
            using var reader = new FileBlockReader(image);
            var fs = BtrfsFileSystem.Open(reader);
            var node = fs.Lookup(fs.Root, name)!;
            var data = new byte[node.SizeInBytes];
            fs.Read(node, 0, data);
            plain[name] = data;
            var items = ExtentItems(fs, node);
            Assert.Single(items);
            var item = items[0];
            var ext = BtrfsFileExtentItem.Parse(item.Data.Span, item.DataImageOffset, item.Key.Offset, item.Data, fs.Superblock.SectorSize);
            byte[] payload = compression switch
            {
                1 => Zlib(data),
                2 => LzoExtent(data, (int)fs.Superblock.SectorSize, src),
                _ => Zstd(data, src),
            };
            if (ext.Type == BtrfsFileExtentItem.TypeInline)
            {
                var newItem = item.Data.ToArray().AsSpan(0, BtrfsFileExtentItem.InlineHeaderSize).ToArray();
                newItem[BtrfsFileExtentItem.Offsets.Compression] = compression;
                p.ReplaceLeafItem(item, [.. newItem, .. payload], (int)fs.Superblock.NodeSize);
            }
            else
            {
                Assert.True(payload.Length <= (int)ext.DiskNumBytes, $"{name}: {payload.Length} compressed bytes do not fit {ext.DiskNumBytes}");
                var onDisk = new byte[ext.DiskNumBytes];
                payload.CopyTo(onDisk, 0);
                p.Write(fs.Reader.PhysicalOf(ext.DiskBytenr, "test", -1), onDisk);
                p.Write(item.DataImageOffset + BtrfsFileExtentItem.Offsets.Compression, [compression]);
                p.FixTreeBlock(item.NodeImageOffset, (int)fs.Superblock.NodeSize);
                p.UpdateDataCsums(fs, ext.DiskBytenr, onDisk);
            }
        }
        // COMPRESS_LZO | COMPRESS_ZSTD, as the kernel sets them on first use
        var sb = p.Read(BtrfsSuperblock.PrimaryOffset, BtrfsSuperblock.Size);
        ulong incompat = BinaryPrimitives.ReadUInt64LittleEndian(sb.AsSpan(BtrfsSuperblock.Offsets.IncompatFlags));
        BinaryPrimitives.WriteUInt64LittleEndian(sb.AsSpan(BtrfsSuperblock.Offsets.IncompatFlags), incompat | 0x8 | 0x10);
        p.Write(BtrfsSuperblock.PrimaryOffset, sb);
        p.FixSuperblock();
    }

    internal static List<BtrfsLeafItem> ExtentItems(BtrfsFileSystem fs, FsNode node)
    {
        var h = (BtrfsInodeHandle)node.Handle!;
        return [.. fs.Reader.Scan(fs.FsTreeRoot(h.TreeId), new BtrfsKey(h.ObjectId, 108, 0), new BtrfsKey(h.ObjectId, 108, ulong.MaxValue))];
    }

    public static byte[] Zlib(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.Optimal, leaveOpen: true)) z.Write(data);
        return ms.ToArray();
    }

    private static byte[] Zstd(byte[] data, string dir)
    {
        var f = Path.Combine(dir, "zstd-in.bin");
        File.WriteAllBytes(f, data);
        Tools.Run("zstd", "-q", "-f", "-19", f, "-o", f + ".zst");
        return File.ReadAllBytes(f + ".zst");
    }

    /// <summary>Compresses each sector with the real lzop (LZO1X-1) and frames the blocks as fs/btrfs/lzo.c does.</summary>
    public static byte[] LzoExtent(byte[] data, int sectorSize, string dir)
    {
        var outBuf = new List<byte>([0, 0, 0, 0]);
        for (int at = 0; at < data.Length; at += sectorSize)
        {
            var block = LzopBlock(data.AsSpan(at, Math.Min(sectorSize, data.Length - at)).ToArray(), dir);
            int left = sectorSize - outBuf.Count % sectorSize;
            if (left < 4) outBuf.AddRange(new byte[left]);
            var len = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)block.Length);
            outBuf.AddRange(len);
            outBuf.AddRange(block);
        }
        var result = outBuf.ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(result, (uint)result.Length);
        return result;
    }

    /// <summary>Runs lzop on <paramref name="data"/> and returns the raw LZO1X block from its container.</summary>
    public static byte[] LzopBlock(byte[] data, string dir)
    {
        var f = Path.Combine(dir, "lzo-in.bin");
        File.WriteAllBytes(f, data);
        Tools.Run("lzop", "-q", "-f", f, "-o", f + ".lzo");
        var z = File.ReadAllBytes(f + ".lzo");
        int pos = 9;
        ushort version = BinaryPrimitives.ReadUInt16BigEndian(z.AsSpan(pos)); pos += 2;
        pos += 2; // lib_version
        if (version >= 0x0940) pos += 2; // version_needed_to_extract
        pos += 1; // method
        if (version >= 0x0940) pos += 1; // level
        uint flags = BinaryPrimitives.ReadUInt32BigEndian(z.AsSpan(pos)); pos += 4;
        if ((flags & 0x800) != 0) pos += 4; // filter
        pos += 4 + 4; // mode, mtime_low
        if (version >= 0x0940) pos += 4; // mtime_high
        pos += 1 + z[pos]; // name
        pos += 4; // header checksum
        if ((flags & 0x40) != 0) pos += 4 + (int)BinaryPrimitives.ReadUInt32BigEndian(z.AsSpan(pos)) + 4;
        uint dstLen = BinaryPrimitives.ReadUInt32BigEndian(z.AsSpan(pos)); pos += 4;
        uint srcLen = BinaryPrimitives.ReadUInt32BigEndian(z.AsSpan(pos)); pos += 4;
        Assert.Equal((uint)data.Length, dstLen);
        Assert.True(srcLen < dstLen, "lzop stored the block uncompressed; use more compressible data");
        if ((flags & 0x1) != 0) pos += 4;
        if ((flags & 0x100) != 0) pos += 4;
        if ((flags & 0x2) != 0) pos += 4;
        if ((flags & 0x200) != 0) pos += 4;
        return z.AsSpan(pos, (int)srcLen).ToArray();
    }
}

/// <summary>Positional writes into an image file, with btrfs checksum fix-ups (tests only; never used on sources).</summary>
internal sealed class FilePatcher(Microsoft.Win32.SafeHandles.SafeFileHandle handle)
{
    public byte[] Read(long offset, int length)
    {
        var b = new byte[length];
        RandomAccess.Read(handle, b, offset);
        return b;
    }

    public void Write(long offset, ReadOnlySpan<byte> data) => RandomAccess.Write(handle, data, offset);

    public void FixTreeBlock(long physical, int nodeSize)
    {
        var b = Read(physical, nodeSize);
        BinaryPrimitives.WriteUInt32LittleEndian(b, BtrfsCrc32C.Compute(b.AsSpan(32)));
        Write(physical, b.AsSpan(0, 4));
    }

    public void FixSuperblock()
    {
        var b = Read(BtrfsSuperblock.PrimaryOffset, BtrfsSuperblock.Size);
        BinaryPrimitives.WriteUInt32LittleEndian(b, BtrfsCrc32C.Compute(b.AsSpan(32)));
        Write(BtrfsSuperblock.PrimaryOffset, b.AsSpan(0, 4));
    }

    /// <summary>Replaces a leaf item's data with a shorter one, moving the later items' data as btrfs_truncate_item does.</summary>
    public void ReplaceLeafItem(BtrfsLeafItem item, byte[] data, int nodeSize)
    {
        var leaf = Read(item.NodeImageOffset, nodeSize);
        int index = (int)((item.ItemImageOffset - item.NodeImageOffset - BtrfsHeader.Size) / BtrfsItem.Size);
        uint nritems = BinaryPrimitives.ReadUInt32LittleEndian(leaf.AsSpan(BtrfsHeader.Offsets.Nritems));
        int Off(int i) => (int)BinaryPrimitives.ReadUInt32LittleEndian(leaf.AsSpan(BtrfsHeader.Size + i * BtrfsItem.Size + BtrfsItem.Offsets.Offset));
        int Size(int i) => (int)BinaryPrimitives.ReadUInt32LittleEndian(leaf.AsSpan(BtrfsHeader.Size + i * BtrfsItem.Size + BtrfsItem.Offsets.Size));
        int oldOff = Off(index), oldSize = Size(index);
        int shrink = oldSize - data.Length;
        Assert.True(shrink >= 0, $"new item data ({data.Length}) is larger than the old ({oldSize})");
        int dataEnd = Off((int)nritems - 1);
        int h = BtrfsHeader.Size;
        Array.Copy(leaf, h + dataEnd, leaf, h + dataEnd + shrink, oldOff - dataEnd);
        Array.Clear(leaf, h + dataEnd, shrink);
        data.CopyTo(leaf, h + oldOff + shrink);
        for (int i = index; i < nritems; i++)
            BinaryPrimitives.WriteUInt32LittleEndian(leaf.AsSpan(h + i * BtrfsItem.Size + BtrfsItem.Offsets.Offset), (uint)(Off(i) + shrink));
        BinaryPrimitives.WriteUInt32LittleEndian(leaf.AsSpan(h + index * BtrfsItem.Size + BtrfsItem.Offsets.Size), (uint)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(leaf, BtrfsCrc32C.Compute(leaf.AsSpan(32)));
        Write(item.NodeImageOffset, leaf);
    }

    /// <summary>Rewrites the csum-tree entries (crc32c per sector) of [bytenr, +data.Length).</summary>
    public void UpdateDataCsums(BtrfsFileSystem fs, ulong bytenr, byte[] data)
    {
        uint sector = fs.Superblock.SectorSize;
        var rootItem = fs.Reader.FindLastAtOrBefore(fs.RootTreeRoot, new BtrfsKey(7, 132, ulong.MaxValue))!.Value;
        var ri = BtrfsRootItem.Parse(rootItem.Data.Span, rootItem.DataImageOffset);
        var csumRoot = new BtrfsTreeRoot(7, ri.Bytenr, ri.Level, -1);
        int done = 0;
        foreach (var it in fs.Reader.Scan(csumRoot, new BtrfsKey(BtrfsObjectId.ExtentCsum, 128, 0), new BtrfsKey(BtrfsObjectId.ExtentCsum, 128, ulong.MaxValue)))
        {
            ulong start = it.Key.Offset;
            int count = it.Data.Length / 4;
            for (int i = 0; i < count; i++)
            {
                ulong s = start + (ulong)i * sector;
                if (s < bytenr || s >= bytenr + (ulong)data.Length) continue;
                var crc = new byte[4];
                BinaryPrimitives.WriteUInt32LittleEndian(crc, BtrfsCrc32C.Compute(data.AsSpan((int)(s - bytenr), (int)sector)));
                Write(it.DataImageOffset + i * 4, crc);
                done++;
            }
            FixTreeBlock(it.NodeImageOffset, (int)fs.Superblock.NodeSize);
        }
        Assert.Equal(data.Length / (int)sector, done);
    }
}

/// <summary>An in-memory overlay over a read-only image: byte patches applied on read, the image itself untouched.</summary>
internal sealed class OverlayBlockReader(IBlockReader inner) : IBlockReader
{
    private readonly Dictionary<long, byte> _patch = [];
    public long? LengthOverride { get; set; }

    public long Length => LengthOverride ?? inner.Length;

    public void Set(long offset, ReadOnlySpan<byte> bytes)
    {
        for (int i = 0; i < bytes.Length; i++) _patch[offset + i] = bytes[i];
    }

    public byte[] Get(long offset, int length)
    {
        var b = new byte[length];
        ReadExactly(offset, b);
        return b;
    }

    public void SetU32(long offset, uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); Set(offset, b); }
    public void SetU64(long offset, ulong v) { var b = new byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); Set(offset, b); }

    /// <summary>Recomputes the crc32c at <paramref name="offset"/> over [offset+32, offset+size).</summary>
    public void FixCsum(long offset, int size)
    {
        var b = Get(offset, size);
        SetU32(offset, BtrfsCrc32C.Compute(b.AsSpan(32)));
    }

    public void ReadExactly(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset > Length || destination.Length > Length - offset)
            throw new DomBoot.Formats.Errors.TruncatedDataException("overlay", offset, destination.Length, Length - offset);
        inner.ReadExactly(offset, destination);
        if (_patch.Count == 0) return;
        foreach (var (at, v) in _patch)
            if (at >= offset && at < offset + destination.Length) destination[(int)(at - offset)] = v;
    }
}
