using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Filesystems.Iso9660;

/// <summary>
/// Builds the ISO9660 test images once per test class with `xorriso -as mkisofs` (Rock Ridge is always on in
/// xorriso's mkisofs emulation; `--norock` turns it off): Rock Ridge + Joliet, Joliet only, plain, El Torito,
/// and a small image for the malformed table, the multi-extent patch and the mutation sweep.
/// </summary>
public sealed class IsoImages : IDisposable
{
    public const string ModificationDate = "2024010203040506";
    public const string Uuid = "2024-01-02-03-04-05-06";
    public static readonly string LongName = new string('n', 150) + ".txt";

    private readonly TempDir _dir = new("domboot-iso");

    public string Source { get; }
    public string RockJoliet { get; }
    public string JolietOnly { get; }
    public string Plain { get; }
    public string ElTorito { get; }
    public string Relocated { get; }
    public string Small { get; }

    public IsoImages()
    {
        Source = Path.Combine(_dir.Path, "src");
        MakeSourceTree(Source);
        RockJoliet = Build("rrj.iso", Source, "-R", "-J", "-V", "RRJ_LABEL");
        JolietOnly = Build("joliet.iso", Source, "--norock", "-J", "-V", "Joliet Label");
        Plain = Build("plain.iso", Source, "--norock", "-V", "PLAINLABEL");
        Relocated = Build("reloc.iso", Source, "-R", "-rr_reloc_dir", "rr_moved", "-V", "RELOC"); // deep folders moved (RRIP CL/RE/PL)

        var et = Path.Combine(_dir.Path, "et");
        FsTree.WriteFile(Path.Combine(et, "boot", "boot.img"), FsTree.Pattern(11, 2048));
        FsTree.WriteFile(Path.Combine(et, "boot", "efi.img"), FsTree.Pattern(12, 10240));
        FsTree.WriteFile(Path.Combine(et, "readme.txt"), FsTree.Text("El Torito test\n"));
        ElTorito = Build("eltorito.iso", et, "-R", "-J", "-V", "ETLABEL", "-b", "boot/boot.img", "-no-emul-boot", "-boot-load-size", "4",
            "-eltorito-alt-boot", "-e", "boot/efi.img", "-no-emul-boot");

        var small = Path.Combine(_dir.Path, "small");
        FsTree.WriteFile(Path.Combine(small, "part1.bin"), FsTree.Pattern(21, 4096));
        FsTree.WriteFile(Path.Combine(small, "part2.bin"), FsTree.Pattern(22, 3000));
        FsTree.WriteFile(Path.Combine(small, "dir", "inner.txt"), FsTree.Text("inner\n"));
        FsTree.WriteFile(Path.Combine(small, LongName), FsTree.Text("long\n"));
        File.CreateSymbolicLink(Path.Combine(small, "link"), "dir/inner.txt");
        Small = Build("small.iso", small, "-R", "-J", "-V", "SMALL");
    }

    private string Build(string name, string source, params string[] options)
    {
        string iso = _dir.File(name);
        Tools.Run("xorriso", ["-as", "mkisofs", .. options, "--modification-date=" + ModificationDate, "-o", iso, source]);
        return iso;
    }

    /// <summary>Long and mixed-case names, deep folders, symlinks (relative, "..", absolute, to a folder), a multi-MiB file, 300 entries.</summary>
    private static void MakeSourceTree(string root)
    {
        FsTree.WriteFile(Path.Combine(root, "A Long File Name With Spaces.txt"), FsTree.Text("long name\n"));
        FsTree.WriteFile(Path.Combine(root, "MiXeD.TxT"), FsTree.Text("mixed\n"));
        FsTree.WriteFile(Path.Combine(root, "café ünïcode.txt"), FsTree.Text("unicode\n"));
        FsTree.WriteFile(Path.Combine(root, "empty"), []);
        FsTree.WriteFile(Path.Combine(root, "big.bin"), FsTree.Pattern(1, 3 * 1024 * 1024 + 77));
        FsTree.WriteFile(Path.Combine(root, LongName), FsTree.Text("a Rock Ridge name long enough to need a continuation area\n"));
        var deep = Path.Combine(root, "Deep", "level1", "Level Two", "3", "four", "5", "six", "7", "eight", "9");
        FsTree.WriteFile(Path.Combine(deep, "leaf file.txt"), FsTree.Text("deep leaf\n"));
        for (int i = 0; i < 300; i++)
            FsTree.WriteFile(Path.Combine(root, "many", $"file with a long name {i:D3}.dat"), FsTree.Pattern(100 + i, 41 * i));
        File.CreateSymbolicLink(Path.Combine(root, "rel"), "A Long File Name With Spaces.txt");
        File.CreateSymbolicLink(Path.Combine(root, "abs"), "/etc/passwd");
        File.CreateSymbolicLink(Path.Combine(root, "Deep", "level1", "up"), "../../big.bin");
        File.CreateSymbolicLink(Path.Combine(root, "dirlink"), "Deep/level1");
        File.CreateSymbolicLink(Path.Combine(root, "Deep", "dotted"), "./level1/../level1/Level Two");
    }

    public void Dispose() => _dir.Dispose();
}
