using System.Text;
using System.Text.Json;
using DomBoot.Storage.Disks;
using DomBoot.Storage.Partitions;
using DomBoot.Storage.Tests.Probing;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Disks;

public class DiskInspectorTests
{
    /// <summary>A dos disk (primary ext4, logical vfat and swap) converted to compressed qcow2.</summary>
    private static (string Raw, string Qcow2) MakeGuestDisk(TempDir dir)
    {
        var raw = dir.File("disk.raw");
        Tools.Run("truncate", "-s", "24M", raw);
        Tools.Run("sfdisk", ["-q", raw], stdin: """
            label: dos
            label-id: 0xcafe0001
            start=2048, size=10240, type=83, bootable
            start=12288, type=5
            start=14336, size=4096, type=c
            start=20480, size=8192, type=82
            """);
        Tools.Shell($"""
            set -e
            truncate -s 5M {dir.File("p1")}; mkfs.ext4 -q -F -U 44444444-1111-2222-3333-444444444444 -L root {dir.File("p1")}
            mkfs.vfat -C {dir.File("p5")} 2048 -i 1234ABCD -n ESP >/dev/null
            truncate -s 4M {dir.File("p6")}; mkswap -U 5a5a5a5a-1111-2222-3333-444444444444 {dir.File("p6")} >/dev/null
            dd if={dir.File("p1")} of={raw} bs=512 seek=2048 conv=notrunc status=none
            dd if={dir.File("p5")} of={raw} bs=512 seek=14336 conv=notrunc status=none
            dd if={dir.File("p6")} of={raw} bs=512 seek=20480 conv=notrunc status=none
            """);
        var q = dir.File("disk.qcow2");
        Tools.Run("qemu-img", "convert", "-c", "-O", "qcow2", raw, q);
        return (raw, q);
    }

    [Fact]
    public void Inspect_Qcow2DosDiskMatchesQemuImgSfdiskAndBlkid()
    {
        using var dir = new TempDir();
        var (raw, q) = MakeGuestDisk(dir);
        var report = DiskInspector.Inspect(q);
        var info = JsonDocument.Parse(Tools.Run("qemu-img", "info", "--output=json", q).Stdout).RootElement;
        Assert.Equal("qcow2", report.Format);
        Assert.Equal(info.GetProperty("virtual-size").GetInt64(), report.VirtualSize);
        Assert.Equal(info.GetProperty("cluster-size").GetInt32(), report.ClusterSize);
        Assert.Equal("dos", report.Layout.Scheme);
        Assert.Equal("cafe0001", report.Layout.DiskId);
        Assert.Equal([1, 2, 5, 6], report.Volumes.Select(v => v.Volume.Index));
        foreach (var vr in report.Volumes.Where(v => v.Volume.Kind != VolumeKind.Extended))
        {
            var blkid = FileSystemProbeTests.Blkid(raw, vr.Volume.StartInBytes, vr.Volume.SizeInBytes);
            FileSystemProbeTests.AssertMatchesBlkid(blkid, vr.FileSystem);
        }
        Assert.Equal("ext4", report.Volumes[0].FileSystem!.Type);
        Assert.Equal("vfat", report.Volumes[2].FileSystem!.Type);
        Assert.Equal("(hd0,msdos5)", report.Volumes[2].Volume.GrubName);
        Assert.Equal("cafe0001-06", report.Volumes[3].Volume.PartUuid);
        Assert.Null(report.WholeDisk);

        var json = Json([report]);
        var img = json.GetProperty("images")[0];
        Assert.Equal("qcow2", img.GetProperty("format").GetString());
        var v5 = img.GetProperty("volumes")[2];
        Assert.Equal("vda5", v5.GetProperty("linux-name").GetString());
        Assert.Equal("1234-ABCD", v5.GetProperty("filesystem").GetProperty("uuid").GetString());
        Assert.Equal("ESP", v5.GetProperty("filesystem").GetProperty("label").GetString());
        Assert.Equal("c", v5.GetProperty("type").GetString());
        Assert.Equal("active", img.GetProperty("volumes")[0].GetProperty("flags").GetString());

        Assert.Equal(1, VolumeResolver.Find([report], "UUID=44444444-1111-2222-3333-444444444444")?.Volume.Index);
        Assert.Equal(5, VolumeResolver.Find([report], "LABEL=ESP")?.Volume.Index);
        Assert.Equal(5, VolumeResolver.Find([report], "UUID=1234-abcd")?.Volume.Index);
        Assert.Equal(6, VolumeResolver.Find([report], "PARTUUID=CAFE0001-06")?.Volume.Index);
        Assert.Equal(6, VolumeResolver.Find([report], "/dev/vda6")?.Volume.Index);
        Assert.Equal(5, VolumeResolver.Find([report], "(hd0,msdos5)")?.Volume.Index);
        Assert.Null(VolumeResolver.Find([report], "vda2"));
        Assert.Null(VolumeResolver.Find([report], "LABEL=nothing"));

        var text = Text([report]);
        Assert.Contains("(hd0,msdos6)", text, StringComparison.Ordinal);
        Assert.Contains("44444444-1111-2222-3333-444444444444", text, StringComparison.Ordinal);
        Assert.Contains("partition table: dos, disk identifier 0xcafe0001", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Inspect_HybridIsoWithMbr()
    {
        using var dir = new TempDir();
        var iso = MakeHybridIso(dir, gpt: false);
        var report = DiskInspector.Inspect(iso);
        AssertMatchesSfdiskNodes(iso, report);
        FileSystemProbeTests.AssertMatchesBlkid(FileSystemProbeTests.Blkid(iso), report.WholeDisk);
        Assert.Equal("iso9660", report.Volumes[0].FileSystem!.Type);
        Assert.Equal("vfat", report.Volumes[1].FileSystem!.Type);
        Assert.Equal("EFIBOOT", report.Volumes[1].FileSystem!.Label);
    }

    [Fact]
    public void Inspect_HybridIsoWithGpt()
    {
        using var dir = new TempDir();
        var iso = MakeHybridIso(dir, gpt: true);
        var report = DiskInspector.Inspect(iso);
        Assert.Equal("gpt", report.Layout.Scheme);
        AssertMatchesSfdiskNodes(iso, report);
        FileSystemProbeTests.AssertMatchesBlkid(FileSystemProbeTests.Blkid(iso), report.WholeDisk);
        var esp = report.Volumes.Single(v => v.Volume.TypeName == "EFI System");
        Assert.Same(esp, VolumeResolver.Find([report], "PARTLABEL=Appended2"));
        Assert.Equal("vfat", esp.FileSystem!.Type);
        Assert.Equal("(hd0,gpt2)", esp.Volume.GrubName);
    }

    [Fact]
    public void Inspect_WholeDiskFilesystem()
    {
        using var dir = new TempDir();
        var p = dir.File("xen.img");
        Tools.Run("truncate", "-s", "8M", p);
        Tools.Run("mkfs.ext3", "-q", "-F", "-U", "33333333-1111-2222-3333-444444444444", "-L", "xenroot", p);
        var report = DiskInspector.Inspect(p, diskIndex: 1);
        Assert.Equal("raw", report.Format);
        Assert.Equal("none", report.Layout.Scheme);
        var v = Assert.Single(report.Volumes);
        Assert.Equal("vdb", v.Volume.LinuxName);
        Assert.Equal("(hd1)", v.Volume.GrubName);
        FileSystemProbeTests.AssertMatchesBlkid(FileSystemProbeTests.Blkid(p), v.FileSystem);
        var text = Text([report]);
        Assert.Contains("partition table: none", text, StringComparison.Ordinal);
        Assert.Contains("xenroot", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Inspect_MissingFileIsIOException()
    {
        Assert.ThrowsAny<IOException>(() => DiskInspector.Inspect("/nonexistent/disk.img"));
    }

    /// <summary>xorriso hybrid ISOs: an MBR whose partition 1 is the ISO and 2 an appended ESP, or the same as GPT.</summary>
    internal static string MakeHybridIso(TempDir dir, bool gpt)
    {
        var tree = dir.File("tree");
        Directory.CreateDirectory(tree);
        File.WriteAllText(Path.Combine(tree, "hello.txt"), "hello\n");
        var efi = dir.File("efi.img");
        Tools.Run("mkfs.vfat", "-C", efi, "1440", "-n", "EFIBOOT", "-i", "12345678");
        var iso = dir.File("hybrid.iso");
        var args = new List<string> { "-as", "mkisofs", "-V", "HYBRID", "-append_partition", "2", "0xef", efi };
        if (gpt) args.Add("-appended_part_as_gpt");
        args.AddRange(["-o", iso, tree]);
        Tools.Run("xorriso", args);
        return iso;
    }

    private static void AssertMatchesSfdiskNodes(string path, DiskReport report)
    {
        var pt = JsonDocument.Parse(Tools.Run("sfdisk", "--json", path).Stdout).RootElement.GetProperty("partitiontable");
        Assert.Equal(pt.GetProperty("label").GetString(), report.Layout.Scheme);
        var parts = pt.GetProperty("partitions").EnumerateArray().ToList();
        Assert.Equal(parts.Count, report.Volumes.Count);
        foreach (var (p, v) in parts.Zip(report.Volumes))
        {
            Assert.Equal(p.GetProperty("node").GetString(), path + v.Volume.Index);
            Assert.Equal(p.GetProperty("start").GetInt64() * 512, v.Volume.StartInBytes);
            Assert.Equal(p.GetProperty("size").GetInt64() * 512, v.Volume.SizeInBytes);
            Assert.Equal(p.GetProperty("type").GetString(), v.Volume.TypeCode);
        }
    }

    private static JsonElement Json(IReadOnlyList<DiskReport> reports)
    {
        using var ms = new MemoryStream();
        DiskReportRenderer.WriteJson(ms, reports);
        return JsonDocument.Parse(ms.ToArray()).RootElement.Clone();
    }

    private static string Text(IReadOnlyList<DiskReport> reports)
    {
        var sb = new StringBuilder();
        using var w = new StringWriter(sb);
        DiskReportRenderer.WriteText(w, reports);
        return sb.ToString();
    }
}

public class DiskCopyTests
{
    [Fact]
    public async Task CopyAsync_EqualsQemuImgConvertAndLeavesHoles()
    {
        using var dir = new TempDir();
        var src = Images.Qcow2TestImages.MakeSourceRaw(dir, "src.raw", 9 << 20);
        var q = Images.Qcow2TestImages.Convert(dir, src, "img.qcow2", "1.1", 65536, compressed: true);
        var expected = Images.Qcow2TestImages.ToRaw(dir, q, "q.raw");
        var ours = dir.File("ours.raw");
        await using (var f = new FileStream(ours, FileMode.CreateNew, FileAccess.Write))
            Assert.Equal(9L << 20, await DiskCopy.CopyAsync(q, 0, -1, f, sparse: true));
        Assert.Equal(Tools.Sha256(expected), Tools.Sha256(ours));

        using var ms = new MemoryStream();
        await DiskCopy.CopyAsync(q, 12345, 3_000_000, ms);
        Assert.True(File.ReadAllBytes(expected).AsSpan(12345, 3_000_000).SequenceEqual(ms.ToArray()));
    }

    [Fact]
    public async Task CopyAsync_RejectsRangePastTheEnd()
    {
        var r = new Formats.Binary.MemoryBlockReader(new byte[4096]);
        using var ms = new MemoryStream();
        await Assert.ThrowsAsync<Formats.Errors.TruncatedDataException>(() => DiskCopy.CopyAsync(r, 4000, 200, ms));
    }
}
