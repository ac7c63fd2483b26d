using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Domains;

/// <summary>create / list / pause / unpause / shutdown -w against real QEMU with the test guest.</summary>
public sealed class LifecycleTests
{
    [Fact]
    public void Create_ListPauseUnpauseShutdown_GuestFollows()
    {
        using var h = new DomainHarness();
        var cfg = h.KernelConfig("life", memory: 256, vcpus: 2);
        var created = h.Ok("create", cfg);
        Assert.Matches(@"^Started domain life \(id \d+\)", created.Stdout);
        h.WaitForConsole("life", "^GUEST-UP cmdline=.*console=ttyS0");
        h.WaitForConsole("life", "^HEARTBEAT 3$");

        var list = h.Ok("list").Stdout.Split('\n');
        Assert.Equal("Name                                        ID   Mem VCPUs\tState\tTime(s)", list[0]);
        Assert.Matches(@"^life {36} +\d+   256     2     r-----  +\d+\.\d$", list[1]);

        h.Ok("pause", "life");
        Assert.Equal("paused", h.Listed("life")!.Value.GetProperty("state").GetString());
        Thread.Sleep(600);
        int frozen = h.LastHeartbeat("life");
        Thread.Sleep(1500);
        Assert.Equal(frozen, h.LastHeartbeat("life"));

        h.Ok("unpause", "life");
        h.WaitForConsole("life", $"^HEARTBEAT {frozen + 2}$");

        h.Ok("shutdown", "-w", "life");
        Assert.Contains("GUEST-POWERBUTTON", h.ConsoleLog("life"), StringComparison.Ordinal);
        Assert.Null(h.Listed("life"));
        Assert.False(Directory.Exists(Path.Combine(h.StateDir, "domains", "life")));
    }

    [Fact]
    public void ShutdownWait_GuestThatIgnoresThePowerButton_TimesOutWithOneLine()
    {
        using var h = new DomainHarness();
        h.Ok("create", h.KernelConfig("deaf"));
        h.WaitForConsole("deaf", "^HEARTBEAT 2$");
        // A paused guest cannot answer the ACPI button: shutdown -w must give up, say so, and leave the domain be.
        h.Ok("pause", "deaf");
        var r = h.Domboot("shutdown", "-w", "--timeout", "3", "deaf");
        Assert.Equal(75, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("Shutting down domain deaf", lines[0]);
        Assert.Matches(@"^domboot: error: domain deaf did not shut down within 3 s \(the guest ignored the ACPI power button; `domboot destroy deaf` forces it off\)$", lines[1]);
        Assert.Equal(2, lines.Length);
        Assert.NotNull(h.Listed("deaf"));
        // Unpaused, the guest sees the pending button press and powers off.
        h.Ok("unpause", "deaf");
        h.WaitUntil(() => h.Listed("deaf") is null, "the guest to act on the power button after unpause");
        Assert.Contains("GUEST-POWERBUTTON", h.ConsoleLog("deaf"), StringComparison.Ordinal);
    }
}
