using System.Globalization;
using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Bootloader;

/// <summary>
/// The interactive menu on a real terminal (tmux), as xl runs a bootloader without -q: arrows move, Enter boots,
/// e edits the command line, the config's timeout boots the default. Size limits on what is copied out.
/// </summary>
public sealed class InteractiveMenuTests(BootloaderImages images) : IClassFixture<BootloaderImages>, IDisposable
{
    private readonly string _session = "domboot-menu-" + Guid.NewGuid().ToString("N")[..8];
    private readonly TempDir _dir = new("domboot-menu");

    public void Dispose()
    {
        Tools.Run("tmux", ["kill-session", "-t", _session], check: false);
        _dir.Dispose();
    }

    private string Disk(string timeout) =>
        images.Ext4Mbr($"menu-{timeout}.img", BootloaderImages.Root(BootloaderImages.DebianGrubCfg().Replace("set timeout=5", "set timeout=" + timeout, StringComparison.Ordinal)));

    private string Pane() => Tools.Run("tmux", ["capture-pane", "-p", "-t", _session, "-S", "-100"]).Stdout;

    private async Task Wait(string text, TimeSpan limit)
    {
        var until = DateTime.UtcNow + limit;
        while (!Pane().Contains(text, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > until) Assert.Fail($"terminal never showed {text}:\n{Pane()}");
            await Task.Delay(100);
        }
    }

    /// <summary>Starts `domboot bootloader` (no -q) on a tmux terminal writing a simple record to a file.</summary>
    private (string Record, string Out) Start(string disk)
    {
        Tools.Require("tmux");
        var outDir = Directory.CreateDirectory(_dir.File("out")).FullName;
        var record = _dir.File("record");
        File.WriteAllText(record, "");
        var script = _dir.File("menu.sh");
        File.WriteAllText(script, string.Create(CultureInfo.InvariantCulture,
            $"'{DombootProcess.Executable}' bootloader --output='{record}' --output-format=simple --output-directory='{outDir}' '{disk}'; echo \"MENU-EXIT=$?\"; sleep 600\n"));
        Tools.Run("tmux", ["new-session", "-d", "-s", _session, "-x", "160", "-y", "40", "bash " + script]);
        return (record, outDir);
    }

    [Fact]
    public async Task ArrowDownAndEnter_BootsTheSecondEntry()
    {
        var (record, _) = Start(Disk("30"));
        await Wait("Arrows move, Enter boots", TimeSpan.FromSeconds(30));
        Assert.Contains(">  0  Debian GNU/Linux", Pane(), StringComparison.Ordinal);
        Tools.Run("tmux", ["send-keys", "-t", _session, "Down"]);
        await Wait(">  1  Advanced options for Debian GNU/Linux > ", TimeSpan.FromSeconds(10));
        Tools.Run("tmux", ["send-keys", "-t", _session, "Enter"]);
        await Wait("MENU-EXIT=0", TimeSpan.FromSeconds(30));
        Assert.Contains("args root=/dev/xvda1 ro single\n", File.ReadAllText(record), StringComparison.Ordinal);
    }

    [Fact]
    public async Task E_EditsTheCommandLine()
    {
        var (record, _) = Start(Disk("30"));
        await Wait("Arrows move, Enter boots", TimeSpan.FromSeconds(30));
        Tools.Run("tmux", ["send-keys", "-t", _session, "e"]);
        await Wait("args [root=/dev/xvda1 ro quiet]:", TimeSpan.FromSeconds(10));
        Tools.Run("tmux", ["send-keys", "-t", _session, "-l", "root=/dev/xvda1 ro init=/bin/sh"]);
        Tools.Run("tmux", ["send-keys", "-t", _session, "Enter"]);
        await Wait("MENU-EXIT=0", TimeSpan.FromSeconds(30));
        Assert.Contains("args root=/dev/xvda1 ro init=/bin/sh\n", File.ReadAllText(record), StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoKey_TheConfigsTimeoutBootsTheDefault()
    {
        var (record, _) = Start(Disk("2"));
        var started = DateTime.UtcNow;
        await Wait("MENU-EXIT=0", TimeSpan.FromSeconds(30));
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromSeconds(1.5), "the menu did not wait for the config's timeout");
        Assert.Contains("args root=/dev/xvda1 ro quiet\n", File.ReadAllText(record), StringComparison.Ordinal);
    }

    [Fact]
    public void Quiet_NeverWaitsEvenWithALongTimeout()
    {
        var outDir = Directory.CreateDirectory(_dir.File("q")).FullName;
        var started = DateTime.UtcNow;
        var r = DombootProcess.Run("bootloader", "-q", "--output-format=simple", $"--output-directory={outDir}", Disk("30"));
        Assert.Equal(0, r.ExitCode);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(20));
    }

    [Theory]
    [InlineData("--max-kernel-size=1000000", "is 14")]
    [InlineData("--max-initrd-size=1000", "expected at most 1000")]
    public void SizeLimits_RefuseBigFilesAndLeaveNothing(string limit, string message)
    {
        var outDir = Directory.CreateDirectory(_dir.File("lim" + Guid.NewGuid().ToString("N")[..4])).FullName;
        var r = DombootProcess.Run("bootloader", "-q", limit, "--output-format=simple", $"--output-directory={outDir}", Disk("30"));
        Assert.Equal(65, r.ExitCode);
        Assert.Contains(message, r.Stderr, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(outDir));
    }
}
