using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Domains;

/// <summary>kill -9 of QEMU, of the supervisor, or of both: list tells the truth, destroy cleans up, nothing stale blocks a new domain.</summary>
public sealed class KillTests
{
    [Fact]
    public void KillQemu_SupervisorAppliesOnCrash_ReleasesDisk()
    {
        using var h = new DomainHarness();
        var disk = ToolstackGuest.ScratchDisk(h.Root, "kq", 4);
        h.Ok("create", FaultProbe.DiskConfig(h, "kq", disk, writable: true));
        var (qemu, supervisor) = h.Pids("kq");
        FaultProbe.Kill9(qemu);
        h.WaitUntil(() => h.Listed("kq") is null, "kq gone after its QEMU was killed");
        h.WaitUntil(() => !DomainHarness.Alive(supervisor), "kq's supervisor exit");
        var log = FaultProbe.Log(h, "kq");
        Assert.Contains("without a SHUTDOWN event", log, StringComparison.Ordinal);
        Assert.Matches("guest crash .*action destroy", log);
        h.Ok("create", FaultProbe.DiskConfig(h, "kq2", disk, writable: true));
        h.Ok("destroy", "kq2");
    }

    [Fact]
    public void KillSupervisor_ListFlagsOrphan_DestroyCleansUp_NameAndDiskReusable()
    {
        using var h = new DomainHarness();
        var disk = ToolstackGuest.ScratchDisk(h.Root, "ks", 4);
        var cfg = FaultProbe.DiskConfig(h, "ks", disk, writable: true);
        h.Ok("create", cfg);
        h.WaitForConsole("ks", "^GUEST-UP ");
        var (qemu, supervisor) = h.Pids("ks");
        FaultProbe.Kill9(supervisor);
        h.WaitUntil(() => !DomainHarness.Alive(supervisor), "the supervisor's death");

        var list = h.Ok("list");
        Assert.Matches(@"(?m)^ks +\d+ +128 +1 +[-a-z]{5}d ", list.Stdout);
        Assert.Contains("domain ks: its supervisor", list.Stderr, StringComparison.Ordinal);
        Assert.Equal("running", h.Listed("ks")!.Value.GetProperty("state").GetString());
        Assert.True(DomainHarness.Alive(qemu));

        var pause = h.Domboot("pause", "ks");
        Assert.Equal(69, pause.ExitCode); // unavailable
        var line = Assert.Single(pause.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("supervisor", line, StringComparison.Ordinal);
        Assert.Contains("destroy ks", line, StringComparison.Ordinal);

        // the orphan still holds its disk and its name: say so, start nothing
        var sameName = h.Domboot("create", cfg);
        Assert.Equal(64, sameName.ExitCode);
        Assert.Contains("already exists", sameName.Stderr, StringComparison.Ordinal);
        var sameDisk = h.Domboot("create", FaultProbe.DiskConfig(h, "other", disk, writable: true));
        Assert.Equal(64, sameDisk.ExitCode);
        Assert.Contains("domain ks", sameDisk.Stderr, StringComparison.Ordinal);
        Assert.Empty(FaultProbe.QemuPids(h, "other"));

        h.Ok("destroy", "ks");
        Assert.False(DomainHarness.Alive(qemu));
        Assert.False(FaultProbe.FolderExists(h, "ks"));
        Assert.Null(h.Listed("ks"));

        h.Ok("create", cfg);
        h.WaitForConsole("ks", "^GUEST-UP ");
        h.Ok("destroy", "ks");
    }

    [Fact]
    public void KillBoth_ListForgets_NameAndDiskReusable()
    {
        using var h = new DomainHarness();
        var disk = ToolstackGuest.ScratchDisk(h.Root, "kb", 4);
        var cfg = FaultProbe.DiskConfig(h, "kb", disk, writable: true);
        h.Ok("create", cfg);
        var (qemu, supervisor) = h.Pids("kb");
        FaultProbe.Kill9(supervisor);
        FaultProbe.Kill9(qemu);
        h.WaitUntil(() => !DomainHarness.Alive(supervisor) && !DomainHarness.Alive(qemu), "both processes' death");
        Assert.True(FaultProbe.FolderExists(h, "kb")); // left behind with its sockets and lock files

        // the stale folder, sockets and lock files do not block the same name and disk
        h.Ok("create", cfg);
        Assert.Single(FaultProbe.QemuPids(h, "kb"));
        var listed = h.Listed("kb")!.Value;
        Assert.True(listed.GetProperty("supervised").GetBoolean());
        Assert.NotEqual(qemu, listed.GetProperty("qemu_pid").GetInt32());

        // killed again, list forgets it (and clears the folder)
        (qemu, supervisor) = h.Pids("kb");
        FaultProbe.Kill9(supervisor);
        FaultProbe.Kill9(qemu);
        h.WaitUntil(() => !DomainHarness.Alive(supervisor) && !DomainHarness.Alive(qemu), "both processes' death");
        var list = h.Ok("list");
        Assert.DoesNotContain("kb", list.Stdout, StringComparison.Ordinal);
        Assert.False(FaultProbe.FolderExists(h, "kb"));
        h.Ok("create", cfg);
        h.Ok("destroy", "kb");
    }
}
