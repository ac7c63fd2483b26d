using System.Text;
using DomBoot.Engine.Accel;
using DomBoot.Engine.Demo;
using DomBoot.Engine.Planning;
using DomBoot.Engine.Running;
using DomBoot.TestSupport;

namespace DomBoot.Net.Tests.Netboot;

/// <summary>Boots a plan under QEMU/TCG with the console captured, and makes marker initramfs images.</summary>
internal static class GuestHarness
{
    public static readonly HostVirtualization NoKvm = new(false, false, false);

    public static string Marker() => "DOMBOOT-NET-" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>A busybox initramfs whose /init prints the marker and powers off.</summary>
    public static byte[] Initramfs(string marker) =>
        DemoGuest.BuildInitramfs(Cache.Busybox, $"#!/bin/sh\n/bin/busybox mount -t proc proc /proc\necho \"{marker} $(/bin/busybox uname -r)\"\n/bin/busybox poweroff -f\n");

    public static RuntimePaths Runtime(TempDir dir)
    {
        var runtime = new RuntimePaths(dir.File("rt-" + Guid.NewGuid().ToString("N")[..8]));
        Directory.CreateDirectory(runtime.Directory);
        return runtime;
    }

    public static async Task<(GuestResult Result, string Console, string Diagnostics)> Run(BootPlan plan, RuntimePaths runtime, TimeSpan timeout)
    {
        Tools.Require("qemu-system-x86_64");
        var output = new ConsoleCaptureStream();
        var diag = new StringWriter();
        var result = await GuestRunner.RunAsync(plan, runtime, new GuestConsole(output, null, TextWriter.Synchronized(diag)), timeout, CancellationToken.None)
            .WaitAsync(timeout + TimeSpan.FromMinutes(1));
        return (result, output.Text, diag.ToString());
    }

}
