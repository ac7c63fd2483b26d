using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Domains;

/// <summary>A guest panic (pvpanic) follows on_crash: destroy (default), preserve, restart.</summary>
public sealed class CrashTests
{
    [Fact]
    public void Panic_OnCrashDestroyPreserveRestart()
    {
        using var h = new DomainHarness();
        h.Ok("create", h.KernelConfig("cd", cmdlineExtra: "guest.panic_after=3", memory: 128));
        h.Ok("create", h.KernelConfig("cp", "on_crash = \"preserve\"", cmdlineExtra: "guest.panic_after=3", memory: 128));
        h.Ok("create", h.KernelConfig("cr", "on_crash = \"restart\"", cmdlineExtra: "guest.panic_after=3", memory: 128));

        // default on_crash=destroy: gone, and the supervisor log names the panic
        h.WaitUntil(() => h.Listed("cd") is null, "cd gone after its panic", TimeSpan.FromSeconds(90));
        Assert.Contains(ToolstackGuest.PanickingLine, h.ConsoleLog("cd"), StringComparison.Ordinal);
        var log = FaultProbe.Log(h, "cd");
        Assert.Contains("guest panicked", log, StringComparison.Ordinal);
        Assert.Matches("guest crash .*action destroy", log);
        Assert.Empty(FaultProbe.QemuPids(h, "cd"));

        // preserve: listed as crashed (s + c), QEMU kept until destroy
        h.WaitUntil(() => h.Listed("cp")?.GetProperty("state").GetString() == "crashed", "cp crashed", TimeSpan.FromSeconds(90));
        var row = h.Ok("list", "cp").Stdout.Split('\n')[1];
        Assert.Matches(@"^cp +\d+ +128 +1 +---sc- ", row);
        Assert.Single(FaultProbe.QemuPids(h, "cp"));
        h.Ok("destroy", "cp");
        Assert.Null(h.Listed("cp"));
        Assert.False(FaultProbe.FolderExists(h, "cp"));
        Assert.Empty(FaultProbe.QemuPids(h, "cp"));

        // restart: boots again
        h.WaitUntil(() => FaultProbe.CountMatches(h.ConsoleLog("cr"), "^GUEST-UP ") >= 2, "cr booted again after its panic", TimeSpan.FromSeconds(90));
        Assert.NotNull(h.Listed("cr"));
        Assert.Matches("guest crash .*action restart", FaultProbe.Log(h, "cr"));
        h.Ok("destroy", "cr");
    }
}
