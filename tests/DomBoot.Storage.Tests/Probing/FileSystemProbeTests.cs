using DomBoot.Storage.Images;
using DomBoot.Storage.Probing;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Probing;

public class FileSystemProbeTests
{
    /// <summary>blkid -p -o export of a file (or a byte range of it), as a dictionary.</summary>
    internal static Dictionary<string, string> Blkid(string path, long offset = 0, long size = 0)
    {
        var args = new List<string> { "-p", "-o", "export" };
        if (offset != 0) { args.Add("--offset"); args.Add(offset.ToString(System.Globalization.CultureInfo.InvariantCulture)); }
        if (size != 0) { args.Add("--size"); args.Add(size.ToString(System.Globalization.CultureInfo.InvariantCulture)); }
        args.Add(path);
        var r = Tools.Run("blkid", args, check: false);
        return r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=', 2)).Where(kv => kv.Length == 2)
            .ToDictionary(kv => kv[0], kv => kv[1].Replace("\\ ", " ", StringComparison.Ordinal));
    }

    internal static void AssertMatchesBlkid(Dictionary<string, string> blkid, ProbeResult? ours)
    {
        Assert.NotNull(ours);
        Assert.Equal(blkid.GetValueOrDefault("TYPE"), ours.Type);
        Assert.Equal(blkid.GetValueOrDefault("UUID"), ours.Uuid);
        Assert.Equal(blkid.GetValueOrDefault("LABEL"), ours.Label);
        if (ours.Version is not null && blkid.TryGetValue("VERSION", out var v)) Assert.Equal(v, ours.Version);
    }

    public static TheoryData<string, string, string> Filesystems => new()
    {
        // name, size, shell command creating $IMG
        { "ext2", "8M", "mkfs.ext2 -q -F -U 22222222-1111-2222-3333-444444444444 -L two $IMG" },
        { "ext3", "8M", "mkfs.ext3 -q -F -U 33333333-1111-2222-3333-444444444444 -L three $IMG" },
        { "ext4", "8M", "mkfs.ext4 -q -F -U 44444444-1111-2222-3333-444444444444 -L 'my root' $IMG" },
        { "ext4 no journal", "8M", "mkfs.ext4 -q -F -O ^has_journal -U 44444444-1111-2222-3333-555555555555 $IMG" },
        { "xfs", "320M", "mkfs.xfs -q -f -m uuid=0c0c0c0c-1111-2222-3333-444444444444 -L xf $IMG" },
        { "btrfs", "200M", "mkfs.btrfs -q -f -U 0b0b0b0b-1111-2222-3333-444444444444 -L bt $IMG" },
        { "fat12", "1M", "mkfs.vfat -F 12 -i 1234ABCD -n SMALL $IMG" },
        { "fat16", "20M", "mkfs.vfat -F 16 -i 0000BEEF $IMG" },
        { "fat32", "40M", "mkfs.vfat -F 32 -i DEADBEEF -n FATTY $IMG" },
        { "swap", "4M", "mkswap -U 5a5a5a5a-1111-2222-3333-444444444444 -L sw $IMG" },
        { "iso9660", "", "mkdir -p $IMG.d && echo hi > $IMG.d/a && xorriso -as mkisofs -V MYISO -o $IMG $IMG.d 2>/dev/null" },
    };

    [Theory]
    [MemberData(nameof(Filesystems))]
    public void Probe_MatchesBlkid(string name, string size, string command)
    {
        _ = name;
        using var dir = new TempDir();
        var img = dir.File("fs.img");
        if (size.Length > 0) Tools.Run("truncate", "-s", size, img);
        foreach (var tool in command.Split(" && ").Select(c => c.Split(' ')[0]).Where(t => t is not ("mkdir" or "echo")))
            Tools.Require(tool);
        Tools.Shell(command.Replace("$IMG", img, StringComparison.Ordinal) + " >/dev/null");
        using var r = new FileBlockReader(img);
        AssertMatchesBlkid(Blkid(img), FileSystemProbe.Probe(r));
    }

    [Fact]
    public void Probe_UnknownContentIsNull()
    {
        var zeros = new byte[FileSystemProbe.HeadBytes];
        Assert.Null(FileSystemProbe.Probe(zeros));
        Assert.Null(FileSystemProbe.Probe(new byte[10]));
        Assert.Null(FileSystemProbe.Probe(new Formats.Binary.MemoryBlockReader(new byte[100])));
    }

    [Fact]
    public void Probe_LuksHeaderByHand()
    {
        // cryptsetup is not among the test tools: a LUKS2 header's identifying fields written by hand (LUKS2 spec, binary header).
        var head = new byte[4096];
        new byte[] { 0x4C, 0x55, 0x4B, 0x53, 0xBA, 0xBE, 0, 2 }.CopyTo(head, 0);
        "cryptroot"u8.CopyTo(head.AsSpan(24));
        "0d0d0d0d-1111-2222-3333-444444444444"u8.CopyTo(head.AsSpan(168));
        var p = FileSystemProbe.Probe(head);
        Assert.Equal(new ProbeResult("crypto_LUKS", "0d0d0d0d-1111-2222-3333-444444444444", "cryptroot", "2"), p);
    }

    [Fact]
    public void Probe_SweepOfRandomHeadsOnlyAnswers()
    {
        // Probes must never throw: random bytes with planted magics at every probe's place.
        var rng = new Random(1234);
        var head = new byte[FileSystemProbe.HeadBytes];
        byte[][] magics = ["XFSB"u8.ToArray(), "_BHRfS_M"u8.ToArray(), "CD001"u8.ToArray(), "SWAPSPACE2"u8.ToArray(), [0x53, 0xEF]];
        int[] at = [0, 0x10040, 0x8001, 4086, 1024 + 0x38];
        for (int i = 0; i < 2000; i++)
        {
            rng.NextBytes(head);
            int k = rng.Next(magics.Length);
            magics[k].CopyTo(head, at[k]);
            if (k == 2) head[0x8000] = 1;
            int len = i % 5 == 0 ? rng.Next(0, head.Length) : head.Length;
            _ = FileSystemProbe.Probe(head.AsMemory(0, len));
        }
    }
}
