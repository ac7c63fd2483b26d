using System.Globalization;
using System.Text.Json;
using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Disk;

/// <summary>
/// `domboot disk inspect [--json]` on disks the real tools made, compared field by field with `sfdisk --json`,
/// `qemu-img info --output=json` and `blkid -p -o export` of each partition cut out with dd.
/// </summary>
public sealed class DiskCommandTests : IDisposable
{
    private readonly TempDir _dir = new("domboot-cli-disk");

    public void Dispose() => _dir.Dispose();

    private static string Inv(long v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>dos: ext4 primary (active), extended, vfat logical 5, swap logical 6, empty logical 7.</summary>
    private string MakeDosLogicalRaw()
    {
        var raw = _dir.File("dos.raw");
        Tools.Run("truncate", "-s", "24M", raw);
        Tools.Run("sfdisk", ["-q", raw], stdin: """
            label: dos
            label-id: 0x5eed0001
            start=2048, size=8192, type=83, bootable
            start=10240, type=5
            start=12288, size=4096, type=c
            start=18432, size=4096, type=82
            start=24576, size=4096, type=83
            """);
        Tools.Shell($"""
            set -e
            truncate -s 4M {_dir.File("p1")}; mkfs.ext4 -q -F -U 10101010-1111-4222-8333-444444444444 -L dosroot {_dir.File("p1")}
            mkfs.vfat -C {_dir.File("p5")} 2048 -i 0BADF00D -n LOGICAL5 >/dev/null
            truncate -s 2M {_dir.File("p6")}; mkswap -U 60606060-1111-4222-8333-444444444444 -L swap6 {_dir.File("p6")} >/dev/null
            dd if={_dir.File("p1")} of={raw} bs=512 seek=2048 conv=notrunc status=none
            dd if={_dir.File("p5")} of={raw} bs=512 seek=12288 conv=notrunc status=none
            dd if={_dir.File("p6")} of={raw} bs=512 seek=18432 conv=notrunc status=none
            """);
        return raw;
    }

    /// <summary>gpt by sgdisk: BIOS boot (no fs), ESP (vfat), root (ext4, "legacy BIOS bootable" attribute), all named.</summary>
    private string MakeSgdiskGptRaw(string name = "gpt.raw")
    {
        var raw = _dir.File(name);
        Tools.Run("truncate", "-s", "20M", raw);
        Tools.Run("sgdisk", "-o", "-U", "6B6B6B6B-1111-4222-8333-444444444444",
            "-n", "1:2048:+1M", "-t", "1:ef02", "-c", "1:BIOS boot", "-u", "1:6B6B6B6B-1111-4222-8333-0000000000A1",
            "-n", "2:0:+4M", "-t", "2:ef00", "-c", "2:EFI system", "-u", "2:6B6B6B6B-1111-4222-8333-0000000000A2",
            "-n", "3:0:+8M", "-t", "3:8300", "-c", "3:root fs", "-u", "3:6B6B6B6B-1111-4222-8333-0000000000A3", "-A", "3:set:2",
            raw);
        var esp = _dir.File(name + ".esp");
        var root = _dir.File(name + ".root");
        Tools.Run("mkfs.vfat", "-C", esp, "4096", "-i", "E5E5E5E5", "-n", "GPTESP");
        Tools.Run("truncate", "-s", "8M", root);
        Tools.Run("mkfs.ext4", "-q", "-F", "-U", "30303030-1111-4222-8333-444444444444", "-L", "gptroot", root);
        var sfdisk = SfdiskPartitions(raw);
        Tools.Run("dd", $"if={esp}", $"of={raw}", "bs=512", "seek=" + Inv(sfdisk[1].GetProperty("start").GetInt64()), "conv=notrunc", "status=none");
        Tools.Run("dd", $"if={root}", $"of={raw}", "bs=512", "seek=" + Inv(sfdisk[2].GetProperty("start").GetInt64()), "conv=notrunc", "status=none");
        return raw;
    }

    /// <summary>A GPT hybrid ISO: the ISO9660 tree, its partition 1 at 16 blocks' offset, an appended ESP as partition 2.</summary>
    private string MakeHybridIso()
    {
        var tree = _dir.File("tree");
        Directory.CreateDirectory(Path.Combine(tree, "boot"));
        File.WriteAllText(Path.Combine(tree, "boot", "hello.txt"), "hello\n");
        var efi = _dir.File("efi.img");
        Tools.Run("mkfs.vfat", "-C", efi, "1440", "-n", "EFIBOOT", "-i", "12345678");
        var iso = _dir.File("hybrid.iso");
        Tools.Run("xorriso", "-as", "mkisofs", "-R", "-J", "-V", "HYBRIDISO", "--modification-date=2024010203040500",
            "-partition_offset", "16", "-append_partition", "2", "0xef", efi, "-appended_part_as_gpt", "-o", iso, tree);
        return iso;
    }

    private static List<JsonElement> SfdiskPartitions(string raw) =>
        [.. JsonDocument.Parse(Tools.Run("sfdisk", "--json", raw).Stdout).RootElement
            .GetProperty("partitiontable").GetProperty("partitions").EnumerateArray().Select(e => e.Clone())];

    private static JsonElement SfdiskTable(string raw) =>
        JsonDocument.Parse(Tools.Run("sfdisk", "--json", raw).Stdout).RootElement.GetProperty("partitiontable").Clone();

    private static JsonElement QemuImgInfo(string image) =>
        JsonDocument.Parse(Tools.Run("qemu-img", "info", "--output=json", image).Stdout).RootElement.Clone();

    /// <summary>blkid -p -o export of <paramref name="sizeBytes"/> bytes at <paramref name="startBytes"/>, cut out with dd.</summary>
    private Dictionary<string, string> BlkidOfRange(string raw, long startBytes, long sizeBytes)
    {
        var part = _dir.File($"part-{Guid.NewGuid():N}");
        Tools.Run("dd", $"if={raw}", $"of={part}", "bs=512", "skip=" + Inv(startBytes / 512), "count=" + Inv(sizeBytes / 512), "status=none");
        var r = Tools.Run("blkid", ["-p", "-o", "export", part], check: false);
        File.Delete(part);
        return r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('=', 2)).Where(kv => kv.Length == 2)
            .ToDictionary(kv => kv[0], kv => kv[1].Replace("\\ ", " ", StringComparison.Ordinal));
    }

    private static JsonElement Inspect(params string[] images)
    {
        var r = DombootProcess.Run(["disk", "inspect", "--json", .. images]);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        return JsonDocument.Parse(r.Stdout).RootElement.GetProperty("images").Clone();
    }

    private static string InspectText(params string[] images)
    {
        var r = DombootProcess.Run(["disk", "inspect", .. images]);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        return r.Stdout;
    }

    private static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    /// <summary>Image-level fields against qemu-img info.</summary>
    private static void AssertMatchesQemuImg(string image, JsonElement ours)
    {
        var info = QemuImgInfo(image);
        Assert.Equal(info.GetProperty("format").GetString(), ours.GetProperty("format").GetString());
        Assert.Equal(info.GetProperty("virtual-size").GetInt64(), ours.GetProperty("virtual-size").GetInt64());
        Assert.Equal(new FileInfo(image).Length, ours.GetProperty("file-size").GetInt64());
        if (info.TryGetProperty("cluster-size", out var cs)) Assert.Equal(cs.GetInt32(), ours.GetProperty("cluster-size").GetInt32());
        var chain = ours.GetProperty("backing-chain").EnumerateArray().Select(b => b.GetString()).ToList();
        if (Str(info, "full-backing-filename") is { } backing) Assert.Equal(backing, chain.FirstOrDefault());
        else Assert.Empty(chain);
    }

    /// <summary>Partition fields against sfdisk --json, filesystems against blkid of each partition.</summary>
    private void AssertMatchesSfdiskAndBlkid(string raw, JsonElement ours)
    {
        var table = SfdiskTable(raw);
        var pt = ours.GetProperty("partition-table");
        Assert.Equal(table.GetProperty("label").GetString(), pt.GetProperty("type").GetString());
        Assert.Equal(table.GetProperty("sectorsize").GetInt32(), pt.GetProperty("sector-size").GetInt32());
        string id = table.GetProperty("id").GetString()!;
        Assert.Equal(id.StartsWith("0x", StringComparison.Ordinal) ? id[2..] : id, pt.GetProperty("id").GetString(), ignoreCase: true);

        var parts = table.GetProperty("partitions").EnumerateArray().ToList();
        var volumes = ours.GetProperty("volumes").EnumerateArray().ToList();
        Assert.Equal(parts.Count, volumes.Count);
        foreach (var (p, v) in parts.Zip(volumes))
        {
            string node = p.GetProperty("node").GetString()!;
            Assert.Equal(raw + Inv(v.GetProperty("number").GetInt32()), node);
            Assert.Equal(p.GetProperty("start").GetInt64() * 512, v.GetProperty("start").GetInt64());
            Assert.Equal(p.GetProperty("size").GetInt64() * 512, v.GetProperty("size").GetInt64());
            Assert.Equal(p.GetProperty("type").GetString(), v.GetProperty("type").GetString(), ignoreCase: true);
            Assert.Equal(Str(p, "name"), Str(v, "name"));
            if (Str(p, "uuid") is { } partUuid) Assert.Equal(partUuid, Str(v, "partuuid"), ignoreCase: true);
            // dos: the 0x80 boot flag; gpt: attribute bit 2, "legacy BIOS bootable"
            bool bootable = p.TryGetProperty("bootable", out var boot) ? boot.GetBoolean()
                : Str(p, "attrs")?.Contains("LegacyBIOSBootable", StringComparison.Ordinal) == true;
            Assert.Equal(bootable, v.GetProperty("active").GetBoolean());
            if (Str(p, "attrs") is { } attrs) Assert.Equal(attrs, Str(v, "flags"));
            if (v.GetProperty("kind").GetString() == "extended")
            {
                Assert.Equal(JsonValueKind.Null, v.GetProperty("filesystem").ValueKind);
                continue;
            }
            var blkid = BlkidOfRange(raw, v.GetProperty("start").GetInt64(), v.GetProperty("size").GetInt64());
            var fs = v.GetProperty("filesystem");
            if (!blkid.TryGetValue("TYPE", out var type))
            {
                Assert.True(fs.ValueKind == JsonValueKind.Null, $"{node}: blkid finds nothing, domboot says {fs}");
                continue;
            }
            Assert.True(fs.ValueKind == JsonValueKind.Object, $"{node}: blkid finds {type}, domboot nothing");
            Assert.Equal(type, Str(fs, "type"));
            Assert.Equal(blkid.GetValueOrDefault("UUID"), Str(fs, "uuid"));
            Assert.Equal(blkid.GetValueOrDefault("LABEL"), Str(fs, "label"));
        }
    }

    [Fact]
    public void InspectJson_Qcow2DosDiskWithLogicalPartitions()
    {
        var raw = MakeDosLogicalRaw();
        var qcow2 = _dir.File("dos.qcow2");
        Tools.Run("qemu-img", "convert", "-c", "-O", "qcow2", "-o", "cluster_size=16384", raw, qcow2);
        var img = Assert.Single(Inspect(qcow2).EnumerateArray());
        Assert.Equal(qcow2, img.GetProperty("path").GetString());
        AssertMatchesQemuImg(qcow2, img);
        Assert.Equal(16384, img.GetProperty("cluster-size").GetInt32());
        AssertMatchesSfdiskAndBlkid(raw, img);
        var vols = img.GetProperty("volumes").EnumerateArray().ToList();
        Assert.Equal([1, 2, 5, 6, 7], vols.Select(v => v.GetProperty("number").GetInt32()));
        Assert.Equal(["primary", "extended", "logical", "logical", "logical"], vols.Select(v => v.GetProperty("kind").GetString()));
        Assert.Equal(["vda1", "vda2", "vda5", "vda6", "vda7"], vols.Select(v => v.GetProperty("linux-name").GetString()));
        Assert.Equal("(hd0,msdos5)", vols[2].GetProperty("grub-name").GetString());
        Assert.Equal("5eed0001-05", vols[2].GetProperty("partuuid").GetString());
        Assert.Equal("swap", vols[3].GetProperty("filesystem").GetProperty("type").GetString());
        Assert.Equal(JsonValueKind.Null, img.GetProperty("filesystem").ValueKind);

        var text = InspectText(qcow2);
        Assert.Contains($"{qcow2}: qcow2, 24 MiB", text, StringComparison.Ordinal);
        Assert.Contains("partition table: dos, disk identifier 0x5eed0001", text, StringComparison.Ordinal);
        foreach (var dev in new[] { "vda1", "vda5", "vda6", "(hd0,msdos1)", "(hd0,msdos5)", "LOGICAL5", "0BAD-F00D", "dosroot" })
            Assert.Contains(dev, text, StringComparison.Ordinal);
        var line5 = Assert.Single(text.Split('\n'), l => l.TrimStart().StartsWith("vda5 ", StringComparison.Ordinal));
        Assert.Contains("(hd0,msdos5)", line5, StringComparison.Ordinal);
        Assert.Contains("vfat", line5, StringComparison.Ordinal);
    }

    [Fact]
    public void InspectJson_SgdiskGptWithNames()
    {
        var raw = MakeSgdiskGptRaw();
        var img = Assert.Single(Inspect(raw).EnumerateArray());
        AssertMatchesQemuImg(raw, img);
        AssertMatchesSfdiskAndBlkid(raw, img);
        Assert.Equal("6b6b6b6b-1111-4222-8333-444444444444", img.GetProperty("partition-table").GetProperty("id").GetString(), ignoreCase: true);
        Assert.False(img.GetProperty("partition-table").GetProperty("backup-gpt-used").GetBoolean());
        var vols = img.GetProperty("volumes").EnumerateArray().ToList();
        Assert.Equal(["BIOS boot", "EFI system", "root fs"], vols.Select(v => v.GetProperty("name").GetString()));
        Assert.Equal(["(hd0,gpt1)", "(hd0,gpt2)", "(hd0,gpt3)"], vols.Select(v => v.GetProperty("grub-name").GetString()));
        Assert.Equal(4, vols[2].GetProperty("attributes").GetInt64());

        var text = InspectText(raw);
        Assert.Contains("partition table: gpt", text, StringComparison.Ordinal);
        Assert.Contains("root fs", text, StringComparison.Ordinal);
        Assert.Contains("(hd0,gpt3)", text, StringComparison.Ordinal);
    }

    [Fact]
    public void InspectJson_GptWithPrimaryHeaderBrokenUsesBackup()
    {
        var raw = MakeSgdiskGptRaw();
        Patch(raw, 512 + 16, [0xFF]); // primary header CRC32
        var img = Assert.Single(Inspect(raw).EnumerateArray());
        Assert.True(img.GetProperty("partition-table").GetProperty("backup-gpt-used").GetBoolean());
        Assert.Equal(3, img.GetProperty("volumes").GetArrayLength());
        Assert.Contains("read from the backup GPT header", InspectText(raw), StringComparison.Ordinal);
    }

    [Fact]
    public void InspectJson_HybridIso()
    {
        var iso = MakeHybridIso();
        var img = Assert.Single(Inspect(iso).EnumerateArray());
        AssertMatchesQemuImg(iso, img);
        AssertMatchesSfdiskAndBlkid(iso, img);
        // the whole disk is the ISO9660 filesystem too, as blkid sees it
        var blkid = BlkidOfRange(iso, 0, new FileInfo(iso).Length);
        var whole = img.GetProperty("filesystem");
        Assert.Equal("iso9660", blkid["TYPE"]);
        Assert.Equal(blkid["TYPE"], Str(whole, "type"));
        Assert.Equal(blkid["UUID"], Str(whole, "uuid"));
        Assert.Equal(blkid["LABEL"], Str(whole, "label"));
        Assert.Equal("2024-01-02-03-04-05-00", Str(whole, "uuid"));
        var vols = img.GetProperty("volumes").EnumerateArray().ToList();
        Assert.Equal("iso9660", vols[0].GetProperty("filesystem").GetProperty("type").GetString());
        Assert.Equal(32768, vols[0].GetProperty("start").GetInt64());
        Assert.Equal("EFIBOOT", vols[1].GetProperty("filesystem").GetProperty("label").GetString());

        var text = InspectText(iso);
        Assert.Contains("whole disk: iso9660 UUID=2024-01-02-03-04-05-00 LABEL=\"HYBRIDISO\"", text, StringComparison.Ordinal);
        Assert.Contains("(hd0,gpt2)", text, StringComparison.Ordinal);
    }

    [Fact]
    public void InspectJson_Qcow2BackingChain()
    {
        var raw = MakeSgdiskGptRaw();
        var basePath = _dir.File("base.qcow2");
        var mid = _dir.File("mid.qcow2");
        var top = _dir.File("top.qcow2");
        Tools.Run("qemu-img", "convert", "-O", "qcow2", "-o", "compat=0.10", raw, basePath);
        // relative backing names, resolved against the image's folder as QEMU does
        Tools.Run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "mid.qcow2"], workingDirectory: _dir.Path);
        Tools.Run("qemu-img", ["create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2"], workingDirectory: _dir.Path);

        var images = Inspect(top, basePath).EnumerateArray().ToList();
        var img = images[0];
        AssertMatchesQemuImg(top, img);
        AssertMatchesSfdiskAndBlkid(raw, img);
        var chain = JsonDocument.Parse(Tools.Run("qemu-img", "info", "--backing-chain", "--output=json", top).Stdout).RootElement;
        Assert.Equal(chain.EnumerateArray().Skip(1).Select(i => i.GetProperty("filename").GetString()),
            img.GetProperty("backing-chain").EnumerateArray().Select(b => b.GetString()));
        Assert.Equal([mid, basePath], img.GetProperty("backing-chain").EnumerateArray().Select(b => b.GetString()));
        Assert.Equal(3, img.GetProperty("qcow2-version").GetInt32());

        var b = images[1];
        AssertMatchesQemuImg(basePath, b);
        Assert.Equal(2, b.GetProperty("qcow2-version").GetInt32());
        Assert.Equal(["vdb1", "vdb2", "vdb3"], b.GetProperty("volumes").EnumerateArray().Select(v => v.GetProperty("linux-name").GetString()));
        Assert.Equal("(hd1,gpt2)", b.GetProperty("volumes")[1].GetProperty("grub-name").GetString());

        var text = InspectText(top);
        Assert.Contains("backing file: " + mid, text, StringComparison.Ordinal);
        Assert.Contains("backing file: " + basePath, text, StringComparison.Ordinal);
    }

    [Fact]
    public void InspectText_WholeDiskFilesystem()
    {
        var img = _dir.File("xen.img");
        Tools.Run("truncate", "-s", "6M", img);
        Tools.Run("mkfs.ext3", "-q", "-F", "-U", "3e3e3e3e-1111-4222-8333-444444444444", "-L", "xenroot", img);
        var j = Assert.Single(Inspect(img).EnumerateArray());
        Assert.Equal("none", j.GetProperty("partition-table").GetProperty("type").GetString());
        var v = Assert.Single(j.GetProperty("volumes").EnumerateArray());
        Assert.Equal("whole-disk", v.GetProperty("kind").GetString());
        Assert.Equal("(hd0)", v.GetProperty("grub-name").GetString());
        var blkid = BlkidOfRange(img, 0, new FileInfo(img).Length);
        Assert.Equal(blkid["UUID"], Str(v.GetProperty("filesystem"), "uuid"));
        Assert.Equal(blkid["TYPE"], Str(v.GetProperty("filesystem"), "type"));
        var text = InspectText(img);
        Assert.Contains("partition table: none", text, StringComparison.Ordinal);
        Assert.Contains("xenroot", text, StringComparison.Ordinal);
    }

    private static void AssertOneLineError(DombootProcess.Result r, int exit, params string[] contains)
    {
        Assert.True(r.ExitCode == exit, $"exit {r.ExitCode}, expected {exit}: {r.Stderr}");
        var lines = r.Stderr.TrimEnd('\n').Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("domboot: error: ", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
        foreach (var c in contains) Assert.Contains(c, lines[0], StringComparison.Ordinal);
    }

    [Fact]
    public void Inspect_GptCrcBrokenInBothCopies_Exit65()
    {
        var raw = MakeSgdiskGptRaw();
        Patch(raw, 512 + 16, [0xFF]);
        Patch(raw, new FileInfo(raw).Length - 512 + 16, [0xFF]);
        var r = DombootProcess.Run("disk", "inspect", raw);
        AssertOneLineError(r, 65, "GPT header at offset 0x210", "CRC32");
        AssertOneLineError(DombootProcess.Run("disk", "inspect", "--json", raw), 65, "GPT header");
        Assert.Equal("", DombootProcess.Run("disk", "inspect", "--json", raw).Stdout);
    }

    [Fact]
    public void Inspect_EbrLoop_Exit65()
    {
        var raw = MakeDosLogicalRaw();
        // The first EBR is at LBA 10240; its second entry links to the next EBR, relative to the extended partition:
        // 0 points it back at itself.
        Patch(raw, 10240 * 512 + 0x1BE + 16 + 8, [0, 0, 0, 0]);
        var qcow2 = _dir.File("loop.qcow2");
        Tools.Run("qemu-img", "convert", "-O", "qcow2", raw, qcow2);
        var r = DombootProcess.Run("disk", "inspect", qcow2);
        AssertOneLineError(r, 65, "EBR", "loops");
        AssertOneLineError(DombootProcess.Run("fs", "ls", qcow2 + ":1"), 65, "EBR");
    }

    [Fact]
    public void Inspect_BackingFileLoop_Exit65()
    {
        var img = _dir.File("self.qcow2");
        Tools.Run("qemu-img", "create", "-q", "-f", "qcow2", img, "1M");
        Tools.Run("qemu-img", "rebase", "-u", "-b", img, "-F", "qcow2", img);
        AssertOneLineError(DombootProcess.Run("disk", "inspect", img), 65, "loops");
    }

    [Fact]
    public void Inspect_MissingImage_Exit66()
    {
        var ok = MakeSgdiskGptRaw();
        AssertOneLineError(DombootProcess.Run("disk", "inspect", ok, _dir.File("absent.qcow2")), 66, "absent.qcow2");
    }

    private static void Patch(string path, long offset, byte[] bytes)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Write);
        f.Position = offset;
        f.Write(bytes);
    }
}
