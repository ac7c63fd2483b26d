using System.Buffers.Binary;
using System.Text;
using DomBoot.Storage.Filesystems;
using DomBoot.Storage.Filesystems.Xfs;
using DomBoot.Storage.Images;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Filesystems.Xfs;

/// <summary>
/// Builds the source tree once and XFS images from it with `mkfs.xfs -p protofile` (pinned UUID and label).
/// Images are 64 MiB sparse files with 4 AGs: below mkfs's 300 MB floor, which xfsprogs waives when
/// TEST_DIR, TEST_DEV and QA_CHECK_FS are set (its fstests escape hatch).
/// </summary>
public sealed class XfsTestImages : IDisposable
{
    public const string Uuid = "5f0c1a2b-3d4e-4f60-8172-93a4b5c6d7e8";
    public const int NodeDirEntries = 3000;
    public const int LeafDirEntries = 300;
    public const int BlockDirEntries = 50;
    public static readonly string RemoteLinkTarget = string.Concat(Enumerable.Repeat("remote-symlink-component/", 24)) + "end";

    private readonly TempDir _dir = new("domboot-xfs");
    private readonly Dictionary<string, string> _images = [];
    private readonly Lock _lock = new();

    /// <summary>The full source tree (with the ~3000-entry node directory and the big file).</summary>
    public string FullSource { get; }

    /// <summary>A small tree (short-form, block and leaf directories, symlinks) for malformed-input sweeps.</summary>
    public string SmallSource { get; }

    /// <summary>Variant name to extra mkfs.xfs arguments.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Variants = new Dictionary<string, string[]>
    {
        ["v5"] = ["-m", "crc=1,bigtime=1,inobtcount=1", "-n", "ftype=1"],
        ["v5-nrext64"] = ["-m", "crc=1", "-i", "nrext64=1"],
        ["v5-1k-dirblk8k"] = ["-m", "crc=1", "-b", "size=1024", "-n", "size=8192"],
        ["v4"] = ["-m", "crc=0", "-n", "ftype=0"],
    };

    public XfsTestImages()
    {
        FullSource = Path.Combine(_dir.Path, "full");
        SmallSource = Path.Combine(_dir.Path, "small");
        MakeTree(FullSource, full: true);
        MakeTree(SmallSource, full: false);
    }

    public static string Label(string variant) => variant.Replace("-", "", StringComparison.Ordinal)[..Math.Min(12, variant.Replace("-", "", StringComparison.Ordinal).Length)];

    /// <summary>Path of the image for <paramref name="variant"/> built from the full (or small) tree.</summary>
    public string Image(string variant, bool full = true)
    {
        string key = (full ? "full-" : "small-") + variant;
        lock (_lock)
        {
            if (_images.TryGetValue(key, out var done)) return done;
            var source = full ? FullSource : SmallSource;
            var proto = Path.Combine(_dir.Path, key + ".proto");
            File.WriteAllText(proto, Protofile(source));
            var image = Path.Combine(_dir.Path, key + ".img");
            using (var f = File.Create(image)) f.SetLength(64L << 20);
            var args = new List<string> { "-f", "-q", "-p", proto, "-d", "agcount=4", "-L", Label(variant) };
            args.AddRange(Variants[variant]);
            args[args.IndexOf("-m") + 1] += ",uuid=" + Uuid;
            args.Add(image);
            Tools.Run("mkfs.xfs", args, env: new Dictionary<string, string> { ["TEST_DIR"] = "1", ["TEST_DEV"] = "1", ["QA_CHECK_FS"] = "1" });
            if (variant.StartsWith("v5", StringComparison.Ordinal)) FixRemoteSymlinks(image);
            // the image is consistent as xfs_repair sees it
            Tools.Run("xfs_repair", ["-n", "-f", image]);
            _images[key] = image;
            return image;
        }
    }

    /// <summary>
    /// xfsprogs 6.1's protofile code writes a v5 remote symlink's target without the XSLM block header
    /// (xfs_repair -n reports a crc error and junks the entry); rewrite those blocks as the kernel would.
    /// </summary>
    private static void FixRemoteSymlinks(string image)
    {
        var patches = new List<(long Offset, byte[] Block)>();
        using (var reader = new FileBlockReader(image))
        {
            var fs = XfsFileSystem.Open(reader);
            var sb = new byte[512];
            reader.ReadExactly(0, sb);
            var links = PathResolver.Resolve(fs, "/links");
            foreach (var e in fs.ListDirectory(links).Where(e => e.Type == FsNodeType.Symlink))
            {
                var node = fs.Lookup(links, e.Name)!;
                var inode = XfsFileSystem.InodeOf(node);
                if (inode.Format != XfsDinodeFormat.Extents) continue;
                var ext = XfsFileSystem.ExtentsOf(node);
                Assert.Single(ext);
                ulong linear = fs.Superblock.FsbToLinear(ext[0].StartBlock, 1)!.Value;
                long at = (long)(linear * fs.Superblock.BlockSize);
                var block = new byte[fs.Superblock.BlockSize];
                reader.ReadExactly(at, block);
                var target = block.AsSpan(0, (int)inode.Size).ToArray();
                Array.Clear(block);
                BinaryPrimitives.WriteUInt32BigEndian(block, 0x58534C4D);
                BinaryPrimitives.WriteUInt32BigEndian(block.AsSpan(4), 0);
                BinaryPrimitives.WriteUInt32BigEndian(block.AsSpan(8), (uint)target.Length);
                sb.AsSpan(32, 16).CopyTo(block.AsSpan(16));
                BinaryPrimitives.WriteUInt64BigEndian(block.AsSpan(32), inode.Ino);
                BinaryPrimitives.WriteUInt64BigEndian(block.AsSpan(40), (ulong)at / 512);
                target.CopyTo(block.AsSpan(56));
                BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(12), XfsCrc32c.Compute(block, 12));
                patches.Add((at, block));
            }
        }
        using var f = new FileStream(image, FileMode.Open, FileAccess.Write);
        foreach (var (offset, block) in patches)
        {
            f.Position = offset;
            f.Write(block);
        }
    }

    private static void MakeTree(string root, bool full)
    {
        var rng = new Random(4321);
        Directory.CreateDirectory(root);
        File.WriteAllText(Path.Combine(root, "hello.txt"), "hello, xfs\n");
        File.WriteAllBytes(Path.Combine(root, "empty"), []);
        File.WriteAllBytes(Path.Combine(root, "one"), [0x42]);
        File.WriteAllBytes(Path.Combine(root, "random-100k"), RandomBytes(rng, 100_000));
        File.WriteAllText(Path.Combine(root, "h\u00e9llo-\u00fcn\u00efcode.txt"), "unicode name\n");
        if (full) File.WriteAllBytes(Path.Combine(root, "big-3m"), RandomBytes(rng, 3 << 20));

        var sf = Directory.CreateDirectory(Path.Combine(root, "sf")).FullName;
        File.WriteAllText(Path.Combine(sf, "a"), "a\n");
        File.WriteAllText(Path.Combine(sf, "b"), "bb\n");
        Directory.CreateDirectory(Path.Combine(sf, "sub"));

        MakeDir(Path.Combine(root, "block"), BlockDirEntries, "block-entry-", rng);
        MakeDir(Path.Combine(root, "leaf"), LeafDirEntries, "leaf-directory-entry-with-a-longer-name-", rng);
        if (full) MakeDir(Path.Combine(root, "node"), NodeDirEntries, "node-directory-entry-with-quite-a-long-name-", rng);

        var links = Directory.CreateDirectory(Path.Combine(root, "links")).FullName;
        File.CreateSymbolicLink(Path.Combine(links, "fast"), "../hello.txt");
        File.CreateSymbolicLink(Path.Combine(links, "absolute"), "/sf/a");
        File.CreateSymbolicLink(Path.Combine(links, "dirlink"), "../sf");
        File.CreateSymbolicLink(Path.Combine(links, "dangling"), "no/such/target");
        File.CreateSymbolicLink(Path.Combine(links, "remote"), RemoteLinkTarget);
        File.CreateSymbolicLink(Path.Combine(links, "loop1"), "loop2");
        File.CreateSymbolicLink(Path.Combine(links, "loop2"), "loop1");

        var deep = Directory.CreateDirectory(Path.Combine(root, "deep", "a", "b", "c", "d")).FullName;
        File.WriteAllText(Path.Combine(deep, "file"), "deep\n");
    }

    private static void MakeDir(string dir, int count, string prefix, Random rng)
    {
        Directory.CreateDirectory(dir);
        for (int i = 0; i < count; i++)
            File.WriteAllBytes(Path.Combine(dir, $"{prefix}{i:D5}"), RandomBytes(rng, 1 + rng.Next(64)));
    }

    private static byte[] RandomBytes(Random rng, int n)
    {
        var b = new byte[n];
        rng.NextBytes(b);
        return b;
    }

    /// <summary>mkfs.xfs(8) protofile for <paramref name="source"/>, plus a char device, a block device and a fifo at the root.</summary>
    public static string Protofile(string source)
    {
        var sb = new StringBuilder("domboot-test-image\n0 0\nd--755 0 0\n");
        Emit(sb, source, 1);
        sb.Append("chardev c--644 0 0 1 3\nblockdev b--640 0 6 8 1\nfifo p--600 0 0\n$\n");
        return sb.ToString();
    }

    private static void Emit(StringBuilder sb, string dir, int depth)
    {
        string indent = new(' ', depth * 2);
        foreach (var e in new DirectoryInfo(dir).EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            if (e.LinkTarget is { } target) sb.Append(indent).Append(e.Name).Append(" l--777 0 0 ").Append(target).Append('\n');
            else if (e is DirectoryInfo d)
            {
                sb.Append(indent).Append(d.Name).Append(" d--755 0 0\n");
                Emit(sb, d.FullName, depth + 1);
                sb.Append(indent).Append("$\n");
            }
            else sb.Append(indent).Append(e.Name).Append(" ---644 1000 100 ").Append(e.FullName).Append('\n');
        }
    }

    public void Dispose() => _dir.Dispose();
}
