using System.Text;
using DomBoot.Boot.Discovery;
using DomBoot.Boot.Model;
using DomBoot.TestSupport;
using static DomBoot.Cli.Tests.Bootloader.BootloaderImages;

namespace DomBoot.Cli.Tests.Bootloader;

/// <summary>
/// Hostile guest configs under `bootloader -q`: each gives the GRUB-correct choice or a one-line error, finishes
/// within the process timeout, and leaves nothing in the output directory on error.
/// </summary>
public sealed class HostileConfigTests(BootloaderImages images) : IClassFixture<BootloaderImages>
{
    private const int TimeoutMs = 60_000;

    private static DombootProcess.Result Boot(string disk, string d, params string[] extra) =>
        DombootProcess.Run(["bootloader", "-q", "--output-format=sxp", $"--output-directory={d}", .. extra, disk], timeoutMs: TimeoutMs);

    /// <summary>Exit non-zero, exactly one line on stderr containing <paramref name="expected"/>, nothing on stdout or in D.</summary>
    private static void AssertRefused(DombootProcess.Result r, string d, string expected)
    {
        Assert.NotEqual(0, r.ExitCode);
        Assert.Equal("", r.Stdout);
        var line = Assert.Single(r.Stderr.TrimEnd('\n').Split('\n'));
        Assert.Contains(expected, line, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(d));
    }

    private string Injection => images.Ext4Mbr("injection.img", Root($$"""
        set default=0
        menuentry "x'); os.system('reboot') #" {
        	linux /boot/vmlinuz-{{V10}} root=/dev/xvda1 'a=$(reboot)' "b='); os.system('x') #"
        	initrd /boot/initrd.img-{{V10}}
        }
        menuentry 'both' {
        	linux /boot/vmlinuz-{{V10}} root=/dev/xvda1 'c="q"' "d=');" `id`
        }

        """));

    [Fact]
    public void Injection_ArgsAreInertTextInTheSxpRecord()
    {
        using var d = new TempDir("domboot-bl-d");
        var r = Boot(Injection, d.Path);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var (kernel, ramdisk) = BootloaderCommandTests.OutputFiles(d.Path);
        // GRUB's command line (grub_create_loader_cmdline): a word with a space is wrapped in "...", and \ ' " are
        // backslash-escaped; the record then holds that text as a Python repr (single quotes, \' and \\ escaped).
        Assert.Equal($"linux (kernel '{kernel}')(ramdisk '{ramdisk}')(args " + """'root=/dev/xvda1 a=$(reboot) "b=\\\'); os.system(\\\'x\\\') #"')""", r.Stdout);
    }

    [Fact]
    public void Injection_BothQuotesAreEscapedAsPythonReprDoes()
    {
        using var d = new TempDir("domboot-bl-d");
        var r = Boot(Injection, d.Path, "--entry=1");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var (kernel, _) = BootloaderCommandTests.OutputFiles(d.Path);
        Assert.Equal($"linux (kernel '{kernel}')(args " + """'root=/dev/xvda1 c=\\"q\\" d=\\\'); `id`')""", r.Stdout);
    }

    [Fact]
    public void Injection_TitleListedVerbatim()
    {
        var r = DombootProcess.Run(["bootloader", "-l", Injection], timeoutMs: TimeoutMs);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.StartsWith("title: x'); os.system('reboot') #\n", r.Stdout, StringComparison.Ordinal);
    }

    private static string Entry(string title, string kernel, string initrd = $"/boot/initrd.img-{V10}") =>
        $"menuentry '{title}' {{\n\tlinux {kernel} root=/dev/xvda1 ro\n\tinitrd {initrd}\n}}\n";

    private static readonly string Good = Entry("good", $"/boot/vmlinuz-{V10}");

    [Fact]
    public void SourceLoop_StopsAtTheDepthLimit()
    {
        var img = images.Ext4Mbr("source-loop.img", Root("source /boot/grub/grub.cfg\n" + Good,
            ("boot/grub/a.cfg", DiskBuilder.Text("source /boot/grub/b.cfg\n")), ("boot/grub/b.cfg", DiskBuilder.Text("source /boot/grub/a.cfg\n"))));
        using var d = new TempDir("domboot-bl-d");
        AssertRefused(Boot(img, d.Path), d.Path, "source depth 17 at line 1 exceeds the limit of 16");
    }

    [Fact]
    public void MutualSourceLoop_StopsAtTheDepthLimit()
    {
        var img = images.Ext4Mbr("source-loop2.img", Root("source /boot/grub/a.cfg\n" + Good,
            ("boot/grub/a.cfg", DiskBuilder.Text("source /boot/grub/b.cfg\n")), ("boot/grub/b.cfg", DiskBuilder.Text("source /boot/grub/a.cfg\n"))));
        using var d = new TempDir("domboot-bl-d");
        AssertRefused(Boot(img, d.Path), d.Path, "source depth 17");
    }

    [Fact]
    public void FunctionRecursionBomb_StopsAtTheCommandLimit()
    {
        var img = images.Ext4Mbr("function-bomb.img", Root("function f {\n  f\n  f\n}\nf\n" + Good));
        using var d = new TempDir("domboot-bl-d");
        AssertRefused(Boot(img, d.Path), d.Path, "function call depth 65 exceeds the limit of 64");
    }

    [Fact]
    public void HugeConfig_RefusedBySize()
    {
        var img = images.Build("huge-config.img", () =>
        {
            var raw = images.Builder.Raw("huge-config.img", 48, "label: dos\nstart=2048, type=83\n");
            var tree = images.Builder.Tree(Root("# a long comment\n" + Good));
            // 100 MB: the comment's text then a hole, so the image stays small.
            Tools.Run("truncate", "-s", "100M", Path.Combine(tree, "boot/grub/grub.cfg"));
            DiskBuilder.Ext4(raw, 1, 47, tree, RootUuid);
            return raw;
        });
        using var d = new TempDir("domboot-bl-d");
        AssertRefused(Boot(img, d.Path), d.Path, "104857600 bytes");
    }

    private string Escapes => images.Build("escapes.img", () =>
    {
        var cfg = "set default=0\n" + Entry("dotdot", $"/boot/../../../../boot/vmlinuz-{V10}") + Entry("passwd", "/boot/../../../../etc/passwd")
            + Entry("shadow-link", "/boot/vmlinuz-shadow") + Entry("relative-link", "/boot/vmlinuz-rel") + Entry("missing-initrd", $"/boot/vmlinuz-{V10}", "/boot/initrd.img-gone");
        var raw = images.Builder.Raw("escapes.img", 40, "label: dos\nstart=2048, type=83\n");
        var tree = images.Builder.Tree(Root(cfg, ("etc/passwd", DiskBuilder.Text("guest:x:0:0:the guest's own passwd:/:/bin/sh\n"))));
        File.CreateSymbolicLink(Path.Combine(tree, "boot/vmlinuz-shadow"), "/etc/shadow");
        File.CreateSymbolicLink(Path.Combine(tree, "boot/vmlinuz-rel"), $"../../../../../../boot/vmlinuz-{V10}");
        DiskBuilder.Ext4(raw, 1, 39, tree, RootUuid);
        return raw;
    });

    [Theory]
    [InlineData("0")]
    [InlineData("3")]
    public void PathEscape_ResolvesInsideTheGuest(string entry)
    {
        using var d = new TempDir("domboot-bl-d");
        var r = Boot(Escapes, d.Path, $"--entry={entry}");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var (kernel, ramdisk) = BootloaderCommandTests.OutputFiles(d.Path);
        Assert.Equal(KernelSha, Tools.Sha256(kernel));
        Assert.Equal(InitrdSha, Tools.Sha256(ramdisk!));
    }

    [Fact]
    public void PathEscape_DotDotReachesTheGuestsOwnPasswdOnly()
    {
        using (var guest = GuestDisks.Open([Escapes]))
        {
            var bytes = guest.ReadFile(new GuestPath("(hd0,msdos1)", "/boot/../../../../etc/passwd"), 4096);
            Assert.Equal("guest:x:0:0:the guest's own passwd:/:/bin/sh\n", Encoding.UTF8.GetString(bytes!));
        }
        using var d = new TempDir("domboot-bl-d");
        var r = Boot(Escapes, d.Path, "--entry=1");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Single(r.Stderr.TrimEnd('\n').Split('\n'));
        Assert.Empty(Directory.GetFileSystemEntries(d.Path));
    }

    [Fact]
    public void SymlinkToShadow_IsMissingInTheGuest()
    {
        using var d = new TempDir("domboot-bl-d");
        AssertRefused(Boot(Escapes, d.Path, "--entry=2"), d.Path, "/boot/vmlinuz-shadow");
    }

    [Fact]
    public void MissingInitrd_RefusedWithNothingLeft()
    {
        using var d = new TempDir("domboot-bl-d");
        AssertRefused(Boot(Escapes, d.Path, "--entry=4"), d.Path, "/boot/initrd.img-gone");
    }

    [Fact]
    public void MissingDefaultWithoutFallback_OneLineErrorNothingLeft()
    {
        var img = images.Ext4Mbr("no-fallback.img", Root("set default=0\n" + Entry("gone", "/boot/vmlinuz-6.1.0-99-amd64")));
        using var d = new TempDir("domboot-bl-d");
        var f = Path.Combine(d.Path, "..", Path.GetFileName(d.Path) + ".record");
        File.WriteAllBytes(f, []);
        var r = DombootProcess.Run(["bootloader", $"--output={f}", "--output-format=simple0", $"--output-directory={d.Path}", img], timeoutMs: TimeoutMs);
        AssertRefused(r, d.Path, "/boot/vmlinuz-6.1.0-99-amd64");
        Assert.Empty(File.ReadAllBytes(f));
        File.Delete(f);
    }
}
