using System.Globalization;
using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests;

/// <summary>`domboot run` on a real terminal (tmux): the guest console shows up, and Ctrl-C tears the guest down.</summary>
public sealed class TerminalTests : IDisposable
{
    private readonly TempDir _dir = new("domboot-tty");
    private readonly string _session = "domboot-test-" + Guid.NewGuid().ToString("N")[..8];

    public void Dispose()
    {
        Tools.Run("tmux", ["kill-session", "-t", _session], check: false);
        _dir.Dispose();
    }

    private string Pane() => Tools.Run("tmux", ["capture-pane", "-p", "-t", _session, "-S", "-200"]).Stdout;

    private async Task WaitForPane(string text, TimeSpan limit)
    {
        var until = DateTime.UtcNow + limit;
        while (!Pane().Contains(text, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > until) Assert.Fail($"terminal never showed {text}:\n{Pane()}");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task CtrlC_OnATerminal_TearsTheGuestDownWithExit130()
    {
        Tools.Require("tmux");
        Tools.Require("qemu-system-x86_64");
        var initrd = _dir.File("init.cpio");
        File.WriteAllBytes(initrd, DomBoot.Engine.Demo.DemoGuest.BuildInitramfs(Cache.Busybox,
            "#!/bin/sh\necho TTY-GUEST-READY\nwhile true; do /bin/busybox sleep 5; done\n"));
        var script = _dir.File("run.sh");
        File.WriteAllText(script, string.Create(CultureInfo.InvariantCulture,
            $"'{DombootProcess.Executable}' run --kernel '{Cache.Kernel}' --initrd '{initrd}' --cmdline 'console=ttyS0 quiet' --memory 256 --accel tcg; echo \"DOMBOOT-EXIT=$?\"; sleep 600\n"));
        Tools.Run("tmux", ["new-session", "-d", "-s", _session, "-x", "200", "-y", "50", "bash " + script]);
        await WaitForPane("TTY-GUEST-READY", TimeSpan.FromMinutes(2));
        Tools.Run("tmux", ["send-keys", "-t", _session, "C-c"]);
        await WaitForPane("DOMBOOT-EXIT=", TimeSpan.FromSeconds(30));
        var pane = Pane();
        Assert.Contains("DOMBOOT-EXIT=130", pane, StringComparison.Ordinal);
        Assert.Contains("interrupted: guest torn down", pane, StringComparison.Ordinal);
        var runtimeLeft = Tools.Run("pgrep", ["-f", "qemu-system-x86_64.*" + Path.GetFileName(_dir.Path)], check: false);
        Assert.True(runtimeLeft.ExitCode != 0, "QEMU still running: " + runtimeLeft.Stdout);
    }
}
