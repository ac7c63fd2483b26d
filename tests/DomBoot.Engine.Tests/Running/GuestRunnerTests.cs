using System.Text;
using DomBoot.Engine.Accel;
using DomBoot.Engine.Demo;
using DomBoot.Engine.Planning;
using DomBoot.Engine.Running;
using DomBoot.TestSupport;

namespace DomBoot.Engine.Tests.Running;

/// <summary>Boots real guests under QEMU/TCG: the Debian cloud kernel, its vmlinux through PVH, and Xen via Multiboot.</summary>
public sealed class GuestRunnerTests : IDisposable
{
    private static readonly HostVirtualization NoKvm = new(false, false, false);
    private readonly TempDir _dir = new("domboot-runner");

    public void Dispose() => _dir.Dispose();

    private string Initramfs(string init)
    {
        var path = _dir.File($"initramfs-{Guid.NewGuid():N}.cpio");
        File.WriteAllBytes(path, DemoGuest.BuildInitramfs(Cache.Busybox, init));
        return path;
    }

    private static string Init(string body) => "#!/bin/sh\n/bin/busybox mount -t proc proc /proc\n" + body + "\n";


    private async Task<(GuestResult Result, string Console, string Diagnostics)> Boot(BootRequest request, TimeSpan? timeout = null,
        Func<ConsoleCaptureStream, CancellationTokenSource, Task>? during = null)
    {
        Tools.Require("qemu-system-x86_64");
        var runtime = new RuntimePaths(_dir.File("rt-" + Guid.NewGuid().ToString("N")[..8]));
        Directory.CreateDirectory(runtime.Directory);
        var plan = DirectBoot.Plan(request with { Accelerator = AcceleratorRequest.Tcg }, runtime, NoKvm);
        var output = new ConsoleCaptureStream();
        var diag = new StringWriter();
        using var cts = new CancellationTokenSource();
        var run = GuestRunner.RunAsync(plan, runtime, new GuestConsole(output, null, TextWriter.Synchronized(diag)), timeout ?? TimeSpan.FromMinutes(3), cts.Token);
        if (during is not null) await during(output, cts);
        var result = await run.WaitAsync(TimeSpan.FromMinutes(4));
        return (result, output.Text, diag.ToString());
    }

    private static async Task WaitFor(ConsoleCaptureStream output, string text, TimeSpan limit)
    {
        var until = DateTime.UtcNow + limit;
        while (!output.Text.Contains(text, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > until) Assert.Fail($"console never showed {text}; it showed:\n{output.Text}");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Run_DebianKernelWithInitramfs_ShowsMarkerAndPowersOff()
    {
        var token = "marker-" + Guid.NewGuid().ToString("N")[..12];
        var initrd = Initramfs(Init($"echo \"DOMBOOT-TEST {token} $(/bin/busybox uname -r)\"\n/bin/busybox poweroff -f"));
        var (result, console, diag) = await Boot(new BootRequest { KernelPath = Cache.Kernel, Initrds = [initrd], Cmdline = "console=ttyS0 quiet", MemoryMiB = 256 });
        var release = File.ReadAllText(Path.Combine(Cache.Root, "kernel", "release")).Trim();
        Assert.Contains($"DOMBOOT-TEST {token} {release}", console, StringComparison.Ordinal);
        Assert.True(result.Outcome == GuestOutcome.PoweredOff, $"{result.Describe()}\n{console}\n{diag}");
        Assert.Equal(0, result.ExitStatus);
    }

    [Fact]
    public async Task Run_TwoInitrds_AreConcatenatedAndBothUnpacked()
    {
        var first = Initramfs(Init("echo \"SECOND=$(/bin/busybox cat /second.txt)\"\n/bin/busybox poweroff -f"));
        var second = _dir.File("second.cpio");
        File.WriteAllBytes(second, Formats.Cpio.InitramfsBuilder.BuildInMemory(w => w.AddFile("second.txt", "from-the-second-initrd"u8), gzip: true));
        var (result, console, _) = await Boot(new BootRequest { KernelPath = Cache.Kernel, Initrds = [first, second], Cmdline = "console=ttyS0 quiet", MemoryMiB = 256 });
        Assert.Contains("SECOND=from-the-second-initrd", console, StringComparison.Ordinal);
        Assert.Equal(GuestOutcome.PoweredOff, result.Outcome);
    }

    [Fact]
    public async Task Run_InitExits_KernelPanicIsReportedAsCrashed()
    {
        var initrd = Initramfs(Init("echo leaving-init-now\nexit 1"));
        var (result, console, _) = await Boot(new BootRequest { KernelPath = Cache.Kernel, Initrds = [initrd], Cmdline = "console=ttyS0 quiet", MemoryMiB = 256 });
        Assert.Contains("leaving-init-now", console, StringComparison.Ordinal);
        Assert.Equal(GuestOutcome.Crashed, result.Outcome);
        Assert.Contains("Kernel panic", result.Detail, StringComparison.Ordinal);
        Assert.Equal(3, result.ExitStatus);
    }

    [Fact]
    public async Task Run_GuestReboots_IsReportedAsRebooted()
    {
        var initrd = Initramfs(Init("echo rebooting-now\n/bin/busybox reboot -f"));
        var (result, console, _) = await Boot(new BootRequest { KernelPath = Cache.Kernel, Initrds = [initrd], Cmdline = "console=ttyS0 quiet", MemoryMiB = 256 });
        Assert.Contains("rebooting-now", console, StringComparison.Ordinal);
        Assert.Equal(GuestOutcome.Rebooted, result.Outcome);
        Assert.Equal(2, result.ExitStatus);
    }

    [Fact]
    public async Task Run_GuestThatNeverEnds_IsTornDownAtTheTimeout()
    {
        var initrd = Initramfs(Init("echo waiting-forever\nwhile true; do /bin/busybox sleep 10; done"));
        var (result, console, _) = await Boot(new BootRequest { KernelPath = Cache.Kernel, Initrds = [initrd], Cmdline = "console=ttyS0 quiet", MemoryMiB = 256 },
            timeout: TimeSpan.FromSeconds(25));
        Assert.Contains("waiting-forever", console, StringComparison.Ordinal);
        Assert.Equal(GuestOutcome.TimedOut, result.Outcome);
        Assert.Equal(124, result.ExitStatus);
    }

    [Fact]
    public async Task Run_Cancelled_TearsTheGuestDownWithQmpQuit()
    {
        var initrd = Initramfs(Init("echo GUEST-READY\nwhile true; do /bin/busybox sleep 10; done"));
        var started = DateTime.UtcNow;
        var (result, _, _) = await Boot(new BootRequest { KernelPath = Cache.Kernel, Initrds = [initrd], Cmdline = "console=ttyS0 quiet", MemoryMiB = 256 },
            during: async (output, cts) => { await WaitFor(output, "GUEST-READY", TimeSpan.FromMinutes(2)); await cts.CancelAsync(); });
        Assert.Equal(GuestOutcome.Interrupted, result.Outcome);
        Assert.Equal(130, result.ExitStatus);
        Assert.Equal(0, result.QemuExitCode); // QEMU quit cleanly over QMP rather than being killed
    }

    [Fact]
    public async Task Run_ElfVmlinux_BootsThroughItsPvhNote()
    {
        var initrd = Initramfs(Init("echo \"PVH-BOOTED $(/bin/busybox uname -r)\"\n/bin/busybox poweroff -f"));
        var (result, console, diag) = await Boot(new BootRequest { KernelPath = GuestImages.Vmlinux, Initrds = [initrd], Cmdline = "console=ttyS0 quiet", MemoryMiB = 256 });
        Assert.Contains("PVH-BOOTED 6.", console, StringComparison.Ordinal);
        Assert.True(result.Outcome == GuestOutcome.PoweredOff, $"{result.Describe()}\n{console}\n{diag}");
    }

    [Fact]
    public async Task Run_XenMultibootWithDom0KernelAndInitramfsModules_ShowsXenBannerAndDom0Marker()
    {
        // dom0's hvc0 tty never reaches Xen's serial line here, so the marker also goes to the kernel log, which
        // earlyprintk=xen,keep prints through Xen's console.
        var initrd = Initramfs(Init("/bin/busybox mount -t devtmpfs dev /dev\necho \"<2>DOM0-MARKER-REACHED-INIT\" > /dev/kmsg\n/bin/busybox sleep 1\n/bin/busybox poweroff -f"));
        var (result, console, diag) = await Boot(new BootRequest
        {
            KernelPath = Cache.XenGz,
            Modules = [new MultibootModule(Cache.Kernel, "console=hvc0 earlyprintk=xen,keep quiet"), new MultibootModule(initrd, "")],
            Cmdline = "console=com1 dom0_mem=512M",
            MemoryMiB = 1024,
        }, timeout: TimeSpan.FromMinutes(3));
        Assert.Contains("(XEN) Xen version 4.17", console, StringComparison.Ordinal);
        Assert.Contains("DOM0-MARKER-REACHED-INIT", console, StringComparison.Ordinal);
        Assert.True(result.Outcome == GuestOutcome.PoweredOff, $"{result.Describe()}\n{diag}");
        Assert.Contains("Hardware Dom0 halted", result.Detail, StringComparison.Ordinal);
    }
}
