using System.Security.Cryptography;
using System.Text;
using DomBoot.Formats.Errors;
using DomBoot.Storage.Filesystems;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Filesystems;

/// <summary>Shared by the FAT and ISO9660 tests: source trees, whole-tree snapshots and the bounded hostile walk.</summary>
internal static class FsTree
{
    /// <summary>path -> "d", "f SIZE SHA256" or "l TARGET", for a host folder.</summary>
    public static SortedDictionary<string, string> FromHost(string root, Func<string, bool>? include = null)
    {
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        void Walk(string dir, string rel)
        {
            foreach (var info in new DirectoryInfo(dir).EnumerateFileSystemInfos())
            {
                string path = rel + "/" + info.Name;
                if (include is not null && !include(path)) continue;
                if (info.LinkTarget is { } target) map[path] = "l " + target;
                else if (info is DirectoryInfo) { map[path] = "d"; Walk(info.FullName, path); }
                else map[path] = $"f {((FileInfo)info).Length} {Tools.Sha256(info.FullName)}";
            }
        }
        Walk(root, "");
        return map;
    }

    /// <summary>The same snapshot taken through an <see cref="IFileSystem"/>, reading every file in 64 KiB pieces.</summary>
    public static SortedDictionary<string, string> FromFs(IFileSystem fs)
    {
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        void Walk(FsNode dir, string rel)
        {
            foreach (var e in fs.ListDirectory(dir))
            {
                string path = rel + "/" + e.Name;
                var node = fs.Lookup(dir, e.Name) ?? throw new InvalidOperationException($"{path} listed but not found");
                Assert.Equal(e.Type, node.Type);
                switch (node.Type)
                {
                    case FsNodeType.Directory: map[path] = "d"; Walk(node, path); break;
                    case FsNodeType.Symlink: map[path] = "l " + fs.ReadLink(node); break;
                    default: map[path] = $"f {node.SizeInBytes} {Sha256(fs, node)}"; break;
                }
            }
        }
        Walk(fs.Root, "");
        return map;
    }

    public static string Sha256(IFileSystem fs, FsNode file)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buf = new byte[65536];
        long off = 0;
        while (true)
        {
            int n = fs.Read(file, off, buf);
            if (n == 0) break;
            h.AppendData(buf, 0, n);
            off += n;
        }
        Assert.Equal(file.SizeInBytes, off);
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }

    /// <summary>Walks a possibly hostile filesystem with hard bounds (depth, nodes, bytes), reading everything.</summary>
    public static void BoundedWalk(IFileSystem fs, int maxDepth = 24, int maxNodes = 4000, long maxBytes = 16 << 20)
    {
        int nodes = 0;
        long bytes = 0;
        var buf = new byte[16384];
        void Walk(FsNode dir, int depth)
        {
            if (depth > maxDepth) return;
            foreach (var e in fs.ListDirectory(dir))
            {
                if (++nodes > maxNodes) return;
                var node = fs.Lookup(dir, e.Name);
                if (node is null) continue;
                if (node.Type == FsNodeType.Directory) { Walk(node, depth + 1); continue; }
                if (node.Type == FsNodeType.Symlink) { _ = fs.ReadLink(node); continue; }
                long off = 0;
                while (bytes < maxBytes)
                {
                    int n = fs.Read(node, off, buf);
                    if (n == 0) break;
                    off += n;
                    bytes += n;
                }
            }
        }
        Walk(fs.Root, 0);
    }

    /// <summary>True for the exceptions STYLE.md lets out of a parser.</summary>
    public static bool IsAllowed(Exception e) =>
        e is MalformedDataException or UnsupportedFeatureException or IOException or OperationCanceledException;

    public static void WriteFile(string path, byte[] content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
    }

    public static byte[] Pattern(int seed, int length)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    public static byte[] Text(string s) => Encoding.UTF8.GetBytes(s);
}
