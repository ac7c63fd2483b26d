using System.Diagnostics;
using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests;

/// <summary>`domboot run` and `domboot demo` end to end with real QEMU under TCG.</summary>
public sealed class RunCommandTests : IDisposable
{
    private readonly TempDir _dir = new("domboot-cli-run");

    public void Dispose() => _dir.Dispose();

    private string Initramfs(string init)
    {
        var path = _dir.File($"init-{Guid.NewGuid():N}.cpio");
        File.WriteAllBytes(path, DomBoot.Engine.Demo.DemoGuest.BuildInitramfs(Cache.Busybox, init));
        return path;
    }

    [Fact]
    public void Demo_BootsTheCloudKernelAndShowsTheBanner()
    {
        Tools.Require("qemu-system-x86_64");
        var r = DombootProcess.Run("demo");
        var release = File.ReadAllText(Path.Combine(Cache.Root, "kernel", "release")).Trim();
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        Assert.Matches($"domboot demo: guest kernel {release.Replace(".", "\\.", StringComparison.Ordinal)} is up after [0-9.]+ s", r.Stdout);
        Assert.Contains("guest powered off", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("accelerator tcg", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("GPT disk with ext4 /boot; grub2 /grub/grub.cfg chose entry 0 \"Debian GNU/Linux\"", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void RunDisk_BootsWhatTheGuestsGrubCfgChooses()
    {
        Tools.Require("qemu-system-x86_64");
        Tools.Require("mkfs.ext4");
        var release = File.ReadAllText(Path.Combine(Cache.Root, "kernel", "release")).Trim();
        var disk = _dir.File("debian-like.img");
        var init = "#!/bin/sh\n/bin/busybox mount -t proc proc /proc\necho \"RUN-DISK-MARKER cmdline=$(/bin/busybox cat /proc/cmdline)\"\n/bin/busybox poweroff -f\n";
        DomBoot.Engine.Demo.DemoDisk.Build(disk, Cache.Kernel, release, DomBoot.Engine.Demo.DemoGuest.BuildInitramfs(Cache.Busybox, init));
        var r = DombootProcess.Run("run", "--disk", disk, "--memory", "256", "--accel", "tcg");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains($"RUN-DISK-MARKER cmdline=root=UUID={DomBoot.Engine.Demo.DemoDisk.RootUuid} ro console=ttyS0 quiet panic=-1", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("entry 0 \"Debian GNU/Linux\"", r.Stderr, StringComparison.Ordinal);

        // The recovery entry by its GRUB path: the guest sees that entry's command line.
        var rec = DombootProcess.Run("run", "--disk", disk, "--entry", $"Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux {release} (recovery mode)", "--memory", "256", "--accel", "tcg", "--timeout", "120");
        Assert.Contains($"RUN-DISK-MARKER cmdline=root=UUID={DomBoot.Engine.Demo.DemoDisk.RootUuid} ro single console=ttyS0", rec.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_PrintsGuestConsoleAndExitsWithTheGuestsStatus()
    {
        Tools.Require("qemu-system-x86_64");
        var initrd = Initramfs("#!/bin/sh\necho CLI-RUN-MARKER\n/bin/busybox poweroff -f\n");
        var r = DombootProcess.Run("run", "--kernel", Cache.Kernel, "--initrd", initrd, "--cmdline", "console=ttyS0 quiet", "--memory", "256", "--accel", "auto");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("CLI-RUN-MARKER", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("accelerator tcg (auto:", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_PanickingGuest_Exits3()
    {
        Tools.Require("qemu-system-x86_64");
        var initrd = Initramfs("#!/bin/sh\necho about-to-panic\nexit 3\n");
        var r = DombootProcess.Run("run", "--kernel", Cache.Kernel, "--initrd", initrd, "--cmdline", "console=ttyS0 quiet", "--memory", "256", "--accel", "tcg");
        Assert.Equal(3, r.ExitCode);
        Assert.Contains("guest crashed", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_SigintTearsTheGuestDownAndLeavesNoQemu()
    {
        Tools.Require("qemu-system-x86_64");
        var initrd = Initramfs("#!/bin/sh\necho GUEST-IS-READY\nwhile true; do /bin/busybox sleep 5; done\n");
        var psi = new ProcessStartInfo(DombootProcess.Executable) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in new[] { "run", "--kernel", Cache.Kernel, "--initrd", initrd, "--cmdline", "console=ttyS0 quiet", "--memory", "256", "--accel", "tcg" }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var seen = new System.Text.StringBuilder();
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!seen.ToString().Contains("GUEST-IS-READY", StringComparison.Ordinal))
        {
            var line = p.StandardOutput.ReadLine();
            if (line is null || DateTime.UtcNow > deadline) { p.Kill(true); Assert.Fail("guest never became ready: " + seen); }
            seen.AppendLine(line);
        }
        Tools.Run("kill", "-INT", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        _ = p.StandardOutput.ReadToEndAsync();
        Assert.True(p.WaitForExit(30_000), "domboot did not exit after SIGINT");
        Assert.Equal(130, p.ExitCode);
        Assert.Contains("interrupted", await stderr, StringComparison.Ordinal);
        var left = Tools.Run("pgrep", ["-f", $"domboot-{p.Id}-"], check: false);
        Assert.True(left.ExitCode != 0, "a QEMU process is still running: " + left.Stdout);
    }

    [Fact]
    public void DryRun_EachKernelKind_PrintsPlanAndQemuCommand()
    {
        var initrd = Initramfs("#!/bin/sh\n");
        var bz = DombootProcess.Run("run", "--kernel", Cache.Kernel, "--initrd", initrd, "--cmdline", "console=ttyS0", "--accel", "tcg", "--dry-run");
        Assert.Equal(0, bz.ExitCode);
        Assert.Contains("boot protocol 2.15", bz.Stdout, StringComparison.Ordinal);
        Assert.Contains("0x00100000", bz.Stdout, StringComparison.Ordinal);
        Assert.Contains("cmd_line_ptr", bz.Stdout, StringComparison.Ordinal);
        Assert.Contains("QEMU: qemu-system-x86_64 -machine pc,accel=tcg", bz.Stdout, StringComparison.Ordinal);
        Assert.Contains("-append console=ttyS0", bz.Stdout, StringComparison.Ordinal);

        var pvh = DombootProcess.Run("run", "--kernel", GuestImages.Vmlinux, "--initrd", initrd, "--accel", "tcg", "--dry-run");
        Assert.Equal(0, pvh.ExitCode);
        Assert.Contains("PVH entry", pvh.Stdout, StringComparison.Ordinal);
        Assert.Contains("ELF64 with PVH note", pvh.Stdout, StringComparison.Ordinal);

        var mb = DombootProcess.Run("run", "--kernel", Cache.XenGz, "--module", Cache.Kernel + " console=hvc0 earlyprintk=xen,keep", "--module", initrd, "--cmdline", "console=com1", "--memory", "1024", "--accel", "tcg", "--dry-run");
        Assert.Equal(0, mb.ExitCode);
        Assert.Contains("Multiboot 1", mb.Stdout, StringComparison.Ordinal);
        Assert.Contains("earlyprintk=xen,,keep", mb.Stdout, StringComparison.Ordinal);
        Assert.Contains("gunzipped", mb.Stdout, StringComparison.Ordinal);

        var json = DombootProcess.Run("run", "--kernel", Cache.Kernel, "--accel", "tcg", "--dry-run", "--json");
        Assert.Equal(0, json.ExitCode);
        using var doc = System.Text.Json.JsonDocument.Parse(json.Stdout);
        Assert.Equal("LinuxBootProtocol", doc.RootElement.GetProperty("method").GetString());
    }
}
