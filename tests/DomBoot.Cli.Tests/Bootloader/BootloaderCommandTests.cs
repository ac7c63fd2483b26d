using System.Text;
using System.Text.RegularExpressions;
using DomBoot.Boot.Pygrub;
using DomBoot.Formats.Errors;
using DomBoot.TestSupport;
using static DomBoot.Cli.Tests.Bootloader.BootloaderImages;

namespace DomBoot.Cli.Tests.Bootloader;

/// <summary>`domboot bootloader` as xl and users run pygrub: records byte for byte, options, and Debian's pygrub side by side.</summary>
public sealed partial class BootloaderCommandTests(BootloaderImages images) : IClassFixture<BootloaderImages>
{
    public const string Pygrub = "/usr/lib/xen-4.17/bin/pygrub";
    private const string DebianArgs = "root=/dev/xvda1 ro quiet";

    [GeneratedRegex(@"^boot_(kernel|ramdisk)\.[a-z0-9_]{8}$")]
    private static partial Regex OutputName();

    /// <summary>The files in D: kernel and ramdisk paths, after checking names and 0600 modes.</summary>
    internal static (string Kernel, string? Ramdisk) OutputFiles(string dir)
    {
        var files = Directory.GetFiles(dir);
        foreach (var f in files)
        {
            Assert.Matches(OutputName(), Path.GetFileName(f));
            if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f));
        }
        var kernel = Assert.Single(files, f => Path.GetFileName(f).StartsWith("boot_kernel.", StringComparison.Ordinal));
        var ramdisk = files.SingleOrDefault(f => Path.GetFileName(f).StartsWith("boot_ramdisk.", StringComparison.Ordinal));
        Assert.Equal(ramdisk is null ? 1 : 2, files.Length);
        return (kernel, ramdisk);
    }

    [Fact]
    public void Xl_Simple0RecordByteForByte()
    {
        using var d = new TempDir("domboot-bl-d");
        var f = Path.Combine(images.Scratch, "xl-record-" + Guid.NewGuid().ToString("N"));
        File.WriteAllBytes(f, []); // xl creates the file before running the bootloader
        var r = DombootProcess.Run("bootloader", $"--output={f}", "--output-format=simple0", $"--output-directory={d.Path}", images.Debian);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var (kernel, ramdisk) = OutputFiles(d.Path);
        Assert.Equal(Encoding.UTF8.GetBytes($"kernel {kernel}\0ramdisk {ramdisk}\0args {DebianArgs}\0\0"), File.ReadAllBytes(f));
        Assert.Equal(KernelSha, Tools.Sha256(kernel));
        Assert.Equal(InitrdSha, Tools.Sha256(ramdisk!));
        Assert.Equal("", r.Stdout);
    }

    [Theory]
    [InlineData("simple")]
    [InlineData("sxp")]
    public void Format_ExactRecordOnStdout(string format)
    {
        using var d = new TempDir("domboot-bl-d");
        var r = DombootProcess.Run("bootloader", "-q", $"--output-format={format}", $"--output-directory={d.Path}", images.Debian);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var (kernel, ramdisk) = OutputFiles(d.Path);
        var expected = format == "simple"
            ? $"kernel {kernel}\nramdisk {ramdisk}\nargs {DebianArgs}\n\n"
            : $"linux (kernel '{kernel}')(ramdisk '{ramdisk}')(args '{DebianArgs}')";
        Assert.Equal(expected, r.Stdout);
    }

    [Fact]
    public void Kernel_SkipsTheConfig()
    {
        // The config's only entry names a missing kernel; --kernel never reads it.
        var img = images.Ext4Mbr("broken-config.img", Root("set default=0\nmenuentry 'gone' {\n linux /boot/vmlinuz-missing\n}\n"));
        using var d = new TempDir("domboot-bl-d");
        var r = DombootProcess.Run("bootloader", "--output-format=simple", $"--output-directory={d.Path}",
            $"--kernel=/boot/vmlinuz-{V10}", $"--ramdisk=/boot/initrd.img-{V10}", "--args=root=/dev/xvda1 console=hvc0", img);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var (kernel, ramdisk) = OutputFiles(d.Path);
        Assert.Equal($"kernel {kernel}\nramdisk {ramdisk}\nargs root=/dev/xvda1 console=hvc0\n\n", r.Stdout);
        Assert.Equal(KernelSha, Tools.Sha256(kernel));
        Assert.Equal(InitrdSha, Tools.Sha256(ramdisk!));
    }

    [Fact]
    public void Args_AppendedWithASpace()
    {
        using var d = new TempDir("domboot-bl-d");
        var r = DombootProcess.Run("bootloader", "-q", "--output-format=simple", $"--output-directory={d.Path}", "--args=console=hvc0 xen_pv", images.Debian);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains($"\nargs {DebianArgs} console=hvc0 xen_pv\n\n", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void List_ShowsEveryEntry()
    {
        var r = DombootProcess.Run("bootloader", "-l", images.Debian);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains($"title: Debian GNU/Linux\n  root: (hd0,msdos1)\n  kernel: /boot/vmlinuz-{V10}\n  args: {DebianArgs}\n  initrd: /boot/initrd.img-{V10}\n", r.Stdout, StringComparison.Ordinal);
        Assert.Contains($"title: {Advanced}>{Recovery}\n", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("  args: root=/dev/xvda1 ro single\n", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void NotReally_CopiesNothing()
    {
        using var d = new TempDir("domboot-bl-d");
        var r = DombootProcess.Run("bootloader", "-q", "-n", "--output-format=simple", $"--output-directory={d.Path}", images.Debian);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Empty(Directory.GetFileSystemEntries(d.Path));
        Assert.Equal($"kernel (hd0,msdos1)/boot/vmlinuz-{V10}\nramdisk (hd0,msdos1)/boot/initrd.img-{V10}\nargs {DebianArgs}\n\n", r.Stdout);
    }

    [Fact]
    public void Offset_ReadsTheFilesystemAtThatByte()
    {
        using var d = new TempDir("domboot-bl-d");
        var r = DombootProcess.Run("bootloader", "-q", "--output-format=simple", $"--output-directory={d.Path}", "--offset=1048576", images.Debian);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var (kernel, ramdisk) = OutputFiles(d.Path);
        Assert.Equal($"kernel {kernel}\nramdisk {ramdisk}\nargs {DebianArgs}\n\n", r.Stdout);
        Assert.Equal(KernelSha, Tools.Sha256(kernel));
    }

    [Theory]
    [InlineData("grub.cfg")]
    [InlineData("saved-grub.cfg")]
    public void IsConfig_PrintsWhatTheHostConfigBoots(string name)
    {
        var dir = Directory.CreateDirectory(Path.Combine(images.Scratch, "isconfig")).FullName;
        var cfg = Path.Combine(dir, name);
        File.WriteAllText(cfg, DebianGrubCfg("set default=\"1>0\"\n"));
        var r = DombootProcess.Run("bootloader", "--isconfig", cfg);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal($"  kernel: /boot/vmlinuz-{V10}\n  initrd: /boot/initrd.img-{V10}\n  args: root=/dev/xvda1 ro single\n", r.Stdout);
    }

    [Fact]
    public void IsConfig_WithoutEntriesFailsInsteadOfPrintingNothing()
    {
        var cfg = Path.Combine(images.Scratch, "empty-grub.cfg");
        // (a GRUB2 config by its name; one without entries is an error, not empty fields)
        File.WriteAllText(cfg, "set timeout=5\n");
        var r = DombootProcess.Run("bootloader", "--isconfig", cfg);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Equal("", r.Stdout);
        Assert.Contains("no boot entries", r.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("simple", "a\nb")]
    [InlineData("simple0", "a\0b")]
    public void Record_RefusesTheSeparatorInsideAValue(string format, string args)
    {
        var ex = Assert.Throws<MalformedDataException>(() => PygrubRecord.Format(format, "/k", "/r", args));
        Assert.Contains("separator", ex.Message, StringComparison.Ordinal);
        Assert.Equal("linux (kernel '/k')(args 'a\\nb')", Encoding.UTF8.GetString(PygrubRecord.Format("sxp", "/k", null, "a\nb")));
    }

    [Fact]
    public void Record_RefusedLeavesNothingInTheOutputDirectory()
    {
        using var d = new TempDir("domboot-bl-d");
        var r = DombootProcess.Run("bootloader", "-q", "--output-format=simple", $"--output-directory={d.Path}", "--args=a\nb", images.Debian);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Single(r.Stderr.TrimEnd('\n').Split('\n'));
        Assert.Empty(Directory.GetFileSystemEntries(d.Path));
    }

    /// <summary>Runs Debian's pygrub and domboot the same way; returns each record with its own directory and the 8-char suffixes replaced.</summary>
    private static (string Record, string KernelSha, string? RamdiskSha) RunTool(string exe, string disk, string format)
    {
        using var d = new TempDir("domboot-bl-cmp");
        var f = Path.Combine(d.Path, "record");
        File.WriteAllBytes(f, []);
        var outDir = Path.Combine(d.Path, "out");
        Directory.CreateDirectory(outDir);
        string[] args = ["-q", $"--output={f}", $"--output-format={format}", $"--output-directory={outDir}", disk];
        int exit = exe == "domboot" ? DombootProcess.Run(["bootloader", .. args]).ExitCode : Tools.Run(Tools.Require(exe), args, timeoutMs: 60_000).ExitCode;
        Assert.Equal(0, exit);
        var (kernel, ramdisk) = OutputFiles(outDir);
        var record = Encoding.UTF8.GetString(File.ReadAllBytes(f)).Replace(outDir, "D", StringComparison.Ordinal);
        record = SuffixPattern().Replace(record, "$1.XXXXXXXX");
        return (record, Tools.Sha256(kernel), ramdisk is null ? null : Tools.Sha256(ramdisk));
    }

    [GeneratedRegex(@"(boot_kernel|boot_ramdisk)\.[a-z0-9_]{8}")]
    private static partial Regex SuffixPattern();

    [Theory]
    [InlineData("simple0")]
    [InlineData("simple")]
    [InlineData("sxp")]
    public void Pygrub_SameRecordAndFilesAsDebianPygrub(string format)
    {
        var ours = RunTool("domboot", images.Debian, format);
        var theirs = RunTool(Pygrub, images.Debian, format);
        Assert.Equal(theirs, ours);
        Assert.Equal(KernelSha, ours.KernelSha);
        Assert.Equal(InitrdSha, ours.RamdiskSha);
    }

    [Fact]
    public void Pygrub_MisreadsATitlePathDefaultWhereDombootPicksGrubsEntry()
    {
        var ours = RunTool("domboot", images.DefaultByPath, "simple0");
        var theirs = RunTool(Pygrub, images.DefaultByPath, "simple0");
        Assert.EndsWith("args root=/dev/xvda1 ro single\0\0", ours.Record, StringComparison.Ordinal);
        Assert.EndsWith($"args {DebianArgs}\0\0", theirs.Record, StringComparison.Ordinal); // pygrub: "Invalid value ..., setting default to 0"
    }

    [Theory]
    [InlineData("logical")]
    [InlineData("xfs")]
    public void Pygrub_FailsWhereDombootBoots(string disk)
    {
        var img = disk == "logical" ? images.LogicalBoot : images.XfsBoot;
        using var d = new TempDir("domboot-bl-d");
        var theirs = Tools.Run(Tools.Require(Pygrub), ["-q", "--output-format=simple", $"--output-directory={d.Path}", img], check: false, timeoutMs: 60_000);
        Assert.NotEqual(0, theirs.ExitCode); // and it leaves its boot_kernel./boot_ramdisk. temporaries behind in D
        var ours = RunTool("domboot", img, "simple");
        Assert.Equal($"kernel D/boot_kernel.XXXXXXXX\nramdisk D/boot_ramdisk.XXXXXXXX\nargs {DebianArgs}\n\n", ours.Record);
        Assert.Equal(KernelSha, ours.KernelSha);
    }

    [Fact]
    public void BootEntries_MarksTheEntryThatBoots()
    {
        var r = DombootProcess.Run("boot-entries", images.DefaultByPath);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.StartsWith("grub2 config /boot/grub/grub.cfg; default 1: ", r.Stdout, StringComparison.Ordinal);
        Assert.Contains($"\n*  1  {Advanced} > {Recovery}\n", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("\n   0  Debian GNU/Linux\n", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Extract_EntryByPathCopiesKernelAndRamdisk()
    {
        using var d = new TempDir("domboot-bl-d");
        var r = DombootProcess.Run("extract", images.Debian, "-o", d.Path, $"--entry={Advanced}>{Recovery}");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var (kernel, ramdisk) = OutputFiles(d.Path);
        Assert.Equal(KernelSha, Tools.Sha256(kernel));
        Assert.Equal(InitrdSha, Tools.Sha256(ramdisk!));
        Assert.EndsWith($"kernel {kernel}\nramdisk {ramdisk}\nargs root=/dev/xvda1 ro single\n", r.Stdout, StringComparison.Ordinal);
    }
}
