using System.Diagnostics;
using System.Text.Json.Nodes;
using DomBoot.Boot.Discovery;
using DomBoot.Boot.Selection;
using DomBoot.Engine.Qmp;
using DomBoot.TestSupport;

namespace DomBoot.Toolstack.Tests.Guest;

/// <summary>The toolstack test guest under real QEMU (TCG): what it prints and how it reacts to QMP.</summary>
public class ToolstackGuestTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Boot_HeartbeatsListsDisksSeesHotplug_AndPowerButtonShutsDown()
    {
        using var dir = new TempDir();
        var root = ToolstackGuest.ScratchDisk(dir.Path, "root.raw", 16);
        var scratch = ToolstackGuest.ScratchDisk(dir.Path, "scratch.qcow2", 16, "qcow2");
        await using var vm = await Vm.StartAsync(dir, "guest.test=1", root);
        try
        {
            var up = await vm.WaitForLineAsync(l => l.StartsWith(ToolstackGuest.UpPrefix, StringComparison.Ordinal));
            Assert.Equal(ToolstackGuest.UpPrefix + ToolstackGuest.BaseCmdline + " guest.test=1", up);
            await vm.WaitForLineAsync(l => l == "HEARTBEAT 3");
            var lines = vm.Lines();
            Assert.Single(lines, l => l.StartsWith(ToolstackGuest.UpPrefix, StringComparison.Ordinal));
            Assert.DoesNotContain(lines, l => l.StartsWith("GUEST-MODULE-FAILED", StringComparison.Ordinal) || l == "GUEST-ACPID-FAILED");
            var beats = lines.Where(l => l.StartsWith(ToolstackGuest.HeartbeatPrefix, StringComparison.Ordinal)).Take(3).ToList();
            Assert.Equal(["HEARTBEAT 1", "HEARTBEAT 2", "HEARTBEAT 3"], beats);
            Assert.Contains("BLOCKDEVS vda", lines);

            // hot-attach the qcow2 scratch disk: the guest lists it within a second
            await vm.Qmp.ExecuteAsync("blockdev-add", new JsonObject
            {
                ["driver"] = "qcow2",
                ["node-name"] = "scratch",
                ["file"] = new JsonObject { ["driver"] = "file", ["filename"] = scratch },
            }, Wait, CancellationToken.None);
            await vm.Qmp.ExecuteAsync("device_add", new JsonObject
            {
                ["driver"] = "virtio-blk-pci",
                ["drive"] = "scratch",
                ["id"] = "scratch0",
            }, Wait, CancellationToken.None);
            await vm.WaitForLineAsync(l => l == "BLOCKDEVS vda vdb");

            await vm.Qmp.ExecuteAsync("system_powerdown", null, Wait, CancellationToken.None);
            var shutdown = await vm.WaitForEventAsync("SHUTDOWN");
            Assert.Equal("guest-shutdown", (string?)shutdown.Data?["reason"]);
            await vm.WaitForExitAsync();
            Assert.Contains(ToolstackGuest.PowerButtonLine, vm.Lines());
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new InvalidOperationException($"{e.Message}\n--- guest console ---\n{vm.Console}", e);
        }
    }

    [Fact]
    public async Task PanicAfter_ReportsGuestPanickedThroughPvpanic()
    {
        using var dir = new TempDir();
        await using var vm = await Vm.StartAsync(dir, "guest.panic_after=2");
        var panicked = await vm.WaitForEventAsync("GUEST_PANICKED");
        Assert.Equal("pause", (string?)panicked.Data?["action"]);
        var status = await vm.Qmp.ExecuteAsync("query-status", null, Wait, CancellationToken.None);
        Assert.Equal("guest-panicked", (string?)status?["status"]);
        var lines = vm.Lines();
        Assert.Contains("HEARTBEAT 2", lines);
        Assert.Contains(ToolstackGuest.PanickingLine, lines);
        Assert.DoesNotContain("HEARTBEAT 3", lines);
    }

    [Fact]
    public async Task RebootAfter_ExitsWithGuestResetUnderNoReboot()
    {
        using var dir = new TempDir();
        await using var vm = await Vm.StartAsync(dir, "guest.reboot_after=2");
        var shutdown = await vm.WaitForEventAsync("SHUTDOWN");
        Assert.Equal("guest-reset", (string?)shutdown.Data?["reason"]);
        await vm.WaitForExitAsync();
        Assert.Contains(ToolstackGuest.RebootingLine, vm.Lines());
    }

    [Fact]
    public void BootDisk_BootloaderPicksTheDefault_AndSetDefaultEntryChangesIt()
    {
        using var dir = new TempDir();
        var disk = ToolstackGuest.BootDisk(dir.Path, "boot.raw", 1);
        Assert.Equal(ToolstackGuest.BaseCmdline + " guest.entry=second", Chosen(disk).Args);

        ToolstackGuest.SetDefaultEntry(disk, 0);
        var first = Chosen(disk);
        Assert.Equal(ToolstackGuest.BaseCmdline + " guest.entry=first", first.Args);
        var release = Cache.KernelRelease;
        Assert.Equal("/boot/vmlinuz-" + release, first.Kernel?.Path);
        Assert.Equal(["/boot/initrd.img-" + release], first.Initrds.Select(i => i.Path));

        ToolstackGuest.SetDefaultEntry(disk, 1);
        Assert.Equal(ToolstackGuest.BaseCmdline + " guest.entry=second", Chosen(disk).Args);
        Assert.Equal([disk], Directory.GetFiles(dir.Path)); // no temporary image or tree left behind
    }

    [Fact]
    public void ScratchDisk_IsAnEmptyImageOfTheAskedFormatAndSize()
    {
        using var dir = new TempDir();
        foreach (var format in new[] { "raw", "qcow2" })
        {
            var path = ToolstackGuest.ScratchDisk(dir.Path, "s." + format, 8, format);
            var info = JsonNode.Parse(Tools.Run("qemu-img", "info", "--output=json", path).Stdout)!;
            Assert.Equal(format, (string?)info["format"]);
            Assert.Equal(8L << 20, (long?)info["virtual-size"]);
        }
        Assert.Throws<ArgumentException>(() => ToolstackGuest.ScratchDisk(dir.Path, "s.vmdk", 8, "vmdk"));
    }

    private static DomBoot.Boot.Model.BootEntry Chosen(string disk)
    {
        using var guest = GuestDisks.Open([disk]);
        var found = BootDiscovery.Discover(guest, new BootloaderLimits());
        guest.SetDefaultDevice(found.Device);
        return EntrySelector.Select(found.Menu, null, guest).Entry;
    }

    /// <summary>One QEMU running the guest from Cache.Kernel and the initramfs, console in a file, QMP connected.</summary>
    private sealed class Vm : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly string _log;

        public QmpClient Qmp { get; }

        private Vm(Process process, string log, QmpClient qmp)
        {
            _process = process;
            _log = log;
            Qmp = qmp;
        }

        public static async Task<Vm> StartAsync(TempDir dir, string extraCmdline, params string[] rawDisks)
        {
            var log = dir.File("console.log");
            var sock = dir.File("qmp.sock");
            var psi = new ProcessStartInfo(Tools.Require("qemu-system-x86_64"))
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
            };
            foreach (var a in new[]
            {
                "-machine", "pc,accel=tcg", "-cpu", "Haswell-noTSX,-x2apic,-tsc-deadline,-invpcid,-pcid", "-m", "256",
                "-nodefaults", "-no-user-config", "-display", "none", "-serial", "file:" + log,
                "-qmp", $"unix:{sock},server=on,wait=off", "-no-reboot", "-device", "pvpanic", "-action", "panic=pause",
                "-kernel", Cache.Kernel, "-initrd", ToolstackGuest.Initramfs(dir.Path),
                "-append", $"{ToolstackGuest.BaseCmdline} {extraCmdline}",
            })
                psi.ArgumentList.Add(a);
            foreach (var d in rawDisks)
            {
                psi.ArgumentList.Add("-drive");
                psi.ArgumentList.Add($"file={d},format=raw,if=virtio");
            }
            var process = Process.Start(psi)!;
            process.StandardInput.Close();
            // drain QEMU's own output so a chatty run cannot block on a full pipe
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                var qmp = await QmpClient.ConnectAsync(sock, Wait, CancellationToken.None);
                return new Vm(process, log, qmp);
            }
            catch
            {
                Kill(process);
                process.Dispose();
                throw;
            }
        }

        public string Console
        {
            get
            {
                if (!File.Exists(_log)) return "";
                using var f = new FileStream(_log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var r = new StreamReader(f);
                return r.ReadToEnd();
            }
        }

        public List<string> Lines() => [.. Console.Split('\n').Select(l => l.TrimEnd('\r'))];

        public async Task<string> WaitForLineAsync(Func<string, bool> match)
        {
            var deadline = Stopwatch.StartNew();
            while (deadline.Elapsed < Wait)
            {
                var hit = Lines().FirstOrDefault(match);
                if (hit is not null) return hit;
                if (_process.HasExited) break;
                await Task.Delay(100);
            }
            throw new TimeoutException($"no matching console line within {Wait.TotalSeconds} s (QEMU exited: {_process.HasExited})\n--- console ---\n{Console}");
        }

        public async Task<QmpEvent> WaitForEventAsync(string name)
        {
            using var cts = new CancellationTokenSource(Wait);
            try
            {
                while (true)
                {
                    var e = await Qmp.Events.ReadAsync(cts.Token);
                    if (e.Name == name) return e;
                }
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"no QMP {name} event within {Wait.TotalSeconds} s\n--- console ---\n{Console}");
            }
        }

        public async Task WaitForExitAsync()
        {
            using var cts = new CancellationTokenSource(Wait);
            await _process.WaitForExitAsync(cts.Token);
        }

        private static void Kill(Process p)
        {
            try
            {
                if (!p.HasExited) p.Kill(entireProcessTree: true);
                p.WaitForExit(10_000);
            }
            catch (InvalidOperationException) { } // already gone
        }

        public async ValueTask DisposeAsync()
        {
            await Qmp.DisposeAsync();
            Kill(_process);
            _process.Dispose();
        }
    }
}
