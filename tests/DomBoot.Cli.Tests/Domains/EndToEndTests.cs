using System.Text.RegularExpressions;
using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Domains;

/// <summary>
/// Issue 6's end-to-end run, in one domain's life: create from a config with -D variables → list → pause (the
/// heartbeat stops) → unpause → save → restore (the counter continues: memory came back) → vcpu-pin (the vCPU
/// thread's affinity changes) → block-attach (the guest sees the disk) → block-detach → shutdown (clean power-off)
/// → gone from list.
/// </summary>
public sealed class EndToEndTests
{
    [Fact]
    public void Domain_WholeLifeCycle_WithRealQemu()
    {
        using var h = new DomainHarness();
        var cfg = h.File("e2e.cfg");
        File.WriteAllText(cfg, $$"""
            # a domain template: name, memory and marker come from -D
            name = "e2e-${vm}"
            kernel = "{{Cache.Kernel}}"
            ramdisk = "{{h.Initramfs}}"
            cmdline = "{{ToolstackGuest.BaseCmdline}} guest.marker=${marker}"
            memory = ${mem}
            vcpus = 2

            """);
        var created = h.Ok("create", cfg, "-D", "vm=7:mem=256", "-D", "marker=abc");
        Assert.Matches(@"^Started domain e2e-7 \(id (\d+)\)", created.Stdout);
        int id = int.Parse(Regex.Match(created.Stdout, @"\(id (\d+)\)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        const string name = "e2e-7";
        h.WaitForConsole(name, "^GUEST-UP cmdline=.*guest.marker=abc");
        h.WaitForConsole(name, "^HEARTBEAT 3$");

        // list: running, xl's columns.
        Assert.Matches($@"(?m)^e2e-7 +{id} +256 +2 +r----- +\d+\.\d$", h.Ok("list").Stdout);

        // pause: the heartbeat stops; unpause: it goes on.
        h.Ok("pause", name);
        Thread.Sleep(700);
        int frozen = h.LastHeartbeat(name);
        Thread.Sleep(1500);
        Assert.Equal(frozen, h.LastHeartbeat(name));
        Assert.Matches(@"(?m)^e2e-7 .* --p--- ", h.Ok("list").Stdout);
        h.Ok("unpause", name);
        h.WaitForConsole(name, $"^HEARTBEAT {frozen + 2}$");

        // save: the domain is gone; restore: the counter continues where it stopped, no second boot.
        var save = h.File("e2e.save");
        h.Ok("save", name, save);
        Assert.Null(h.Listed(name));
        int beforeSave = h.LastHeartbeat(name);
        int consoleLength = h.ConsoleLog(name).Length;
        h.Ok("restore", save);
        var next = h.WaitForConsole(name, @"^HEARTBEAT \d+$", after: consoleLength);
        int resumed = int.Parse(next["HEARTBEAT ".Length..], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(resumed, beforeSave + 1, beforeSave + 2);
        Assert.DoesNotContain("GUEST-UP", h.ConsoleLog(name)[consoleLength..], StringComparison.Ordinal);

        // vcpu-pin: vCPU 1's thread may run on host CPU 0 only.
        var (qemu, _) = h.Pids(name);
        int tid = DeviceTests.VcpuThread(qemu, 1);
        h.Ok("vcpu-pin", name, "1", "0");
        Assert.Equal("0", DeviceTests.CpusAllowed(qemu, tid));
        Assert.Matches(@"(?m)^e2e-7 +\d+ +1 +\d+ +\S+ +\d+\.\d +0 / all", h.Ok("vcpu-list", name).Stdout);

        // block-attach: the guest sees a new virtio disk; block-detach: it goes away.
        var scratch = ToolstackGuest.ScratchDisk(h.Root, "scratch", 16, "qcow2");
        h.Ok("block-attach", name, $"format=qcow2,vdev=xvdb,access=w,target={scratch}");
        int mark = h.ConsoleLog(name).Length;
        h.WaitForConsole(name, "^BLOCKDEVS vda$", after: mark);
        Assert.Contains("xvdb", h.Ok("block-list", name).Stdout, StringComparison.Ordinal);
        h.Ok("block-detach", name, "xvdb");
        mark = h.ConsoleLog(name).Length;
        h.WaitForConsole(name, "^BLOCKDEVS -$", after: mark);

        // shutdown: the guest's acpid powers it off; the domain is gone.
        h.Ok("shutdown", "-w", name);
        Assert.Contains("GUEST-POWERBUTTON", h.ConsoleLog(name)[mark..], StringComparison.Ordinal);
        Assert.Null(h.Listed(name));
        Assert.Contains("guest-shutdown", File.ReadAllText(Path.Combine(h.StateDir, "logs", name + ".log")), StringComparison.Ordinal);
    }
}
