using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Domains;

/// <summary>vcpu-pin/vcpu-list, block-attach/detach/list and network-list against real QEMU with the test guest.</summary>
public sealed class DeviceTests
{
    /// <summary>The host thread of vCPU <paramref name="vcpu"/> (debug-threads=on names it "CPU N/TCG" or "CPU N/KVM").</summary>
    internal static int VcpuThread(int qemuPid, int vcpu)
    {
        foreach (var task in Directory.GetDirectories($"/proc/{qemuPid}/task"))
        {
            string comm;
            try { comm = File.ReadAllText(Path.Combine(task, "comm")).Trim(); }
            catch (IOException) { continue; }
            if (comm.StartsWith($"CPU {vcpu}/", StringComparison.Ordinal)) return int.Parse(Path.GetFileName(task), System.Globalization.CultureInfo.InvariantCulture);
        }
        Assert.Fail($"QEMU pid {qemuPid} has no thread named CPU {vcpu}/...");
        return 0;
    }

    internal static string CpusAllowed(int qemuPid, int tid) =>
        File.ReadAllLines($"/proc/{qemuPid}/task/{tid}/status").Single(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal))["Cpus_allowed_list:".Length..].Trim();

    [Fact]
    public void VcpuPin_ChangesTheThreadsAffinity_AndCpusInConfigPinsAtStart()
    {
        Assert.True(Environment.ProcessorCount >= 2, "this test needs a host with at least 2 CPUs");
        using var h = new DomainHarness();
        h.Ok("create", h.KernelConfig("pin", vcpus: 2));
        h.WaitForConsole("pin", "^HEARTBEAT 1$");
        int qemu = h.Pids("pin").Qemu;
        int t0 = VcpuThread(qemu, 0), t1 = VcpuThread(qemu, 1);
        string before = CpusAllowed(qemu, t1);

        h.Ok("vcpu-pin", "pin", "0", "1");
        Assert.Equal("1", CpusAllowed(qemu, t0));
        Assert.Equal(before, CpusAllowed(qemu, t1));

        var list = h.Ok("vcpu-list", "pin").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)", list[0]);
        Assert.Equal(3, list.Length);
        Assert.Matches(@"^pin {29} +\d+     0 +\d+   [r-][b-][-p] +\d+\.\d  1 / all$", list[1]);
        Assert.Matches(@"^pin {29} +\d+     1 +\d+   [r-][b-][-p] +\d+\.\d  all / all$", list[2]);

        var json = JsonDocument.Parse(h.Ok("vcpu-list", "pin", "--json").Stdout).RootElement[0].GetProperty("vcpus");
        Assert.Equal(t0, json[0].GetProperty("thread_id").GetInt32());
        Assert.Equal("1", json[0].GetProperty("hard_affinity").GetString());

        // "all" (also the word xl uses) undoes it; a CPU the host does not have is a one-line usage error.
        h.Ok("vcpu-pin", "pin", "all", "all");
        Assert.Equal(before, CpusAllowed(qemu, t0));
        var bad = h.Domboot("vcpu-pin", "pin", "0", "4095");
        Assert.Equal(64, bad.ExitCode);
        Assert.Matches(@"^domboot: error: cpus ""4095"": CPU 4095 does not exist on this host \(CPUs 0-\d+\)\n$", bad.Stderr);
        Assert.Equal(64, h.Domboot("vcpu-pin", "pin", "2", "0").ExitCode);

        // cpus= in the config pins every vCPU at start.
        h.Ok("create", h.KernelConfig("pinned", extra: "cpus = \"1\"", vcpus: 2));
        h.WaitForConsole("pinned", "^HEARTBEAT 1$");
        int q2 = h.Pids("pinned").Qemu;
        Assert.Equal("1", CpusAllowed(q2, VcpuThread(q2, 0)));
        Assert.Equal("1", CpusAllowed(q2, VcpuThread(q2, 1)));
        var all = h.Ok("vcpu-list").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(5, all.Length); // header + 2 vCPUs of each domain
        Assert.Equal(2, all.Count(l => l.StartsWith("pinned ", StringComparison.Ordinal) && l.EndsWith("  1 / all", StringComparison.Ordinal)));
        h.Ok("destroy", "pinned");
        h.Ok("destroy", "pin");

        // cpus= naming only CPUs the host does not have fails the create with one line.
        var nowhere = h.Domboot("create", h.KernelConfig("nowhere", extra: "cpus = \"4000-4001\""));
        Assert.Equal(64, nowhere.ExitCode);
        Assert.Matches(@"(?m)^domboot: error: cpus for vCPU 0 is 4000-4001; none of these CPUs exists on this host \(CPUs 0-\d+\)\n\z", nowhere.Stderr);
        Assert.Null(h.Listed("nowhere"));
    }

    [Fact]
    public void BlockAttach_GuestSeesDisk_SurvivesReboot_DetachReleasesLock()
    {
        using var h = new DomainHarness();
        var disk = ToolstackGuest.ScratchDisk(h.Root, "data.qcow2", 8, "qcow2");
        h.Ok("create", h.KernelConfig("hot"));
        h.WaitForConsole("hot", "^BLOCKDEVS -$");

        int mark = h.ConsoleLog("hot").Length;
        h.Ok("block-attach", "hot", $"{disk},qcow2,xvdb,w");
        h.WaitForConsole("hot", "^BLOCKDEVS vda$", after: mark);

        var rows = h.Ok("block-list", "hot").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("Vdev     Format Access Type  State      Target", rows[0]);
        Assert.Equal($"xvdb     qcow2  rw     disk  attached   {disk}", rows[1]);
        var listed = JsonDocument.Parse(h.Ok("block-list", "hot", "--json").Stdout).RootElement;
        Assert.Equal("xvdb", listed[0].GetProperty("vdev").GetString());
        Assert.False(string.IsNullOrEmpty(listed[0].GetProperty("identity").GetString()));
        // A duplicate vdev is refused.
        Assert.Equal(64, h.Domboot("block-attach", "hot", $"{disk},qcow2,xvdb,r").ExitCode);

        // The attached disk is part of the domain from now on: a reboot boots with it.
        mark = h.ConsoleLog("hot").Length;
        h.Ok("reboot", "hot");
        h.WaitForConsole("hot", "^GUEST-UP", after: mark);
        h.WaitForConsole("hot", "^BLOCKDEVS vda$", after: mark);
        Assert.Contains("xvdb", h.Ok("block-list", "hot").Stdout, StringComparison.Ordinal);

        mark = h.ConsoleLog("hot").Length;
        h.Ok("block-detach", "hot", "xvdb");
        h.WaitForConsole("hot", "^BLOCKDEVS -$", after: mark);
        Assert.Single(h.Ok("block-list", "hot").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(64, h.Domboot("block-detach", "hot", "xvdb").ExitCode);

        // The lock went with it: another domain may now open the disk writable.
        h.Ok("create", h.KernelConfig("next", extra: $"disk = [ \"{disk},qcow2,xvda,w\" ]"));
        h.WaitForConsole("next", "^BLOCKDEVS vda$");
        h.Ok("destroy", "next");
        h.Ok("destroy", "hot");
    }

    [Fact]
    public void BlockAttach_RefusesADiskAnotherDomainHoldsWritable_SharesReadOnly()
    {
        using var h = new DomainHarness();
        var held = ToolstackGuest.ScratchDisk(h.Root, "held.img", 4);
        var shared = ToolstackGuest.ScratchDisk(h.Root, "shared.img", 4);
        h.Ok("create", h.KernelConfig("owner", extra: $"disk = [ \"{held},raw,xvda,w\" ]"));
        h.Ok("create", h.KernelConfig("taker"));
        h.WaitForConsole("taker", "^HEARTBEAT 1$");

        var refused = h.Domboot("block-attach", "taker", $"{held},raw,xvdb,w");
        Assert.Equal(64, refused.ExitCode);
        Assert.Equal($"domboot: error: disk {held} is in use by domain owner (writable); a disk opened writable cannot be shared\n", refused.Stderr);
        Assert.Equal(64, h.Domboot("block-attach", "taker", $"{held},raw,xvdb,r").ExitCode);

        h.Ok("block-attach", "owner", $"{shared},raw,xvdb,r");
        h.Ok("block-attach", "taker", $"{shared},raw,xvdb,r");
        h.WaitForConsole("taker", "^BLOCKDEVS vda$");
        h.WaitForConsole("owner", "^BLOCKDEVS vda vdb$");
        Assert.Contains("xvdb     raw    ro     disk  attached", h.Ok("block-list", "owner").Stdout, StringComparison.Ordinal);
        // ... but not writable while others read it.
        h.Ok("create", h.KernelConfig("third"));
        var writer = h.Domboot("block-attach", "third", $"{shared},raw,xvdb,w");
        Assert.Equal(64, writer.ExitCode);
        Assert.Contains("domain owner (read-only)", writer.Stderr, StringComparison.Ordinal);
        Assert.Contains("domain taker (read-only)", writer.Stderr, StringComparison.Ordinal);
        foreach (var d in new[] { "third", "taker", "owner" }) h.Ok("destroy", d);
    }

    [Fact]
    public void BlockDetach_GuestThatDoesNotAnswer_TimesOutNamingForce_ForceAndLateAnswerRelease()
    {
        using var h = new DomainHarness();
        var disk = ToolstackGuest.ScratchDisk(h.Root, "slow.img", 4);
        h.Ok("create", h.KernelConfig("slow"));
        h.WaitForConsole("slow", "^BLOCKDEVS -$");
        int mark = h.ConsoleLog("slow").Length;
        h.Ok("block-attach", "slow", $"{disk},raw,xvdb,w");
        h.WaitForConsole("slow", "^BLOCKDEVS vda$", after: mark);

        // A paused guest cannot acknowledge the ACPI eject.
        h.Ok("pause", "slow");
        var timedOut = h.Domboot("block-detach", "slow", "xvdb");
        Assert.Equal(75, timedOut.ExitCode); // EX_TEMPFAIL: the wait ran out
        Assert.Matches(@"^domboot: error: domain slow did not release xvdb within \d+ s .*`domboot block-detach --force slow xvdb`.*\n$", timedOut.Stderr);
        Assert.Contains("xvdb     raw    rw     disk  detaching", h.Ok("block-list", "slow").Stdout, StringComparison.Ordinal);

        var forced = h.Ok("block-detach", "--force", "slow", "xvdb");
        Assert.Contains("has not released xvdb", forced.Stderr, StringComparison.Ordinal);
        Assert.Contains("xvdb     raw    rw     disk  forced", h.Ok("block-list", "slow").Stdout, StringComparison.Ordinal);
        // QEMU still has the image open, so the lock is still held (and names the domain).
        h.Ok("create", h.KernelConfig("other"));
        var refused = h.Domboot("block-attach", "other", $"{disk},raw,xvdb,w");
        Assert.Equal(64, refused.ExitCode);
        Assert.Contains("domain slow (writable)", refused.Stderr, StringComparison.Ordinal);

        // When the guest runs again it acknowledges the eject, and the supervisor finishes the detach.
        mark = h.ConsoleLog("slow").Length;
        h.Ok("unpause", "slow");
        h.WaitForConsole("slow", "^BLOCKDEVS -$", after: mark);
        h.WaitUntil(() => !h.Ok("block-list", "slow").Stdout.Contains("xvdb", StringComparison.Ordinal), "the late detach of xvdb");
        h.Ok("block-attach", "other", $"{disk},raw,xvdb,w");

        // After a reboot an attached disk is a -drive: --force cuts the guest off it with drive_del at once.
        var second = ToolstackGuest.ScratchDisk(h.Root, "second.img", 4);
        h.Ok("block-attach", "slow", $"{second},raw,xvdc,w");
        mark = h.ConsoleLog("slow").Length;
        h.Ok("reboot", "slow");
        h.WaitForConsole("slow", "^GUEST-UP", after: mark);
        h.WaitForConsole("slow", "^BLOCKDEVS vda$", after: mark);
        h.Ok("pause", "slow");
        var cut = h.Ok("block-detach", "--force", "slow", "xvdc");
        Assert.Equal("", cut.Stderr);
        Assert.DoesNotContain("xvdc", h.Ok("block-list", "slow").Stdout, StringComparison.Ordinal);
        h.Ok("block-attach", "other", $"{second},raw,xvdc,w"); // QEMU's own image lock is gone too
        h.Ok("unpause", "slow");
        h.Ok("destroy", "other");
        h.Ok("destroy", "slow");
    }

    [Fact]
    public void NetworkList_ShowsSshAndVifForwards_WhichListen()
    {
        using var h = new DomainHarness();
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
        }
        h.Ok("create", h.KernelConfig("net", extra: $"vif = [ \"mac=00:16:3e:12:34:56,forward=tcp:{port}:80\" ]"));
        int id = h.Listed("net")!.Value.GetProperty("domid").GetInt32();
        int ssh = 2200 + id;

        var rows = h.Ok("network-list", "net").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("Idx Mac Addr.         Model            IP              Forwards", rows[0]);
        Assert.Equal($"0   00:16:3e:12:34:56 virtio-net-pci   -               127.0.0.1:{ssh}->22/tcp, 127.0.0.1:{port}->80/tcp", rows[1]);
        var json = JsonDocument.Parse(h.Ok("network-list", "net", "--json").Stdout).RootElement[0];
        Assert.Equal("00:16:3e:12:34:56", json.GetProperty("mac").GetString());
        Assert.Equal(ssh, json.GetProperty("forwards")[0].GetProperty("host_port").GetInt32());
        Assert.Equal(80, json.GetProperty("forwards")[1].GetProperty("guest_port").GetInt32());

        foreach (int p in new[] { ssh, port })
        {
            using var client = new TcpClient();
            client.Connect(IPAddress.Loopback, p); // QEMU's user-mode network listens on the host side
            Assert.True(client.Connected, $"127.0.0.1:{p} does not accept connections");
        }
        h.Ok("destroy", "net");
    }
}
