
namespace DomBoot.TestSupport;

/// <summary>
/// Builds guest disk images with the real tools: sfdisk (dos incl. logical, gpt), mkfs.ext4 -d -E offset= in place,
/// mkfs.vfat --offset + mcopy, mkfs.xfs -p protofile and mkfs.btrfs --rootdir copied into a partition, xorriso ISOs,
/// qemu-img convert. Trees are staged in host folders; the kernel is the cached Debian bzImage.
/// </summary>
public sealed class DiskBuilder(string root)
{
    public const long MiB = 1 << 20;
    public string Root { get; } = root;

    private int _n;

    /// <summary>A fresh staging folder holding the given files (relative path -> content; null content = the kernel).</summary>
    public string Tree(IReadOnlyDictionary<string, byte[]?> files)
    {
        var dir = Path.Combine(Root, "tree" + Interlocked.Increment(ref _n));
        Directory.CreateDirectory(dir);
        foreach (var (rel, content) in files)
        {
            var p = Path.Combine(dir, rel.TrimStart('/'));
            Directory.CreateDirectory(Path.GetDirectoryName(p)!);
            if (content is null) File.Copy(Cache.Kernel, p);
            else File.WriteAllBytes(p, content);
        }
        return dir;
    }

    /// <summary>A sparse raw image of <paramref name="mib"/> MiB with the sfdisk script applied (null = no table).</summary>
    public string Raw(string name, int mib, string? sfdiskScript)
    {
        var img = Path.Combine(Root, name);
        Tools.Run("truncate", "-s", $"{mib}M", img);
        if (sfdiskScript is not null) Tools.Run("sfdisk", ["--no-reread", "--no-tell-kernel", "-q", img], stdin: sfdiskScript);
        return img;
    }

    /// <summary>ext4 written in place at <paramref name="startMiB"/> of the image, populated from <paramref name="tree"/>.</summary>
    public static void Ext4(string img, long startMiB, long sizeMiB, string tree, string uuid)
    {
        Tools.Run("mkfs.ext4", ["-q", "-F", "-U", uuid, "-E", $"offset={startMiB * MiB}", "-d", tree, img, $"{sizeMiB * 1024}k"],
            env: new Dictionary<string, string> { ["E2FSPROGS_FAKE_TIME"] = "1700000000" });
    }

    /// <summary>FAT in place (mkfs.vfat --offset in sectors), files copied with mcopy -i img@@offset.</summary>
    public static void Vfat(string img, long startMiB, long sizeMiB, string tree, string volumeId)
    {
        Tools.Run("mkfs.vfat", ["-i", volumeId, "--offset", (startMiB * MiB / 512).ToString(System.Globalization.CultureInfo.InvariantCulture), img, (sizeMiB * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        var spec = $"{img}@@{startMiB * MiB}";
        foreach (var d in Directory.GetDirectories(tree, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            Tools.Run("mmd", "-i", spec, "::/" + Path.GetRelativePath(tree, d));
        foreach (var f in Directory.GetFiles(tree, "*", SearchOption.AllDirectories))
            Tools.Run("mcopy", "-i", spec, f, "::/" + Path.GetRelativePath(tree, f));
    }

    /// <summary>XFS v5 made in its own file from a protofile, then copied into the partition.</summary>
    public void Xfs(string img, long startMiB, long sizeMiB, string tree, string uuid)
    {
        var fs = Path.Combine(Root, $"xfs{Interlocked.Increment(ref _n)}.img");
        Tools.Run("truncate", "-s", $"{sizeMiB}M", fs);
        var proto = new System.Text.StringBuilder("/dev/null\n0 0\nd--755 0 0\n");
        void Walk(string dir)
        {
            foreach (var f in Directory.GetFiles(dir).Order(StringComparer.Ordinal))
                proto.Append($"{Path.GetFileName(f)} ---644 0 0 {f}\n");
            foreach (var d in Directory.GetDirectories(dir).Order(StringComparer.Ordinal))
            {
                proto.Append($"{Path.GetFileName(d)} d--755 0 0\n");
                Walk(d);
                proto.Append("$\n");
            }
        }
        Walk(tree);
        proto.Append("$\n");
        var protoFile = fs + ".proto";
        File.WriteAllText(protoFile, proto.ToString());
        Tools.Run("mkfs.xfs", "-q", "-f", "-m", $"crc=1,uuid={uuid}", "-p", protoFile, fs);
        CopyInto(fs, img, startMiB);
    }

    /// <summary>btrfs made with --rootdir in its own file, then copied into the partition.</summary>
    public void Btrfs(string img, long startMiB, long sizeMiB, string tree, string uuid)
    {
        var fs = Path.Combine(Root, $"btrfs{Interlocked.Increment(ref _n)}.img");
        Tools.Run("truncate", "-s", $"{sizeMiB}M", fs);
        Tools.Run("mkfs.btrfs", "-q", "-f", "-U", uuid, "--rootdir", tree, fs);
        CopyInto(fs, img, startMiB);
    }

    private static void CopyInto(string fs, string img, long startMiB) =>
        Tools.Run("dd", $"if={fs}", $"of={img}", "bs=1M", $"seek={startMiB}", "conv=notrunc,sparse", "status=none");

    /// <summary>An ISO 9660 image with Rock Ridge and Joliet.</summary>
    public string Iso(string name, string tree)
    {
        var iso = Path.Combine(Root, name);
        Tools.Run("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "DOMBOOT", "-o", iso, tree);
        return iso;
    }

    public string Qcow2(string raw, string name)
    {
        var q = Path.Combine(Root, name);
        Tools.Run("qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, q);
        return q;
    }

    /// <summary>Random bytes from a pinned seed, for initrds.</summary>
    public static byte[] RandomBytes(int seed, int length)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    public static byte[] Text(string s) => System.Text.Encoding.UTF8.GetBytes(s);
}
