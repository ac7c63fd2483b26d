using System.Net.Sockets;
using DomBoot.Formats.Cpio;
using DomBoot.Formats.Errors;
using DomBoot.TestSupport;
using static DomBoot.Formats.Tests.Cpio.CpioTestSupport;

namespace DomBoot.Formats.Tests.Cpio;

public sealed class InitramfsBuilderTests
{
    [Fact]
    public void BuildFromDirectory_ExtractsWithGnuCpioToTheSameTree()
    {
        using var tmp = new TempDir();
        var src = Path.Combine(tmp.Path, "src");
        MakeTree(src);
        var result = InitramfsBuilder.BuildFromDirectory(src, tmp.File("initrd.cpio"), gzip: false);
        Assert.Equal(Snapshot(src).Count, result.EntryCount);
        Assert.Equal(result.OutputBytes, new FileInfo(tmp.File("initrd.cpio")).Length);
        Assert.Equal(result.ArchiveBytes, result.OutputBytes);
        Assert.Empty(result.Skipped);

        GnuExtract(tmp.File("initrd.cpio"), Path.Combine(tmp.Path, "out"));
        Assert.Equal(Snapshot(src), Snapshot(Path.Combine(tmp.Path, "out")));
        Assert.Equal(Snapshot(src), Snapshot(new CpioReader(File.ReadAllBytes(tmp.File("initrd.cpio"))).ReadArchive().Entries));
    }

    [Fact]
    public void BuildFromDirectory_OrdersEntriesDirectoryFirstAndSorted()
    {
        using var tmp = new TempDir();
        var src = Path.Combine(tmp.Path, "src");
        MakeTree(src);
        InitramfsBuilder.BuildFromDirectory(src, tmp.File("a.cpio"), gzip: false);
        var names = new CpioReader(File.ReadAllBytes(tmp.File("a.cpio"))).ReadArchive().Entries.Select(e => e.Name).ToList();
        Assert.Equal(["bin", "bin/blob", "bin/sh", "bin/suid", "dangling", "empty", "etc", "etc/abs-link", "etc/empty-file",
            "etc/grüße", "etc/hostname", "etc/init.d", "etc/init.d/rcS", "init"], names);
    }

    [Fact]
    public void BuildFromDirectory_IsDeterministicWithFixedMTime()
    {
        using var tmp = new TempDir();
        var src = Path.Combine(tmp.Path, "src");
        MakeTree(src);
        var t = DateTimeOffset.FromUnixTimeSeconds(1_600_000_000);
        InitramfsBuilder.BuildFromDirectory(src, tmp.File("a.cpio.gz"), gzip: true, t);
        File.SetLastWriteTimeUtc(Path.Combine(src, "init"), DateTime.UtcNow.AddDays(-3));
        InitramfsBuilder.BuildFromDirectory(src, tmp.File("b.cpio.gz"), gzip: true, t);
        Assert.Equal(Tools.Sha256(tmp.File("a.cpio.gz")), Tools.Sha256(tmp.File("b.cpio.gz")));
        var entries = new CpioReader(File.ReadAllBytes(tmp.File("a.cpio.gz"))).ReadAllEntries(decompress: true);
        Assert.All(entries, e => Assert.Equal(1_600_000_000u, e.Header.MTime));
        Assert.All(entries, e => Assert.Equal((0u, 0u), (e.Header.Uid, e.Header.Gid)));
    }

    [Fact]
    public void BuildFromDirectory_KeepsFileMTimesByDefault()
    {
        using var tmp = new TempDir();
        var src = Path.Combine(tmp.Path, "src");
        MakeTree(src);
        File.SetLastWriteTimeUtc(Path.Combine(src, "init"), DateTimeOffset.FromUnixTimeSeconds(1_234_567_890).UtcDateTime);
        InitramfsBuilder.BuildFromDirectory(src, tmp.File("a.cpio"), gzip: false);
        var init = new CpioReader(File.ReadAllBytes(tmp.File("a.cpio"))).ReadArchive().Entries.Single(e => e.Name == "init");
        Assert.Equal(1_234_567_890u, init.Header.MTime);
    }

    [Fact]
    public void BuildFromDirectory_GzipIsReadableByGzipAndGnuCpio()
    {
        using var tmp = new TempDir();
        var src = Path.Combine(tmp.Path, "src");
        MakeTree(src);
        var result = InitramfsBuilder.BuildFromDirectory(src, tmp.File("initrd.gz"), gzip: true);
        Assert.True(result.OutputBytes < result.ArchiveBytes);
        var names = new CpioReader(File.ReadAllBytes(tmp.File("initrd.gz"))).ReadAllEntries(decompress: true).Select(e => e.Name);
        Assert.Equal(names, GnuList(tmp.File("initrd.gz"), gzip: true));
        Tools.Shell($"mkdir {Q(tmp.File("out"))} && cd {Q(tmp.File("out"))} && gzip -dc {Q(tmp.File("initrd.gz"))} | cpio -idm --quiet --no-absolute-filenames");
        Assert.Equal(Snapshot(src), Snapshot(tmp.File("out")));
    }

    [Fact]
    public void BuildFromDirectory_KeepsDevicesAndFifosSkipsSockets()
    {
        using var tmp = new TempDir();
        var src = Path.Combine(tmp.Path, "src");
        Directory.CreateDirectory(Path.Combine(src, "dev"));
        Tools.Run("mkfifo", Path.Combine(src, "dev/initctl"));
        Tools.Run("mknod", "-m", "600", Path.Combine(src, "dev/console"), "c", "5", "1");
        Tools.Run("mknod", "-m", "660", Path.Combine(src, "dev/vdz"), "b", "254", "7");
        // .NET removes the socket file when the socket closes, so build while it is open
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(Path.Combine(src, "dev/log")));

        var result = InitramfsBuilder.BuildFromDirectory(src, tmp.File("dev.cpio"), gzip: false);
        Assert.Equal(["dev/log: socket skipped"], result.Skipped);
        var entries = new CpioReader(File.ReadAllBytes(tmp.File("dev.cpio"))).ReadArchive().Entries.ToDictionary(e => e.Name);
        Assert.Equal(["dev", "dev/console", "dev/initctl", "dev/vdz"], entries.Keys.Order(StringComparer.Ordinal));
        Assert.Equal((CpioFileType.CharDevice, 5u, 1u, (UnixFileMode)0x180), (entries["dev/console"].Type, entries["dev/console"].Header.RDevMajor, entries["dev/console"].Header.RDevMinor, entries["dev/console"].Header.Permissions));
        Assert.Equal((CpioFileType.BlockDevice, 254u, 7u), (entries["dev/vdz"].Type, entries["dev/vdz"].Header.RDevMajor, entries["dev/vdz"].Header.RDevMinor));
        Assert.Equal(CpioFileType.Fifo, entries["dev/initctl"].Type);

        // GNU cpio sees the same special files
        var listing = Tools.Shell($"cpio -tv --quiet < {Q(tmp.File("dev.cpio"))}").Stdout;
        Assert.Matches(@"(?m)^crw------- .* 5,\s+1 .*dev/console$", listing);
        Assert.Matches(@"(?m)^brw-rw---- .* 254,\s+7 .*dev/vdz$", listing);
        Assert.Matches(@"(?m)^prw.* dev/initctl$", listing);
    }

    [Fact]
    public void BuildFromDirectory_LeavesNothingBehindOnFailure()
    {
        using var tmp = new TempDir();
        var src = Path.Combine(tmp.Path, "src");
        MakeTree(src);
        // a sparse file above newc's 4 GiB - 1 limit
        Tools.Run("truncate", "-s", "5G", Path.Combine(src, "zz-huge"));
        File.WriteAllText(tmp.File("old.cpio"), "previous");
        Assert.Throws<UnsupportedFeatureException>(() => InitramfsBuilder.BuildFromDirectory(src, tmp.File("old.cpio"), gzip: true));
        Assert.Equal("previous", File.ReadAllText(tmp.File("old.cpio")));
        Assert.Equal(["old.cpio", "src"], Directory.EnumerateFileSystemEntries(tmp.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void BuildFromDirectory_SkipsItsOwnOutputInsideTheSource()
    {
        using var tmp = new TempDir();
        MakeTree(tmp.Path);
        InitramfsBuilder.BuildFromDirectory(tmp.Path, tmp.File("initrd.img"), gzip: false);
        InitramfsBuilder.BuildFromDirectory(tmp.Path, tmp.File("initrd.img"), gzip: false);
        var names = new CpioReader(File.ReadAllBytes(tmp.File("initrd.img"))).ReadArchive().Entries.Select(e => e.Name);
        Assert.DoesNotContain(names, n => n.Contains("initrd", StringComparison.Ordinal));
    }

    [Fact]
    public void BuildFromDirectory_RejectsMissingDirectories()
    {
        using var tmp = new TempDir();
        Assert.Throws<DirectoryNotFoundException>(() => InitramfsBuilder.BuildFromDirectory(tmp.File("nope"), tmp.File("x"), false));
        Assert.Throws<DirectoryNotFoundException>(() => InitramfsBuilder.BuildFromDirectory(tmp.Path, tmp.File("no/x"), false));
    }
}
