using System.Globalization;
using System.Text;
using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Fs;

/// <summary>
/// One small source tree and, built lazily once per test class with the real tools, a filesystem image of it for
/// each kind, each also placed inside a partitioned disk converted to qcow2 (see <see cref="Layouts"/>).
/// </summary>
public sealed class FsTestImages : IDisposable
{
    public const string LongName = "A-rather-Long-File-Name_that_does_not_fit_8.3_or_ISO_level_1-0123456789-abcdefghijklmnopqrstuvwxyz.text";
    public const string BigName = "big.bin";
    public const int BigSize = (1 << 20) + 4321;

    /// <summary>Filesystem kind to its pinned UUID (as blkid prints it) and label. ISO9660's UUID is its creation date.</summary>
    public static readonly IReadOnlyDictionary<string, (string Uuid, string Label)> Pinned = new Dictionary<string, (string, string)>
    {
        ["ext4"] = ("e4e4e4e4-1111-4222-8333-444444444444", "ext4root"),
        ["ext2"] = ("e2e2e2e2-1111-4222-8333-444444444444", "ext2boot"),
        ["xfs"] = ("cfcfcfcf-1111-4222-8333-444444444444", "xfsroot"),
        ["btrfs"] = ("b7b7b7b7-1111-4222-8333-444444444444", "btrfsroot"),
        ["vfat"] = ("1234-ABCD", "ESPLABEL"),
        ["iso9660"] = ("2024-01-02-03-04-05-00", "ISOLABEL"),
    };

    /// <summary>Case name to filesystem kind, partition scheme ("dos", "dos-logical", "gpt"), VOLUME suffix and qcow2 compression.</summary>
    public static readonly IReadOnlyDictionary<string, (string Kind, string Scheme, string Volume, bool Compressed)> Layouts =
        new Dictionary<string, (string, string, string, bool)>
        {
            ["ext4"] = ("ext4", "dos", "2", false),
            ["ext2"] = ("ext2", "dos-logical", "5", true),
            ["xfs"] = ("xfs", "gpt", "2", false),
            ["btrfs"] = ("btrfs", "gpt", "vda2", false),
            ["vfat"] = ("vfat", "dos-logical", "vda5", false),
            ["iso9660"] = ("iso9660", "gpt", "2", false),
        };

    private readonly TempDir _dir = new("domboot-cli-fs");
    private readonly Dictionary<string, string> _built = [];
    private readonly Lock _lock = new();

    /// <summary>The tree with symlinks; <see cref="FatSource"/> is the same without them (FAT has none).</summary>
    public string Source { get; }
    public string FatSource { get; }

    public FsTestImages()
    {
        Source = _dir.File("src");
        FatSource = _dir.File("src-fat");
        MakeTree(Source, symlinks: true);
        MakeTree(FatSource, symlinks: false);
    }

    public void Dispose() => _dir.Dispose();

    public string SourceFor(string kind) => kind == "vfat" ? FatSource : Source;

    private static void MakeTree(string root, bool symlinks)
    {
        var big = new byte[BigSize];
        new Random(1234).NextBytes(big);
        Directory.CreateDirectory(Path.Combine(root, "dir", "sub"));
        File.WriteAllBytes(Path.Combine(root, BigName), big);
        File.WriteAllText(Path.Combine(root, LongName), "a file with a long name\n");
        File.WriteAllText(Path.Combine(root, "dir", "notes.txt"), "notes in a directory\n");
        File.WriteAllText(Path.Combine(root, "dir", "sub", "deep.txt"), "deep file\n");
        if (symlinks)
        {
            File.CreateSymbolicLink(Path.Combine(root, "link"), BigName);
            File.CreateSymbolicLink(Path.Combine(root, "dir", "sub", "up"), "../../" + BigName);
        }
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(Path.Combine(root, BigName), (UnixFileMode)Convert.ToInt32("640", 8));
            File.SetUnixFileMode(Path.Combine(root, "dir"), (UnixFileMode)Convert.ToInt32("750", 8));
        }
    }

    /// <summary>The bare filesystem image of <paramref name="kind"/> (no partition table).</summary>
    public string FileSystem(string kind)
    {
        lock (_lock)
        {
            if (_built.TryGetValue("fs-" + kind, out var done)) return done;
            var img = _dir.File(kind + ".img");
            var (uuid, label) = Pinned[kind];
            switch (kind)
            {
                case "ext4":
                case "ext2":
                    Tools.Run("mkfs." + kind, "-q", "-F", "-U", uuid, "-L", label, "-E", "hash_seed=" + uuid, "-d", Source, img, "4M");
                    break;
                case "xfs":
                    // 64 MiB is below mkfs.xfs's 300 MB floor, which xfsprogs waives under its fstests variables.
                    Sparse(img, 64L << 20);
                    var proto = _dir.File("xfs.proto");
                    File.WriteAllText(proto, XfsProtofile(Source));
                    Tools.Run("mkfs.xfs", ["-q", "-f", "-p", proto, "-m", "uuid=" + uuid, "-L", label, img],
                        env: new Dictionary<string, string> { ["TEST_DIR"] = "1", ["TEST_DEV"] = "1", ["QA_CHECK_FS"] = "1" });
                    break;
                case "btrfs":
                    Sparse(img, 114L << 20);
                    Tools.Run("mkfs.btrfs", "-q", "-f", "-r", Source, "-U", uuid, "-L", label, img);
                    break;
                case "vfat":
                    Tools.Run("mkfs.vfat", "-C", img, "4096", "-i", uuid.Replace("-", "", StringComparison.Ordinal), "-n", label);
                    Tools.Run("bash", ["-c", "cd \"$1\" && mcopy -i \"$2\" -s -Q -m ./* ::/", "mcopy", FatSource, img],
                        env: new Dictionary<string, string> { ["MTOOLS_SKIP_CHECK"] = "1", ["LANG"] = "C.UTF-8", ["LC_ALL"] = "C.UTF-8" });
                    break;
                case "iso9660":
                    Tools.Run("xorriso", "-as", "mkisofs", "-R", "-V", label, "--modification-date=" + uuid.Replace("-", "", StringComparison.Ordinal),
                        "-o", img, Source);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown filesystem kind");
            }
            _built["fs-" + kind] = img;
            return img;
        }
    }

    /// <summary>Raw disk and its qcow2 for a <see cref="Layouts"/> case, plus the filesystem's byte range in the raw disk.</summary>
    public (string Raw, string Qcow2, long Offset, long Size) Disk(string layout)
    {
        var (kind, scheme, _, compressed) = Layouts[layout];
        var fs = FileSystem(kind);
        lock (_lock)
        {
            if (_built.TryGetValue("disk-" + layout, out var q))
            {
                var raw0 = _dir.File(layout + ".raw");
                return (raw0, q, FsStartSector(scheme) * 512, new FileInfo(fs).Length);
            }
            long fsBytes = new FileInfo(fs).Length;
            long fsSectors = (fsBytes + 511) / 512;
            long start = FsStartSector(scheme);
            var raw = _dir.File(layout + ".raw");
            Sparse(raw, (start + fsSectors + 2048) * 512);
            var inv = CultureInfo.InvariantCulture;
            string table = scheme switch
            {
                "dos" => $"label: dos\nlabel-id: 0xd05d05d0\nstart=2048, size=2048, type=83\nstart={start}, size={fsSectors}, type=83\n",
                "dos-logical" => $"label: dos\nlabel-id: 0xd05d05d1\nstart=2048, size=2048, type=83\nstart=4096, type=5\nstart={start}, size={fsSectors}, type=83\n",
                _ => $"label: gpt\nlabel-id: 6A6A6A6A-1111-4222-8333-444444444444\nstart=2048, size=2048, name=bios\nstart={start}, size={fsSectors}, name=data\n",
            };
            Tools.Run("sfdisk", ["-q", raw], stdin: string.Create(inv, $"{table}"));
            Tools.Run("dd", $"if={fs}", $"of={raw}", "bs=512", string.Create(inv, $"seek={start}"), "conv=notrunc,sparse", "status=none");
            var qcow2 = _dir.File(layout + ".qcow2");
            Tools.Run("qemu-img", compressed ? ["convert", "-c", "-O", "qcow2", raw, qcow2] : ["convert", "-O", "qcow2", raw, qcow2]);
            _built["disk-" + layout] = qcow2;
            return (raw, qcow2, start * 512, fsBytes);
        }
    }

    /// <summary>A scratch copy of <paramref name="path"/> (sparse) for a test that patches bytes.</summary>
    public string Copy(string path, string name)
    {
        var copy = _dir.File(name);
        Tools.Run("cp", "--sparse=always", path, copy);
        return copy;
    }

    /// <summary>A path in the fixture's scratch folder.</summary>
    public string Scratch(string name) => _dir.File(name);

    private static long FsStartSector(string scheme) => scheme == "dos-logical" ? 6144 : 4096;

    private static void Sparse(string path, long size)
    {
        using var h = File.OpenHandle(path, FileMode.Create, FileAccess.Write);
        RandomAccess.SetLength(h, size);
    }

    /// <summary>mkfs.xfs(8) protofile: the tree with its modes, symlinks with their targets.</summary>
    private static string XfsProtofile(string source)
    {
        var sb = new StringBuilder("domboot-cli-test\n0 0\nd--755 0 0\n");
        void Emit(string dir, int depth)
        {
            string indent = new(' ', depth * 2);
            foreach (var e in new DirectoryInfo(dir).EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal))
            {
                string mode = Convert.ToString((int)e.UnixFileMode & 0x1FF, 8).PadLeft(3, '0');
                if (e.LinkTarget is { } target) sb.Append(indent).Append(e.Name).Append(" l--777 0 0 ").Append(target).Append('\n');
                else if (e is DirectoryInfo d)
                {
                    sb.Append(indent).Append(d.Name).Append(" d--").Append(mode).Append(" 0 0\n");
                    Emit(d.FullName, depth + 1);
                    sb.Append(indent).Append("$\n");
                }
                else sb.Append(indent).Append(e.Name).Append(" ---").Append(mode).Append(" 0 0 ").Append(e.FullName).Append('\n');
            }
        }
        Emit(source, 1);
        sb.Append("$\n");
        return sb.ToString();
    }
}
