using System.Globalization;
using System.Text.Json;
using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Fs;

/// <summary>
/// `domboot fs ls|cat|stat` against images the real tools built, inside dos (primary and logical) and gpt partitions
/// of qcow2 disks (one zlib-compressed), and as whole disks; checked against the source tree and blkid.
/// </summary>
public sealed class FsCommandTests(FsTestImages images) : IClassFixture<FsTestImages>
{
    public static TheoryData<string> Layouts => new(FsTestImages.Layouts.Keys);

    public static TheoryData<string> Kinds => new(FsTestImages.Pinned.Keys);

    /// <summary>Names a filesystem adds on its own (mkfs.ext* makes lost+found).</summary>
    private static readonly string[] ExtraNames = ["lost+found"];

    private string Spec(string layout) => images.Disk(layout).Qcow2 + ":" + FsTestImages.Layouts[layout].Volume;

    private static bool HasSymlinks(string kind) => kind != "vfat";

    private static bool KeepsModes(string kind) => kind != "vfat";

    private static string[] Lines(string stdout) => stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    private static void AssertOk(DombootProcess.Result r)
    {
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        Assert.Equal("", r.Stderr);
    }

    private static void AssertOneLineError(DombootProcess.Result r, int exit, params string[] contains)
    {
        Assert.True(r.ExitCode == exit, $"exit {r.ExitCode}, expected {exit}: {r.Stderr}");
        var lines = r.Stderr.TrimEnd('\n').Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("domboot: error: ", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
        foreach (var c in contains) Assert.Contains(c, lines[0], StringComparison.Ordinal);
        Assert.Equal("", r.Stdout);
    }

    /// <summary>The source tree as guest paths ("/dir/sub/deep.txt") with type, size (files), mode and symlink target.</summary>
    private static Dictionary<string, (string Type, long Size, string Mode, string? Target)> SourceTree(string root)
    {
        var result = new Dictionary<string, (string, long, string, string?)>(StringComparer.Ordinal);
        void Walk(string dir, string prefix)
        {
            foreach (var e in new DirectoryInfo(dir).EnumerateFileSystemInfos())
            {
                string path = prefix + "/" + e.Name;
                string mode = "0" + Convert.ToString((int)e.UnixFileMode & 0xFFF, 8);
                if (e.LinkTarget is { } target) result[path] = ("symlink", target.Length, "0777", target);
                else if (e is DirectoryInfo d)
                {
                    result[path] = ("directory", -1, mode, null);
                    Walk(d.FullName, path);
                }
                else result[path] = ("regular", ((FileInfo)e).Length, mode, null);
            }
        }
        Walk(root, "");
        return result;
    }

    /// <summary>blkid -p -o export of a byte range of <paramref name="path"/>.</summary>
    private static Dictionary<string, string> Blkid(string path, long offset, long size)
    {
        var r = Tools.Run("blkid", "-p", "-o", "export", "--offset", offset.ToString(CultureInfo.InvariantCulture),
            "--size", size.ToString(CultureInfo.InvariantCulture), path);
        return Lines(r.Stdout).Select(l => l.Split('=', 2)).Where(kv => kv.Length == 2)
            .ToDictionary(kv => kv[0], kv => kv[1].Replace("\\ ", " ", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Ls_ListsSourceNamesSorted(string layout)
    {
        var kind = FsTestImages.Layouts[layout].Kind;
        var source = images.SourceFor(kind);
        var expected = Directory.EnumerateFileSystemEntries(source).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();

        var r = DombootProcess.Run("fs", "ls", Spec(layout));
        AssertOk(r);
        var listed = Lines(r.Stdout);
        Assert.Equal(listed.Order(StringComparer.Ordinal), listed);
        Assert.Equal(expected, listed.Except(ExtraNames));

        r = DombootProcess.Run("fs", "ls", Spec(layout), "/dir/sub");
        AssertOk(r);
        Assert.Equal(HasSymlinks(kind) ? ["deep.txt", "up"] : ["deep.txt"], Lines(r.Stdout));

        r = DombootProcess.Run("fs", "ls", "-l", Spec(layout), "/");
        AssertOk(r);
        var big = Assert.Single(Lines(r.Stdout), l => !l.StartsWith('l') && l.EndsWith(" " + FsTestImages.BigName, StringComparison.Ordinal));
        Assert.StartsWith(KeepsModes(kind) ? "-rw-r-----" : "-", big, StringComparison.Ordinal);
        Assert.Contains(" " + FsTestImages.BigSize.ToString(CultureInfo.InvariantCulture) + " ", big, StringComparison.Ordinal);
        if (HasSymlinks(kind))
            Assert.Contains(Lines(r.Stdout), l => l.StartsWith('l') && l.EndsWith(" link -> " + FsTestImages.BigName, StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void LsRecursiveJson_MatchesSourceTree(string layout)
    {
        var kind = FsTestImages.Layouts[layout].Kind;
        var source = SourceTree(images.SourceFor(kind));

        var r = DombootProcess.Run("fs", "ls", "-R", "--json", Spec(layout), "/");
        AssertOk(r);
        using var doc = JsonDocument.Parse(r.Stdout);
        var listed = doc.RootElement.EnumerateArray().ToDictionary(e => e.GetProperty("path").GetString()!, e => e.Clone(), StringComparer.Ordinal);
        var ours = listed.Keys.Where(p => !ExtraNames.Any(x => p == "/" + x || p.StartsWith("/" + x + "/", StringComparison.Ordinal)));
        Assert.Equal(source.Keys.Order(StringComparer.Ordinal), ours.Order(StringComparer.Ordinal));
        foreach (var (path, want) in source)
        {
            var got = listed[path];
            Assert.True(want.Type == got.GetProperty("type").GetString(), $"{path}: type {got.GetProperty("type")}, expected {want.Type}");
            if (want.Type != "directory") Assert.True(want.Size == got.GetProperty("size").GetInt64(), $"{path}: size {got.GetProperty("size")}, expected {want.Size}");
            if (want.Target is not null) Assert.Equal(want.Target, got.GetProperty("target").GetString());
            if (KeepsModes(kind)) Assert.True(want.Mode == got.GetProperty("mode").GetString(), $"{path}: mode {got.GetProperty("mode")}, expected {want.Mode}");
        }
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Cat_BytesEqualSource(string layout)
    {
        var kind = FsTestImages.Layouts[layout].Kind;
        var source = images.SourceFor(kind);
        var bigSha = Tools.Sha256(Path.Combine(source, FsTestImages.BigName));
        List<(string Guest, string Host)> files =
        [
            ("/" + FsTestImages.BigName, FsTestImages.BigName),
            ("/" + FsTestImages.LongName, FsTestImages.LongName),
            ("/dir/sub/deep.txt", "dir/sub/deep.txt"),
            ("dir/notes.txt", "dir/notes.txt"),
        ];
        if (HasSymlinks(kind)) files.AddRange([("/link", FsTestImages.BigName), ("/dir/sub/up", FsTestImages.BigName)]);
        // vfat looks names up without regard to case, as Linux does.
        else files.Add(("/DIR/Sub/DEEP.TXT", "dir/sub/deep.txt"));
        foreach (var (guest, host) in files)
        {
            var r = DombootBytes.Run("fs", "cat", Spec(layout), guest);
            Assert.True(r.ExitCode == 0, $"cat {guest}: exit {r.ExitCode}: {r.Stderr}");
            Assert.Equal(Tools.Sha256(Path.Combine(source, host)), Tools.Sha256(r.Stdout));
        }
        Assert.Equal(bigSha, Tools.Sha256(DombootBytes.Run("fs", "cat", Spec(layout), "/" + FsTestImages.BigName).Stdout));
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void StatJson_MatchesSourceAndBlkid(string layout)
    {
        var (kind, _, volume, _) = FsTestImages.Layouts[layout];
        var (raw, _, offset, size) = images.Disk(layout);
        var blkid = Blkid(raw, offset, size);
        Assert.Equal(kind, blkid["TYPE"]);

        var r = DombootProcess.Run("fs", "stat", "--json", Spec(layout), "/" + FsTestImages.BigName);
        AssertOk(r);
        var big = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal("regular", big.GetProperty("type").GetString());
        Assert.Equal(FsTestImages.BigSize, big.GetProperty("size").GetInt64());
        if (KeepsModes(kind)) Assert.Equal("0640", big.GetProperty("mode").GetString());
        Assert.Equal(kind, big.GetProperty("filesystem").GetString());
        Assert.Equal(blkid["UUID"], big.GetProperty("uuid").GetString());
        Assert.Equal(blkid["LABEL"], big.GetProperty("label").GetString());
        Assert.Equal(FsTestImages.Pinned[kind].Uuid, big.GetProperty("uuid").GetString());
        Assert.Equal(FsTestImages.Pinned[kind].Label, big.GetProperty("label").GetString());
        Assert.Equal(int.Parse(volume.TrimStart('v', 'd', 'a'), CultureInfo.InvariantCulture), big.GetProperty("volume").GetInt32());

        r = DombootProcess.Run("fs", "stat", "--json", Spec(layout), "/dir");
        AssertOk(r);
        var dir = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal("directory", dir.GetProperty("type").GetString());
        if (KeepsModes(kind)) Assert.Equal("0750", dir.GetProperty("mode").GetString());

        if (HasSymlinks(kind))
        {
            r = DombootProcess.Run("fs", "stat", "--json", Spec(layout), "/link");
            AssertOk(r);
            var link = JsonDocument.Parse(r.Stdout).RootElement;
            Assert.Equal("symlink", link.GetProperty("type").GetString());
            Assert.Equal(FsTestImages.BigName, link.GetProperty("target").GetString());
            Assert.Equal(FsTestImages.BigName.Length, link.GetProperty("size").GetInt64());

            r = DombootProcess.Run("fs", "stat", "--json", "-L", Spec(layout), "/dir/sub/up");
            AssertOk(r);
            var followed = JsonDocument.Parse(r.Stdout).RootElement;
            Assert.Equal("regular", followed.GetProperty("type").GetString());
            Assert.Equal(big.GetProperty("id").GetInt64(), followed.GetProperty("id").GetInt64());
        }

        r = DombootProcess.Run("fs", "stat", Spec(layout), "/" + FsTestImages.LongName);
        AssertOk(r);
        Assert.Contains("  File: /" + FsTestImages.LongName, r.Stdout, StringComparison.Ordinal);
        Assert.Contains($"label {blkid["LABEL"]}  uuid {blkid["UUID"]}", r.Stdout, StringComparison.Ordinal);
        Assert.Contains($"({(volume.StartsWith('v') ? volume : "vda" + volume)}, {kind})", r.Stdout, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void WholeDisk_WithoutVolume(string kind)
    {
        var img = images.FileSystem(kind);
        var r = DombootProcess.Run("fs", "ls", img);
        AssertOk(r);
        Assert.Contains(FsTestImages.LongName, Lines(r.Stdout));
        var cat = DombootBytes.Run("fs", "cat", img, "/" + FsTestImages.BigName);
        Assert.Equal(0, cat.ExitCode);
        Assert.Equal(Tools.Sha256(Path.Combine(images.SourceFor(kind), FsTestImages.BigName)), Tools.Sha256(cat.Stdout));
        r = DombootProcess.Run("fs", "stat", "--json", img, "/");
        AssertOk(r);
        var root = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal("directory", root.GetProperty("type").GetString());
        Assert.Equal(0, root.GetProperty("volume").GetInt32());
        var blkid = Blkid(img, 0, new FileInfo(img).Length);
        Assert.Equal(blkid["UUID"], root.GetProperty("uuid").GetString());
        Assert.Equal(blkid["LABEL"], root.GetProperty("label").GetString());
    }

    [Fact]
    public void PartitionedQcow2_WithoutVolume_UsesTheOnlyFilesystem()
    {
        var (_, qcow2, _, _) = images.Disk("ext2");
        var r = DombootProcess.Run("fs", "stat", "--json", qcow2, "/dir/notes.txt");
        AssertOk(r);
        Assert.Equal(5, JsonDocument.Parse(r.Stdout).RootElement.GetProperty("volume").GetInt32());
    }

    [Theory]
    [InlineData("mbr")]
    [InlineData("gpt")]
    public void HybridIso_WithoutVolume_ReadsTheWholeDiskIso(string scheme)
    {
        // xorriso's hybrid layouts: an MBR whose partition 1 is the ISO from sector 0, or a GPT whose partition 1 is
        // the ISO re-rooted 16 blocks in; each with an appended ESP as partition 2.
        var efi = images.Scratch($"hybrid-{scheme}-efi.img");
        Tools.Run("mkfs.vfat", "-C", efi, "1440", "-n", "HYBESP", "-i", "0E0E0E0E");
        var iso = images.Scratch($"hybrid-{scheme}.iso");
        var args = new List<string> { "-as", "mkisofs", "-R", "-V", "HYBRID", "--modification-date=2024010203040500" };
        if (scheme == "gpt") args.AddRange(["-partition_offset", "16", "-append_partition", "2", "0xef", efi, "-appended_part_as_gpt"]);
        else args.AddRange(["-append_partition", "2", "0xef", efi]);
        args.AddRange(["-o", iso, images.Source]);
        Tools.Run("xorriso", args);
        Assert.Equal(scheme == "gpt" ? "gpt" : "dos", Tools.Run("sfdisk", "--json", iso).Stdout.Contains("\"label\": \"gpt\"", StringComparison.Ordinal) ? "gpt" : "dos");
        var bigSha = Tools.Sha256(Path.Combine(images.Source, FsTestImages.BigName));

        foreach (var spec in new[] { iso, iso + ":0", iso + ":1" })
        {
            var r = DombootProcess.Run("fs", "stat", "--json", spec, "/link");
            AssertOk(r);
            var st = JsonDocument.Parse(r.Stdout).RootElement;
            Assert.Equal("iso9660", st.GetProperty("filesystem").GetString());
            Assert.Equal("HYBRID", st.GetProperty("label").GetString());
            Assert.Equal(spec == iso + ":1" ? 1 : 0, st.GetProperty("volume").GetInt32());
            Assert.Equal(bigSha, Tools.Sha256(DombootBytes.Run("fs", "cat", spec, "/link").Stdout));
        }
        var esp = DombootProcess.Run("fs", "stat", "--json", iso + ":2", "/");
        AssertOk(esp);
        Assert.Equal("HYBESP", JsonDocument.Parse(esp.Stdout).RootElement.GetProperty("label").GetString());
        AssertOneLineError(DombootProcess.Run("fs", "ls", iso + ":9"), 66, "0 (vda), 1 (vda1), 2 (vda2)");
    }

    [Fact]
    public void TwoFilesystems_WithoutVolume_Exit64NamingBoth()
    {
        var (raw, _, _, _) = images.Disk("ext4");
        var disk = images.Copy(raw, "two-fs.raw");
        var esp = images.Scratch("first.img");
        Tools.Run("mkfs.vfat", "-C", esp, "1024", "-n", "FIRST");
        Tools.Run("dd", $"if={esp}", $"of={disk}", "bs=512", "seek=2048", "conv=notrunc", "status=none");
        var r = DombootProcess.Run("fs", "ls", disk);
        AssertOneLineError(r, 64, "2 filesystems", "1: vfat", "2: ext4", disk + ":N");
        AssertOk(DombootProcess.Run("fs", "ls", disk + ":1"));
        AssertOk(DombootProcess.Run("fs", "ls", disk + ":2"));
    }

    [Fact]
    public void MissingVolume_Exit66()
    {
        var (_, qcow2, _, _) = images.Disk("ext2");
        var r = DombootProcess.Run("fs", "ls", qcow2 + ":3");
        AssertOneLineError(r, 66, "no volume \"3\"", "5 (vda5)");
        r = DombootProcess.Run("fs", "cat", qcow2 + ":vda7", "/x");
        AssertOneLineError(r, 66, "no volume");
    }

    [Theory]
    [InlineData("ls")]
    [InlineData("cat")]
    [InlineData("stat")]
    public void MissingPath_Exit66(string verb)
    {
        var r = DombootProcess.Run("fs", verb, Spec("ext4"), "/dir/no-such-file");
        AssertOneLineError(r, 66, "no-such-file");
        r = DombootProcess.Run("fs", verb, Spec("xfs"), "/nowhere/deep.txt");
        AssertOneLineError(r, 66, "nowhere");
    }

    [Fact]
    public void MissingImage_Exit66()
    {
        AssertOneLineError(DombootProcess.Run("fs", "ls", "/nonexistent/disk.img:2"), 66, "/nonexistent/disk.img");
    }

    [Theory]
    [InlineData("ext4")]
    [InlineData("vfat")]
    [InlineData("iso9660")]
    public void CatDirectory_Exit64(string layout)
    {
        var r = DombootProcess.Run("fs", "cat", Spec(layout), "/dir");
        AssertOneLineError(r, 64, "/dir is a directory");
    }

    public static TheoryData<string, long, int> Magics => new()
    {
        { "ext4", 0x438, 2 },
        { "ext2", 0x438, 2 },
        { "xfs", 0, 4 },
        { "btrfs", 0x10040, 8 },
        { "vfat", 0, 1 },
        { "iso9660", 0x8001, 5 },
    };

    [Theory]
    [MemberData(nameof(Magics))]
    public void CorruptedMagic_Exit65OneLine(string kind, long offset, int length)
    {
        var img = images.Copy(images.FileSystem(kind), $"bad-magic-{kind}.img");
        Patch(img, offset, new byte[length]);
        AssertOneLineError(DombootProcess.Run("fs", "ls", img), 65, "no volume holds a filesystem");

        // the same damage inside a partition of a qcow2 disk, named by number
        var layout = FsTestImages.Layouts.First(l => l.Value.Kind == kind);
        var (raw, _, start, _) = images.Disk(layout.Key);
        var disk = images.Copy(raw, $"bad-magic-{kind}.raw");
        Patch(disk, start + offset, new byte[length]);
        var qcow2 = disk + ".qcow2";
        Tools.Run("qemu-img", "convert", "-O", "qcow2", disk, qcow2);
        AssertOneLineError(DombootProcess.Run("fs", "cat", qcow2 + ":" + layout.Value.Volume, "/big.bin"), 65, "holds no filesystem");
    }

    [Fact]
    public void CorruptedSuperblockField_Exit65WithOffset()
    {
        // ext4 s_log_block_size (superblock offset 0x18) = 40: a 2^50-byte block.
        var img = images.Copy(images.FileSystem("ext4"), "bad-block-size.img");
        Patch(img, 0x400 + 0x18, [40, 0, 0, 0]);
        var r = DombootProcess.Run("fs", "cat", img, "/big.bin");
        AssertOneLineError(r, 65, "offset 0x");
    }

    private static void Patch(string path, long offset, byte[] bytes)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Write);
        f.Position = offset;
        f.Write(bytes);
    }
}
