using System.Text;
using DomBoot.Formats.Cpio;
using DomBoot.TestSupport;

namespace DomBoot.Formats.Tests.Cpio;

/// <summary>Sample trees, tree snapshots and GNU cpio invocations shared by the cpio tests.</summary>
internal static class CpioTestSupport
{
    /// <summary>What a tree or an archive says about one path.</summary>
    public sealed record Node(string Kind, int Mode, string Content);

    public static void Chmod(string path, UnixFileMode mode)
    {
        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("the cpio tests need a Unix file system");
        File.SetUnixFileMode(path, mode);
    }

    public static string Q(string path) => "'" + path.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>A small tree: nested dirs, odd-length and empty files, an executable, a setuid file, symlinks, a UTF-8 name.</summary>
    public static void MakeTree(string root)
    {
        Directory.CreateDirectory(Path.Combine(root, "bin"));
        Directory.CreateDirectory(Path.Combine(root, "etc/init.d"));
        Directory.CreateDirectory(Path.Combine(root, "empty"));
        File.WriteAllText(Path.Combine(root, "init"), "#!/bin/sh\necho hello\n");
        Chmod(Path.Combine(root, "init"), (UnixFileMode)0x1ED);
        File.WriteAllText(Path.Combine(root, "etc/hostname"), "domboot\n");
        File.WriteAllBytes(Path.Combine(root, "etc/empty-file"), []);
        var big = new byte[70_001];
        new Random(7).NextBytes(big);
        File.WriteAllBytes(Path.Combine(root, "bin/blob"), big);
        File.WriteAllText(Path.Combine(root, "bin/suid"), "x");
        Chmod(Path.Combine(root, "bin/suid"), (UnixFileMode)0x9ED); // 04755
        File.WriteAllText(Path.Combine(root, "etc/init.d/rcS"), "abc");
        File.WriteAllText(Path.Combine(root, "etc/grüße"), "utf-8 name\n");
        File.CreateSymbolicLink(Path.Combine(root, "bin/sh"), "blob");
        File.CreateSymbolicLink(Path.Combine(root, "etc/abs-link"), "/etc/hostname");
        File.CreateSymbolicLink(Path.Combine(root, "dangling"), "does/not/exist");
        foreach (var d in new[] { "bin", "etc", "etc/init.d", "empty" })
            Chmod(Path.Combine(root, d), (UnixFileMode)0x1ED);
        Chmod(Path.Combine(root, "empty"), (UnixFileMode)0x1C0); // 0700
    }

    /// <summary>Every path under <paramref name="root"/> (not root itself): kind, permission bits, sha256 or link target.</summary>
    public static SortedDictionary<string, Node> Snapshot(string root)
    {
        var result = new SortedDictionary<string, Node>(StringComparer.Ordinal);
        foreach (var full in Directory.EnumerateFileSystemEntries(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            var rel = Path.GetRelativePath(root, full).Replace('\\', '/');
            var st = UnixLStat.Get(full);
            result[rel] = st.Type switch
            {
                CpioFileType.Symlink => new Node("symlink", 0, new FileInfo(full).LinkTarget!),
                CpioFileType.Directory => new Node("dir", (int)st.Permissions, ""),
                CpioFileType.Regular => new Node("file", (int)st.Permissions, Tools.Sha256(full)),
                _ => new Node(st.Type.ToString(), (int)st.Permissions, $"{st.RDevMajor}:{st.RDevMinor}"),
            };
        }
        return result;
    }

    /// <summary>The same view of an archive's entries.</summary>
    public static SortedDictionary<string, Node> Snapshot(IEnumerable<CpioEntry> entries)
    {
        var result = new SortedDictionary<string, Node>(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            if (e.Name == ".") continue;
            result[e.Name] = e.Type switch
            {
                CpioFileType.Symlink => new Node("symlink", 0, e.SymlinkTarget!),
                CpioFileType.Directory => new Node("dir", (int)e.Header.Permissions, ""),
                CpioFileType.Regular => new Node("file", (int)e.Header.Permissions, Tools.Sha256(e.Data.Span)),
                _ => new Node(e.Type.ToString(), (int)e.Header.Permissions, $"{e.Header.RDevMajor}:{e.Header.RDevMinor}"),
            };
        }
        return result;
    }

    /// <summary>`find . | cpio -o -H FORMAT` run in <paramref name="dir"/>, sorted for a stable order.</summary>
    public static byte[] GnuCreate(string dir, string archive, string format = "newc")
    {
        Tools.Require("cpio");
        Tools.Shell($"cd {Q(dir)} && find . | LC_ALL=C sort | cpio -o -H {format} --quiet > {Q(archive)}");
        return File.ReadAllBytes(archive);
    }

    /// <summary>`cpio -idmv --no-absolute-filenames` of <paramref name="archive"/> into <paramref name="dir"/>.</summary>
    public static void GnuExtract(string archive, string dir)
    {
        Tools.Require("cpio");
        Directory.CreateDirectory(dir);
        Tools.Shell($"cd {Q(dir)} && cpio -idmv --no-absolute-filenames --quiet < {Q(archive)}");
    }

    /// <summary>Names GNU cpio lists (-t) for an archive, optionally piped through `gzip -dc`.</summary>
    public static List<string> GnuList(string archive, bool gzip = false)
    {
        Tools.Require("cpio");
        if (gzip) Tools.Require("gzip");
        var r = Tools.Shell(gzip ? $"gzip -dc {Q(archive)} | cpio -t --quiet" : $"cpio -t --quiet < {Q(archive)}");
        return r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
    }

    public static byte[] Ascii(string s) => Encoding.ASCII.GetBytes(s);
}
