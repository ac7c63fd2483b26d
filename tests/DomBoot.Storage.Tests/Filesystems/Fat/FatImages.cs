using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Filesystems.Fat;

/// <summary>
/// Builds the FAT test images once per test class: one source tree copied with `mcopy -s` into FAT12, FAT16 and
/// FAT32 volumes made by `mkfs.vfat -F N -i DEADBEEF -n LABEL`, plus a 1 MiB FAT12 image for the mutation sweep.
/// </summary>
public sealed class FatImages : IDisposable
{
    public const string Serial = "DEADBEEF";
    public const string Uuid = "DEAD-BEEF";

    private readonly TempDir _dir = new("domboot-fat");

    public string Source { get; }
    public string Fat12 { get; }
    public string Fat16 { get; }
    public string Fat32 { get; }
    public string Small { get; }

    public FatImages()
    {
        Source = Path.Combine(_dir.Path, "src");
        Directory.CreateDirectory(Source);
        MakeSourceTree(Source);
        Fat12 = Build("fat12.img", 12, 8, "-s", "8", "FAT12LABEL", Source);
        Fat16 = Build("fat16.img", 16, 16, "-s", "4", "FAT16LABEL", Source);
        Fat32 = Build("fat32.img", 32, 40, "-s", "1", "FAT32LABEL", Source);

        var small = Path.Combine(_dir.Path, "small-src");
        FsTree.WriteFile(Path.Combine(small, "hello.txt"), FsTree.Text("hello, world\n"));
        FsTree.WriteFile(Path.Combine(small, "A Long Name.Data"), FsTree.Pattern(7, 5000));
        FsTree.WriteFile(Path.Combine(small, "dir", "Sub Dir", "inner.bin"), FsTree.Pattern(8, 3000));
        for (int i = 0; i < 20; i++) FsTree.WriteFile(Path.Combine(small, "dir", $"entry number {i}.txt"), FsTree.Text($"file {i}\n"));
        Small = Build("small.img", 12, 1, "-s", "1", "SMALL", small);
    }

    private string Build(string name, int fatBits, int mib, string opt, string optValue, string label, string source)
    {
        string img = _dir.File(name);
        Tools.Run("truncate", "-s", $"{mib}M", img);
        Tools.Run("mkfs.vfat", "-F", fatBits.ToString(System.Globalization.CultureInfo.InvariantCulture), opt, optValue,
            "-i", Serial, "-n", label, img);
        Tools.Require("mcopy");
        Tools.Run("bash", ["-c", "cd \"$1\" && mcopy -i \"$2\" -s -Q -m ./* ::/", "mcopy", source, img],
            env: new Dictionary<string, string> { ["MTOOLS_SKIP_CHECK"] = "1", ["LANG"] = "C.UTF-8", ["LC_ALL"] = "C.UTF-8" });
        return img;
    }

    /// <summary>Long names, mixed case, all-lower 8.3 names (NT case bits), deep folders, a multi-MiB file, a 300-entry folder.</summary>
    private static void MakeSourceTree(string root)
    {
        FsTree.WriteFile(Path.Combine(root, "A Long File Name With Spaces.txt"), FsTree.Text("long name\n"));
        FsTree.WriteFile(Path.Combine(root, "MiXeD.TxT"), FsTree.Text("mixed case\n"));
        FsTree.WriteFile(Path.Combine(root, "lower.txt"), FsTree.Text("lower case 8.3\n"));
        FsTree.WriteFile(Path.Combine(root, "UPPER.TXT"), FsTree.Text("upper case 8.3\n"));
        FsTree.WriteFile(Path.Combine(root, "lowbase.TXT"), FsTree.Text("lower base, upper extension\n"));
        FsTree.WriteFile(Path.Combine(root, "café ünïcode.txt"), FsTree.Text("non-ASCII long name\n"));
        FsTree.WriteFile(Path.Combine(root, "empty"), []);
        FsTree.WriteFile(Path.Combine(root, "big.bin"), FsTree.Pattern(1, 3 * 1024 * 1024 + 123));
        var deep = Path.Combine(root, "Deep", "level1", "Level Two", "3", "four", "5", "six", "7", "eight", "9");
        FsTree.WriteFile(Path.Combine(deep, "leaf file.txt"), FsTree.Text("deep leaf\n"));
        for (int i = 0; i < 300; i++)
            FsTree.WriteFile(Path.Combine(root, "many", $"file with a long name {i:D3}.dat"), FsTree.Pattern(100 + i, 37 * i));
        FsTree.WriteFile(Path.Combine(root, "boot", "EFI", "BOOT", "BOOTX64.EFI"), FsTree.Pattern(2, 70000));
    }

    public void Dispose() => _dir.Dispose();
}
