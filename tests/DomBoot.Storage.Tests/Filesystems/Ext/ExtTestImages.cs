using System.Text;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Filesystems.Ext;

/// <summary>
/// Builds the source tree and the ext images the tests read, once per test run, with the real mke2fs.
/// Recipe: see <see cref="BuildSource"/> and <see cref="Variants"/>.
/// </summary>
internal static class ExtTestImages
{
    public const string Uuid = "0b7c5d9e-1111-4222-8333-944455556666";
    public const string Label = "domboot-ext";
    public const string LongTarget =
        "dir/./nested/../nested/./././././././././././././././././././././././././deep.txt";

    private static readonly Lazy<TempDir> Work = new(() =>
    {
        // vstest may end the test host before ProcessExit runs: sweep our own folders left by earlier runs.
        foreach (var stale in Directory.EnumerateDirectories(Path.GetTempPath(), "domboot-ext-*"))
        {
            if (Directory.GetLastWriteTimeUtc(stale) > DateTime.UtcNow.AddHours(-2)) continue;
            try { Directory.Delete(stale, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        var dir = new TempDir("domboot-ext");
        AppDomain.CurrentDomain.ProcessExit += (_, _) => dir.Dispose();
        return dir;
    });

    private static readonly Lazy<string> Source = new(() => BuildSource(Path.Combine(Work.Value.Path, "src"), full: true));
    private static readonly Lazy<string> SmallSource = new(() => BuildSource(Path.Combine(Work.Value.Path, "small"), full: false));
    private static readonly Dictionary<string, Lazy<string>> Images = [];
    private static readonly Lock Gate = new();

    /// <summary>mke2fs argument sets per variant; all get -U/-L/-E root_owner and -d of the source tree.</summary>
    public static readonly Dictionary<string, string[]> Variants = new()
    {
        // mke2fs.conf's "small" type would pick 1 KiB blocks for these sizes: the block size is always explicit.
        ["ext4"] = ["-t", "ext4", "-b", "4096", "-N", "4096"],
        ["ext4-no64bit-nocsum"] = ["-t", "ext4", "-b", "4096", "-N", "4096", "-O", "^64bit,^metadata_csum,uninit_bg"],
        ["ext4-inline"] = ["-t", "ext4", "-b", "4096", "-N", "4096", "-O", "inline_data"],
        ["ext4-1k"] = ["-t", "ext4", "-b", "1024", "-N", "4096"],
        ["ext4-2k-128-inodes"] = ["-t", "ext4", "-b", "2048", "-I", "128", "-N", "4096", "-O", "^metadata_csum,uninit_bg"],
        ["ext4-64k"] = ["-t", "ext4", "-b", "65536", "-N", "4096"],
        ["ext4-inline-1k-inodes"] = ["-t", "ext4", "-b", "4096", "-I", "1024", "-N", "4096", "-O", "inline_data"],
        ["ext4-bigalloc"] = ["-t", "ext4", "-b", "4096", "-O", "bigalloc", "-C", "65536", "-N", "4096"],
        ["ext4-bigalloc-1k"] = ["-t", "ext4", "-b", "1024", "-O", "bigalloc", "-C", "16384", "-N", "4096"],
        ["ext4-meta_bg"] = ["-t", "ext4", "-b", "1024", "-g", "1024", "-O", "meta_bg,^resize_inode", "-N", "4096"],
        ["ext3-1k"] = ["-t", "ext3", "-b", "1024", "-N", "4096"],
        ["ext2-1k"] = ["-t", "ext2", "-b", "1024", "-N", "4096"],
        ["ext2-4k"] = ["-t", "ext2", "-b", "4096", "-N", "4096"],
    };

    private static readonly Lazy<string> HtreeSource = new(() => BuildHtreeSource(Path.Combine(Work.Value.Path, "htree")));

    public static string SourceTree => Source.Value;
    public static string HtreeSourceTree => HtreeSource.Value;

    /// <summary>An image of <see cref="HtreeSourceTree"/> whose directories e2fsck -D indexed with <paramref name="hashAlg"/>.</summary>
    public static string HtreeImage(string hashAlg) =>
        Get("htree-" + hashAlg, () => Build("htree-" + hashAlg, ["-t", "ext4", "-N", "4096"], HtreeSourceTree, "16M", hashAlg: hashAlg));

    /// <summary>One directory of 2500 names: ASCII, UTF-8 with high-bit bytes (signed vs unsigned char hashes), and long ones.</summary>
    private static string BuildHtreeSource(string root)
    {
        var dir = Path.Combine(root, "names");
        Directory.CreateDirectory(dir);
        for (int i = 0; i < 2500; i++)
        {
            string name = (i % 3) switch
            {
                0 => $"file-{i:D5}",
                1 => $"fichier-\u00e9t\u00e9-\u00fc-{i:D5}",
                _ => $"{new string('L', 40 + i % 150)}-{i:D5}",
            };
            File.WriteAllBytes(Path.Combine(dir, name), []);
        }
        return root;
    }
    public static string SmallSourceTree => SmallSource.Value;

    /// <summary>The image of <paramref name="variant"/> (built on first use; tests must not modify it).</summary>
    public static string Image(string variant) => Get(variant, () => Build(variant, Variants[variant], SourceTree, "48M"));

    /// <summary>A small image (few files) for malformed-input tables and mutation sweeps.</summary>
    public static string SmallImage(string variant, params string[] mkfsArgs) =>
        Get("small-" + variant, () => Build("small-" + variant, mkfsArgs, SmallSourceTree, "4M", htree: false));

    private static string Get(string key, Func<string> build)
    {
        Lazy<string> lazy;
        lock (Gate)
        {
            if (!Images.TryGetValue(key, out lazy!)) Images[key] = lazy = new Lazy<string>(build);
        }
        return lazy.Value;
    }

    private static string Build(string name, string[] args, string source, string size, bool htree = true, string? hashAlg = null)
    {
        var image = Path.Combine(Work.Value.Path, name + ".img");
        var all = new List<string> { "-q", "-F" };
        var extended = "root_owner=0:0";
        for (int i = 0; i < args.Length; i++)
        {
            // mke2fs keeps only the last -E: merge ours into the variant's.
            if (args[i] == "-E" && i + 1 < args.Length) extended += "," + args[++i];
            else all.Add(args[i]);
        }
        all.AddRange(["-U", Uuid, "-L", Label, "-E", extended, "-d", source, image, size]);
        Tools.Run("mkfs.ext4", all, env: new Dictionary<string, string> { ["E2FSPROGS_FAKE_TIME"] = "1700000000" });
        if (hashAlg is not null)
        {
            // e2fsck -D indexes with s_def_hash_version, and with unsigned chars when s_flags says EXT2_FLAGS_UNSIGNED_HASH.
            Tools.Run("tune2fs", "-E", "hash_alg=" + hashAlg.Replace("-unsigned", "", StringComparison.Ordinal), image);
            if (hashAlg.EndsWith("-unsigned", StringComparison.Ordinal)) Tools.Run("debugfs", "-w", "-R", "ssv flags 2", image);
        }
        if (htree)
        {
            // mke2fs -d writes linear directories; e2fsck -D re-indexes the large ones as htree, as a mounted kernel would.
            var r = Tools.Run("e2fsck", ["-fyD", image], check: false);
            Assert.True(r.ExitCode is 0 or 1, $"e2fsck -fyD {image} exited {r.ExitCode}: {r.Stdout}{r.Stderr}");
        }
        return image;
    }

    /// <summary>The deterministic 1 KiB chunk pattern frag.bin carries every 8 KiB.</summary>
    public static byte[] Pattern(int seed, int length)
    {
        var b = new byte[length];
        for (int j = 0; j < length; j++) b[j] = (byte)((seed * 7 + j) % 251 + 1);
        return b;
    }

    private static string BuildSource(string root, bool full)
    {
        Directory.CreateDirectory(root);
        File.WriteAllText(Path.Combine(root, "hello.txt"), "hello, ext\n");
        File.WriteAllText(Path.Combine(root, "target-file.txt"), new string('t', 2000));
        File.WriteAllBytes(Path.Combine(root, "empty.txt"), []);
        File.WriteAllText(Path.Combine(root, "small100.txt"), new string('s', 99) + "\n"); // inline: 60 in i_block + 40 in system.data
        var rng = new Random(4321);
        var big = new byte[full ? 300 * 1024 : 64 * 1024]; // at 1 KiB blocks, > 268 blocks reaches the double-indirect block
        rng.NextBytes(big);
        File.WriteAllBytes(Path.Combine(root, "big.bin"), big);
        Directory.CreateDirectory(Path.Combine(root, "dir", "nested"));
        File.WriteAllText(Path.Combine(root, "dir", "nested", "deep.txt"), "deep inside\n");
        File.CreateSymbolicLink(Path.Combine(root, "dir", "up"), "../hello.txt");
        File.CreateSymbolicLink(Path.Combine(root, "fastlink"), "hello.txt");
        File.CreateSymbolicLink(Path.Combine(root, "slowlink"), LongTarget);
        File.CreateSymbolicLink(Path.Combine(root, "link1"), "link2");
        File.CreateSymbolicLink(Path.Combine(root, "link2"), "dir/nested/deep.txt");
        File.CreateSymbolicLink(Path.Combine(root, "abs"), "/dir/nested/deep.txt");
        File.CreateSymbolicLink(Path.Combine(root, "loopa"), "loopb");
        File.CreateSymbolicLink(Path.Combine(root, "loopb"), "loopa");
        File.CreateSymbolicLink(Path.Combine(root, "dangling-long"), new string('x', 300));

        // frag.bin: 1 KiB of data every 8 KiB, so every chunk is its own extent (depth 2 at 1 KiB blocks, 1 at 4 KiB).
        int chunks = full ? 768 : 200;
        using (var f = new FileStream(Path.Combine(root, "frag.bin"), FileMode.Create))
        {
            for (int i = 0; i < chunks; i++)
            {
                f.Position = (long)i * 8192;
                f.Write(Pattern(i, 1024));
            }
        }
        if (!full) return root;

        // sparse.bin: 128 MiB with data at both ends and in the middle (holes read as zeros).
        using (var f = new FileStream(Path.Combine(root, "sparse.bin"), FileMode.Create))
        {
            f.SetLength(128L << 20);
            f.Position = 0;
            f.Write(Encoding.ASCII.GetBytes("start of sparse\n"));
            f.Position = 40L << 20;
            f.Write(Pattern(3, 5000));
            f.Position = (70L << 20) + 123; // at 1 KiB blocks, past 65804 blocks: the triple-indirect tree
            f.Write(Pattern(9, 9000));
            f.Position = (128L << 20) - 10;
            f.Write(Encoding.ASCII.GetBytes("the end!!\n"));
        }

        var many = Path.Combine(root, "many");
        Directory.CreateDirectory(many);
        for (int i = 0; i < 3000; i++)
        {
            var p = Path.Combine(many, $"entry-with-a-longer-name-{i:D5}");
            if (i % 100 == 0) File.WriteAllText(p, $"entry {i}\n");
            else File.WriteAllBytes(p, []);
        }
        return root;
    }
}
