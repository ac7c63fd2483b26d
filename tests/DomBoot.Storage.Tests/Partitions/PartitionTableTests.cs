using System.Buffers.Binary;
using System.Text.Json;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;
using DomBoot.Storage.Images;
using DomBoot.Storage.Partitions;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Partitions;

public class PartitionTableTests
{
    private const string DosScript = """
        label: dos
        label-id: 0x12345678
        start=2048, size=4096, type=83, bootable
        start=6144, size=2048, type=82
        start=8192, type=5
        start=10240, size=4096, type=83
        start=16384, size=2048, type=c
        start=20480, size=2048, type=83
        """;

    private const string GptScript = """
        label: gpt
        label-id: 01234567-89AB-CDEF-0123-456789ABCDEF
        start=2048, size=4096, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=11111111-2222-3333-4444-555555555555, name="EFI system", attrs="RequiredPartition LegacyBIOSBootable"
        start=6144, size=8192, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE, name="root ünïcode", attrs="GUID:60,63"
        start=16384, size=2048, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, uuid=00000000-1111-2222-3333-444444444444
        """;

    internal static string MakeDisk(TempDir dir, string name, string script, string size = "16M")
    {
        var p = dir.File(name);
        Tools.Run("truncate", "-s", size, p);
        Tools.Run("sfdisk", ["-q", p], stdin: script);
        return p;
    }

    private static JsonElement Sfdisk(string path) =>
        JsonDocument.Parse(Tools.Run("sfdisk", "--json", path).Stdout).RootElement.GetProperty("partitiontable").Clone();

    /// <summary>Checks every partition sfdisk lists against ours: number, start, size, type, flags, GPT uuid/name/attrs.</summary>
    private static void AssertMatchesSfdisk(string path, PartitionLayout layout)
    {
        var pt = Sfdisk(path);
        Assert.Equal(pt.GetProperty("label").GetString(), layout.Scheme);
        var parts = pt.GetProperty("partitions").EnumerateArray().ToList();
        Assert.Equal(parts.Count, layout.Volumes.Count);
        foreach (var (p, v) in parts.Zip(layout.Volumes))
        {
            Assert.Equal(p.GetProperty("node").GetString(), path + v.Index);
            Assert.Equal(p.GetProperty("start").GetInt64() * 512, v.StartInBytes);
            Assert.Equal(p.GetProperty("size").GetInt64() * 512, v.SizeInBytes);
            Assert.Equal(p.GetProperty("type").GetString(), v.TypeCode);
            if (layout.Scheme == "dos")
            {
                Assert.Equal(p.TryGetProperty("bootable", out var b) && b.GetBoolean(), v.Active);
            }
            else
            {
                Assert.Equal(p.GetProperty("uuid").GetString()!.ToLowerInvariant(), v.PartUuid);
                Assert.Equal(p.TryGetProperty("name", out var n) ? n.GetString() : "", v.Name);
                Assert.Equal(p.TryGetProperty("attrs", out var a) ? a.GetString() : "", v.Flags);
            }
        }
        if (layout.Scheme == "dos") Assert.Equal(pt.GetProperty("id").GetString(), "0x" + layout.DiskId);
        else Assert.Equal(pt.GetProperty("id").GetString()!.ToLowerInvariant(), layout.DiskId);
    }

    [Fact]
    public void Read_DosWithLogicalPartitionsMatchesSfdisk()
    {
        using var dir = new TempDir();
        var p = MakeDisk(dir, "dos.img", DosScript);
        using var disk = new FileBlockReader(p);
        var layout = PartitionTable.Read(disk, diskIndex: 1);
        AssertMatchesSfdisk(p, layout);
        var v5 = layout.Volumes.Single(v => v.Index == 5);
        Assert.Equal(VolumeKind.Logical, v5.Kind);
        Assert.Equal("vdb5", v5.LinuxName);
        Assert.Equal("(hd1,msdos5)", v5.GrubName);
        Assert.Equal("12345678-05", v5.PartUuid);
        Assert.Equal(VolumeKind.Extended, layout.Volumes.Single(v => v.Index == 3).Kind);
        Assert.Equal("active", layout.Volumes[0].Flags);
        Assert.Equal("W95 FAT32 (LBA)", layout.Volumes.Single(v => v.Index == 6).TypeName);
    }

    [Fact]
    public void Read_PartUuidMatchesBlkid()
    {
        using var dir = new TempDir();
        var p = MakeDisk(dir, "dos.img", DosScript);
        var blkid = Tools.Run("blkid", "-p", "-o", "export", "-s", "PTUUID", p).Stdout;
        Assert.Contains("PTUUID=12345678", blkid, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_GptMatchesSfdisk()
    {
        using var dir = new TempDir();
        var p = MakeDisk(dir, "gpt.img", GptScript);
        using var disk = new FileBlockReader(p);
        var layout = PartitionTable.Read(disk);
        AssertMatchesSfdisk(p, layout);
        Assert.False(layout.UsedBackupGpt);
        Assert.Equal(512, layout.SectorSize);
        var v2 = layout.Volumes[1];
        Assert.Equal("root ünïcode", v2.Name);
        Assert.Equal("vda2", v2.LinuxName);
        Assert.Equal("(hd0,gpt2)", v2.GrubName);
        Assert.Equal("Linux filesystem", v2.TypeName);
        Assert.True(layout.Volumes[0].Active);
    }

    [Fact]
    public void Read_SgdiskGptWithGapInNumbering()
    {
        using var dir = new TempDir();
        var p = dir.File("sg.img");
        Tools.Run("truncate", "-s", "16M", p);
        Tools.Run("sgdisk", "-U", "D1D1D1D1-0000-4000-8000-000000000001",
            "-n", "1:2048:+2M", "-t", "1:ef02", "-c", "1:bios", "-u", "1:D1D1D1D1-0000-4000-8000-0000000000A1",
            "-n", "3:0:+4M", "-t", "3:8300", "-c", "3:data", "-u", "3:D1D1D1D1-0000-4000-8000-0000000000A3", p);
        using var disk = new FileBlockReader(p);
        var layout = PartitionTable.Read(disk);
        AssertMatchesSfdisk(p, layout);
        Assert.Equal([1, 3], layout.Volumes.Select(v => v.Index));
        Assert.Equal("BIOS boot", layout.Volumes[0].TypeName);
        Assert.Equal("vda3", layout.Volumes[1].LinuxName);
        Assert.Equal("d1d1d1d1-0000-4000-8000-000000000001", layout.DiskId);
    }

    [Fact]
    public void Read_Gpt4096ByteSectors()
    {
        using var dir = new TempDir();
        var p = dir.File("g4k.img");
        Tools.Run("truncate", "-s", "16M", p);
        Tools.Run("fdisk", ["-b", "4096", p], stdin: "g\nn\n1\n\n+2M\nn\n2\n\n+4M\nw\n");
        var listing = Tools.Run("fdisk", "-b", "4096", "-l", p).Stdout;
        using var disk = new FileBlockReader(p);
        var layout = PartitionTable.Read(disk);
        Assert.Equal("gpt", layout.Scheme);
        Assert.Equal(4096, layout.SectorSize);
        Assert.Equal(2, layout.Volumes.Count);
        foreach (var v in layout.Volumes)
        {
            var line = listing.Split('\n').Single(l => l.StartsWith(p + v.Index + " ", StringComparison.Ordinal));
            var cols = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(long.Parse(cols[1], System.Globalization.CultureInfo.InvariantCulture) * 4096, v.StartInBytes);
            Assert.Equal(long.Parse(cols[3], System.Globalization.CultureInfo.InvariantCulture) * 4096, v.SizeInBytes);
        }
    }

    [Fact]
    public void Read_FallsBackToBackupGptWhenPrimaryHeaderIsDamaged()
    {
        using var dir = new TempDir();
        var p = MakeDisk(dir, "gpt.img", GptScript);
        var bytes = File.ReadAllBytes(p);
        bytes.AsSpan(512, 512).Clear();
        var layout = PartitionTable.Read(new MemoryBlockReader(bytes));
        Assert.True(layout.UsedBackupGpt);
        AssertMatchesSfdisk(p, layout);
    }

    [Fact]
    public void Read_FallsBackToBackupGptWhenPrimaryEntriesAreDamaged()
    {
        using var dir = new TempDir();
        var p = MakeDisk(dir, "gpt.img", GptScript);
        var bytes = File.ReadAllBytes(p);
        bytes[1024 + 60] ^= 0x40; // a name character of entry 1 in the primary array
        var layout = PartitionTable.Read(new MemoryBlockReader(bytes));
        Assert.True(layout.UsedBackupGpt);
        Assert.Equal("EFI system", layout.Volumes[0].Name);
    }

    [Fact]
    public void Read_NoPartitionTableIsOneWholeDiskVolume()
    {
        using var dir = new TempDir();
        var p = dir.File("whole.img");
        Tools.Run("truncate", "-s", "8M", p);
        Tools.Run("mkfs.ext4", "-q", "-F", p);
        using var disk = new FileBlockReader(p);
        var layout = PartitionTable.Read(disk, diskIndex: 2);
        Assert.Equal("none", layout.Scheme);
        var v = Assert.Single(layout.Volumes);
        Assert.Equal(VolumeKind.WholeDisk, v.Kind);
        Assert.Equal(0, v.Index);
        Assert.Equal("vdc", v.LinuxName);
        Assert.Equal("(hd2)", v.GrubName);
        Assert.Equal(disk.Length, v.SizeInBytes);
    }

    [Fact]
    public void Read_WholeDiskFatIsNotTakenForAnMbr()
    {
        using var dir = new TempDir();
        var p = dir.File("fat.img");
        Tools.Run("mkfs.vfat", "-C", p, "4096");
        using var disk = new FileBlockReader(p);
        Assert.Equal("none", PartitionTable.Read(disk).Scheme);
    }

    [Fact]
    public void Read_EmptyDosLabelHasNoVolumes()
    {
        using var dir = new TempDir();
        var p = MakeDisk(dir, "empty.img", "label: dos\n");
        using var disk = new FileBlockReader(p);
        var layout = PartitionTable.Read(disk);
        Assert.Equal("dos", layout.Scheme);
        Assert.Empty(layout.Volumes);
    }

    [Fact]
    public void DiskNames_FollowLinuxAndGrub()
    {
        Assert.Equal("vda", DiskNames.Linux(0));
        Assert.Equal("vdz", DiskNames.Linux(25));
        Assert.Equal("vdaa", DiskNames.Linux(26));
        Assert.Equal("vdab", DiskNames.Linux(27));
        Assert.Equal("vdba", DiskNames.Linux(52));
        Assert.Equal("hd3", DiskNames.Grub(3));
    }

    [Fact]
    public void Crc32_MatchesTheCheckValue()
    {
        Assert.Equal(0xCBF43926u, Crc32.Compute("123456789"u8));
        Assert.Equal(0u, Crc32.Compute([]));
    }

    // ---- malformed input ----

    /// <summary>Patches a GPT header field and recomputes the header CRC so the field check itself is what fails.</summary>
    private static void PatchGptHeader(byte[] disk, long lba, int field, uint value)
    {
        var h = disk.AsSpan((int)(lba * 512), 512);
        BinaryPrimitives.WriteUInt32LittleEndian(h[field..], value);
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(h[GptHeader.Offsets.HeaderSize..]);
        BinaryPrimitives.WriteUInt32LittleEndian(h[GptHeader.Offsets.HeaderCrc32..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(h[GptHeader.Offsets.HeaderCrc32..], Crc32.Compute(h[..(int)Math.Min(size, 512)]));
    }

    public static TheoryData<string, int, uint> GptHeaderMutations => new()
    {
        { "2^32-1 entries", GptHeader.Offsets.NumberOfPartitionEntries, uint.MaxValue },
        { "65536 entries", GptHeader.Offsets.NumberOfPartitionEntries, 65536 },
        { "entry size 0", GptHeader.Offsets.SizeOfPartitionEntry, 0 },
        { "entry size 2^31", GptHeader.Offsets.SizeOfPartitionEntry, 1u << 31 },
        { "entry size 129", GptHeader.Offsets.SizeOfPartitionEntry, 129 },
        { "header size 8", GptHeader.Offsets.HeaderSize, 8 },
        { "header size 4096", GptHeader.Offsets.HeaderSize, 4096 },
        { "entries past end", GptHeader.Offsets.PartitionEntryLba, 0x7FFFFFFF },
        { "revision 2", GptHeader.Offsets.Revision, 0x00020000 },
    };

    [Theory]
    [MemberData(nameof(GptHeaderMutations))]
    public void Parse_RejectsBadGptHeaderField(string what, int field, uint value)
    {
        _ = what;
        using var dir = new TempDir();
        var p = MakeDisk(dir, "gpt.img", GptScript);
        var bytes = File.ReadAllBytes(p);
        long last = bytes.Length / 512 - 1;
        PatchGptHeader(bytes, 1, field, value);
        PatchGptHeader(bytes, last, field, value);
        var ex = Assert.Throws<MalformedDataException>(() => PartitionTable.Read(new MemoryBlockReader(bytes)));
        Assert.Equal(512 + field, ex.Offset);
    }

    [Fact]
    public void Parse_RejectsGptHeaderCrcMismatchInBothCopies()
    {
        using var dir = new TempDir();
        var p = MakeDisk(dir, "gpt.img", GptScript);
        var bytes = File.ReadAllBytes(p);
        bytes[512 + GptHeader.Offsets.FirstUsableLba] ^= 1;
        bytes[bytes.Length - 512 + GptHeader.Offsets.FirstUsableLba] ^= 1;
        var ex = Assert.Throws<MalformedDataException>(() => PartitionTable.Read(new MemoryBlockReader(bytes)));
        Assert.Equal(512 + GptHeader.Offsets.HeaderCrc32, ex.Offset);
    }

    [Fact]
    public void Parse_RejectsProtectiveMbrWithoutGpt()
    {
        using var dir = new TempDir();
        var p = MakeDisk(dir, "gpt.img", GptScript);
        var bytes = File.ReadAllBytes(p);
        bytes.AsSpan(512, 512).Clear();
        bytes.AsSpan(bytes.Length - 512, 512).Clear();
        var ex = Assert.Throws<MalformedDataException>(() => PartitionTable.Read(new MemoryBlockReader(bytes)));
        Assert.Equal(MbrBootSector.Offsets.PartitionTable, ex.Offset);
    }

    [Fact]
    public void Parse_RejectsGptPartitionPastEndOfDisk()
    {
        using var dir = new TempDir();
        var p = MakeDisk(dir, "gpt.img", GptScript);
        var bytes = File.ReadAllBytes(p);
        // Move the disk's end: cut the image to 8 MiB and put valid headers back is complex; instead grow EndingLBA and fix the CRCs.
        foreach (long lba in new long[] { 1, bytes.Length / 512 - 1 })
        {
            var h = bytes.AsSpan((int)(lba * 512), 512);
            long entries = (long)BinaryPrimitives.ReadUInt64LittleEndian(h[GptHeader.Offsets.PartitionEntryLba..]);
            var e = bytes.AsSpan((int)(entries * 512), 128 * 128);
            BinaryPrimitives.WriteUInt64LittleEndian(e[(128 + GptPartitionEntry.Offsets.EndingLba)..], 1UL << 40);
            BinaryPrimitives.WriteUInt32LittleEndian(h[GptHeader.Offsets.PartitionEntryArrayCrc32..], Crc32.Compute(e));
            PatchGptHeader(bytes, lba, GptHeader.Offsets.PartitionEntryArrayCrc32, Crc32.Compute(e));
        }
        var ex = Assert.Throws<MalformedDataException>(() => PartitionTable.Read(new MemoryBlockReader(bytes)));
        Assert.Equal(1024 + 128 + GptPartitionEntry.Offsets.EndingLba, ex.Offset);
    }

    [Fact]
    public void Parse_RejectsLoopingExtendedChain()
    {
        using var dir = new TempDir();
        var p = MakeDisk(dir, "dos.img", DosScript);
        var bytes = File.ReadAllBytes(p);
        long link = SecondEbrLinkOffset(bytes);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan((int)link + MbrPartitionEntry.Offsets.FirstLba), 0); // back to the first EBR
        var ex = Assert.Throws<MalformedDataException>(() => PartitionTable.Read(new MemoryBlockReader(bytes)));
        Assert.Equal(link, ex.Offset);
        Assert.Contains("loops", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_RejectsExtendedChainPointingOutsideTheDisk()
    {
        using var dir = new TempDir();
        var p = MakeDisk(dir, "dos.img", DosScript);
        var bytes = File.ReadAllBytes(p);
        long link = SecondEbrLinkOffset(bytes);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan((int)link + MbrPartitionEntry.Offsets.FirstLba), 0x7FFFFFF0);
        var ex = Assert.Throws<MalformedDataException>(() => PartitionTable.Read(new MemoryBlockReader(bytes)));
        Assert.Equal(link, ex.Offset);
    }

    [Fact]
    public void Parse_RejectsPrimaryPartitionPastEndOfDisk()
    {
        using var dir = new TempDir();
        var p = MakeDisk(dir, "dos.img", DosScript);
        var bytes = File.ReadAllBytes(p);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(446 + 16 + MbrPartitionEntry.Offsets.SectorCount), 0xFFFFFFFF);
        var ex = Assert.Throws<MalformedDataException>(() => PartitionTable.Read(new MemoryBlockReader(bytes)));
        Assert.Equal(446 + 16, ex.Offset);
    }

    /// <summary>The link entry (slot 2) of the second EBR in the DosScript disk.</summary>
    private static long SecondEbrLinkOffset(byte[] bytes)
    {
        const long extStart = 8192;
        long first = extStart * 512;
        uint rel = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)first + 446 + 16 + MbrPartitionEntry.Offsets.FirstLba));
        return (extStart + rel) * 512 + 446 + 16;
    }

    [Fact]
    public void Mutation_SweepLetsOnlyAllowedExceptionsOut()
    {
        using var dir = new TempDir();
        var dos = File.ReadAllBytes(MakeDisk(dir, "dos.img", DosScript, "12M"));
        var gpt = File.ReadAllBytes(MakeDisk(dir, "gpt.img", GptScript, "12M"));
        long ebr1 = 8192 * 512;
        long ebr2 = SecondEbrLinkOffset(dos) - 446 - 16;
        (byte[] Disk, long Start, int Length)[] regions =
        [
            (dos, 440, 72), (dos, ebr1 + 446, 66), (dos, ebr2 + 446, 66),
            (gpt, 446, 66), (gpt, 512, 92), (gpt, 1024, 512), (gpt, gpt.Length - 512, 92),
        ];
        var rng = new Random(1234);
        for (int iter = 0; iter < 3000; iter++)
        {
            var (disk, start, len) = regions[rng.Next(regions.Length)];
            var saved = disk.AsSpan((int)start, len).ToArray();
            int flips = rng.Next(1, 5);
            for (int f = 0; f < flips; f++) disk[start + rng.Next(len)] ^= (byte)(1 << rng.Next(8));
            // every 7th iteration, also cut the disk short
            IBlockReader reader = iter % 7 == 0
                ? new MemoryBlockReader(disk.AsMemory(0, rng.Next(0, disk.Length)))
                : new MemoryBlockReader(disk);
            try
            {
                var layout = PartitionTable.Read(reader);
                foreach (var v in layout.Volumes) _ = v.Open(reader);
            }
            catch (MalformedDataException) { }
            catch (UnsupportedFeatureException) { }
            finally
            {
                saved.CopyTo(disk.AsSpan((int)start, len));
            }
        }
    }
}
