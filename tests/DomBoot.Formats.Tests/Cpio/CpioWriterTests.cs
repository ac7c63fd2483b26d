using System.Text;
using DomBoot.Formats.Cpio;
using DomBoot.TestSupport;
using static DomBoot.Formats.Tests.Cpio.CpioTestSupport;

namespace DomBoot.Formats.Tests.Cpio;

public sealed class CpioWriterTests
{
    private static readonly DateTimeOffset T = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);

    private static void Compose(CpioWriter w)
    {
        w.AddDirectory("bin", mtime: T);
        w.AddFile("bin/busybox", "ELF..."u8, (UnixFileMode)0x1ED, T);
        w.AddSymlink("bin/sh", "busybox", T);
        w.AddDirectory("dev", mtime: T);
        w.AddCharDevice("dev/console", 5, 1, (UnixFileMode)0x180, T);
        w.AddBlockDevice("dev/vda", 254, 0, (UnixFileMode)0x1B0, T, uid: 0, gid: 6);
        w.AddFifo("run/fifo", (UnixFileMode)0x180, T);
        using var s = new MemoryStream(Encoding.ASCII.GetBytes("#!/bin/sh\nexec /bin/sh\n"));
        w.AddFile("/init", s, s.Length, (UnixFileMode)0x1ED, T, uid: 1000, gid: 1000);
        w.AddFile("./etc//empty", ReadOnlySpan<byte>.Empty, mtime: T);
    }

    [Theory]
    [InlineData(CpioFormat.Newc)]
    [InlineData(CpioFormat.Crc)]
    public void RoundTrip_ReadsBackWhatWasWritten(CpioFormat format)
    {
        var bytes = InitramfsBuilder.BuildInMemory(Compose, gzip: false, new CpioWriterOptions { Format = format });
        Assert.Equal(0, bytes.Length % 512);
        var entries = new CpioReader(bytes).ReadArchive().Entries;
        Assert.Equal(["bin", "bin/busybox", "bin/sh", "dev", "dev/console", "dev/vda", "run", "run/fifo", "init", "etc", "etc/empty"],
            entries.Select(e => e.Name));
        Assert.All(entries, e => Assert.Equal(format, e.Header.Format));
        Assert.Equal(entries.Count, entries.Select(e => e.Header.Ino).Distinct().Count());
        Assert.Equal(Enumerable.Range(1, entries.Count).Select(i => (uint)i), entries.Select(e => e.Header.Ino));

        var byName = entries.ToDictionary(e => e.Name);
        Assert.Equal((CpioFileType.Directory, 2u, (UnixFileMode)0x1ED, 1_700_000_000u), (byName["bin"].Type, byName["bin"].Header.NLink, byName["bin"].Header.Permissions, byName["bin"].Header.MTime));
        Assert.Equal("ELF...", Encoding.ASCII.GetString(byName["bin/busybox"].Data.Span));
        Assert.Equal(0x81EDu, byName["bin/busybox"].Header.Mode);
        Assert.Equal("busybox", byName["bin/sh"].SymlinkTarget);
        Assert.Equal(0xA1FFu, byName["bin/sh"].Header.Mode);
        Assert.Equal((CpioFileType.CharDevice, 5u, 1u, 0u), (byName["dev/console"].Type, byName["dev/console"].Header.RDevMajor, byName["dev/console"].Header.RDevMinor, byName["dev/console"].Header.FileSize));
        Assert.Equal((CpioFileType.BlockDevice, 254u, 0u, 6u), (byName["dev/vda"].Type, byName["dev/vda"].Header.RDevMajor, byName["dev/vda"].Header.RDevMinor, byName["dev/vda"].Header.Gid));
        Assert.Equal(CpioFileType.Fifo, byName["run/fifo"].Type);
        Assert.Equal((CpioFileType.Directory, 0u), (byName["run"].Type, byName["run"].Header.MTime)); // created as a parent
        Assert.Equal("#!/bin/sh\nexec /bin/sh\n", Encoding.ASCII.GetString(byName["init"].Data.Span));
        Assert.Equal((1000u, 1000u), (byName["init"].Header.Uid, byName["init"].Header.Gid));
        Assert.Equal(0u, byName["etc/empty"].Header.FileSize);
        Assert.All(entries, e => Assert.Equal(0, e.HeaderOffset % 4));
        Assert.All(entries, e => Assert.Equal(0, e.DataOffset % 4));
    }

    [Fact]
    public void CrcFormat_SumsDataBytesLikeTheResearchExample()
    {
        var bytes = InitramfsBuilder.BuildInMemory(w => w.AddFile("hello", "hello\n"u8), false, new CpioWriterOptions { Format = CpioFormat.Crc });
        Assert.Equal(0x21Eu, new CpioReader(bytes).ReadArchive().Entries[0].Header.Check);
    }

    [Fact]
    public void CrcFormat_PassesGnuCpioVerification()
    {
        using var tmp = new TempDir();
        var src = Path.Combine(tmp.Path, "src");
        MakeTree(src);
        InitramfsBuilder.BuildFromDirectory(src, tmp.File("plain.cpio"), gzip: false);
        var bytes = InitramfsBuilder.BuildInMemory(w =>
        {
            foreach (var e in new CpioReader(File.ReadAllBytes(tmp.File("plain.cpio"))).ReadArchive().Entries)
                if (e.Type == CpioFileType.Regular) w.AddFile(e.Name, e.Data.Span, e.Header.Permissions);
        }, false, new CpioWriterOptions { Format = CpioFormat.Crc });
        File.WriteAllBytes(tmp.File("crc.cpio"), bytes);
        var r = Tools.Shell($"cd {Q(tmp.Path)} && cpio -i --only-verify-crc < crc.cpio 2>&1");
        Assert.DoesNotContain("checksum error", r.Stdout, StringComparison.Ordinal);

        // a wrong sum is caught by GNU cpio too, so the check agrees with it
        var bad = (byte[])bytes.Clone();
        var first = new CpioReader(bytes).ReadArchive().Entries.First(e => e.Header.FileSize > 0);
        bad[first.DataOffset] ^= 1;
        File.WriteAllBytes(tmp.File("bad.cpio"), bad);
        var r2 = Tools.Shell($"cd {Q(tmp.Path)} && cpio -i --only-verify-crc < bad.cpio 2>&1", check: false);
        Assert.Contains("checksum error", r2.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void EmptyArchive_IsByteForByteGnuCpios()
    {
        using var tmp = new TempDir();
        Tools.Require("cpio");
        Tools.Shell($"cpio -o -H newc --quiet < /dev/null > {Q(tmp.File("gnu.cpio"))}");
        Assert.Equal(File.ReadAllBytes(tmp.File("gnu.cpio")), InitramfsBuilder.BuildInMemory(_ => { }, gzip: false));
    }

    [Fact]
    public void Output_IsDeterministic()
    {
        var a = InitramfsBuilder.BuildInMemory(Compose, gzip: false);
        var b = InitramfsBuilder.BuildInMemory(Compose, gzip: false);
        Assert.Equal(Tools.Sha256(a), Tools.Sha256(b));
        var ga = InitramfsBuilder.BuildInMemory(Compose, gzip: true);
        var gb = InitramfsBuilder.BuildInMemory(Compose, gzip: true);
        Assert.Equal(ga, gb);
        Assert.Equal(a, CpioReader.DecompressGzip(ga, 0, 1 << 20, out long consumed));
        Assert.Equal(ga.Length, consumed);
    }

    [Fact]
    public void GzipOutput_IsListedByGzipAndGnuCpio()
    {
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp.File("a.cpio.gz"), InitramfsBuilder.BuildInMemory(Compose, gzip: true));
        Assert.Equal(["bin", "bin/busybox", "bin/sh", "dev", "dev/console", "dev/vda", "run", "run/fifo", "init", "etc", "etc/empty"],
            GnuList(tmp.File("a.cpio.gz"), gzip: true));
    }

    [Fact]
    public void NoPadding_EndsOnFourByteBoundary()
    {
        var bytes = InitramfsBuilder.BuildInMemory(w => w.AddFile("abc", "12345"u8), false, new CpioWriterOptions { PadTo512 = false });
        // 110 + "abc\0" = 114 -> 116, data 5 -> 124, trailer 110 + 11 = 121 -> 248
        Assert.Equal(248, bytes.Length);
    }

    [Theory]
    [InlineData("/bin/sh", "bin/sh")]
    [InlineData("./bin//sh", "bin/sh")]
    [InlineData("bin/./sh/", "bin/sh")]
    [InlineData("init", "init")]
    public void NormalizePath_StoresRelativeNames(string path, string expected) => Assert.Equal(expected, CpioWriter.NormalizePath(path));

    [Theory]
    [InlineData("")]
    [InlineData("/")]
    [InlineData(".")]
    [InlineData("../etc/passwd")]
    [InlineData("a/../../b")]
    [InlineData("TRAILER!!!")]
    [InlineData("a\0b")]
    public void NormalizePath_RejectsUnsafeOrEmptyNames(string path) => Assert.Throws<ArgumentException>(() => CpioWriter.NormalizePath(path));

    [Fact]
    public void NormalizePath_RejectsNamesLongerThanPathMax()
    {
        Assert.Equal(4095, CpioWriter.NormalizePath(new string('a', 4095)).Length);
        Assert.Throws<ArgumentException>(() => CpioWriter.NormalizePath(new string('a', 4096)));
    }

    [Fact]
    public void Add_RejectsDuplicatesAndFilesAsParents()
    {
        using var w = new CpioWriter(new MemoryStream());
        w.AddFile("a", "1"u8);
        Assert.Throws<InvalidOperationException>(() => w.AddFile("/a", "2"u8));
        Assert.Throws<InvalidOperationException>(() => w.AddFile("a/b", "2"u8));
        w.AddFile("d/x", "1"u8);
        Assert.Throws<InvalidOperationException>(() => w.AddDirectory("d"));
    }

    [Fact]
    public void Add_RejectsBadArguments()
    {
        using var w = new CpioWriter(new MemoryStream());
        Assert.Throws<ArgumentOutOfRangeException>(() => w.AddFile("a", "1"u8, (UnixFileMode)0x11FF));
        Assert.Throws<ArgumentOutOfRangeException>(() => w.AddFile("a", "1"u8, mtime: DateTimeOffset.FromUnixTimeSeconds(-1)));
        Assert.Throws<ArgumentException>(() => w.AddSymlink("l", ""));
        Assert.Throws<EndOfStreamException>(() => w.AddFile("short", new MemoryStream(new byte[3]), 4));
        using var crc = new CpioWriter(new MemoryStream(), new CpioWriterOptions { Format = CpioFormat.Crc });
        Assert.Throws<NotSupportedException>(() => crc.AddFile("s", new NonSeekable(new byte[3]), 3));
        w.Finish();
        Assert.Throws<InvalidOperationException>(() => w.AddFile("late", "1"u8));
        Assert.Throws<InvalidOperationException>(() => w.Finish());
    }

    private sealed class NonSeekable(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
