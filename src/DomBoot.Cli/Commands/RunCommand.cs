using System.CommandLine;
using DomBoot.Engine.Accel;
using DomBoot.Engine.Planning;

namespace DomBoot.Cli.Commands;

/// <summary>`domboot run --kernel K [--initrd I ...] [--module "F ARGS" ...] [--cmdline C] [--memory MiB] [--vcpus N] [--accel ...] [--dry-run]`.</summary>
internal static class RunCommand
{
    public static Command Build()
    {
        var kernel = new Option<string?>("--kernel", "-k") { Description = "Kernel image (bzImage, ELF with PVH note, Multiboot, UKI)" };
        var disk = new Option<string[]>("--disk", "-d") { Description = "Boot what the guest's own boot config on these disks chooses (repeat for several disks)" };
        var entry = new Option<string?>("--entry") { Description = "With --disk: entry by index, title, id or path" };
        var initrd = new Option<string[]>("--initrd", "-i") { Description = "Initrd; repeat to concatenate several", AllowMultipleArgumentsPerToken = false };
        var module = new Option<string[]>("--module") { Description = "Multiboot module: \"FILE[ ARGS]\"; repeat in order (Xen: dom0 kernel, then its initrd)" };
        var cmdline = new Option<string>("--cmdline", "-c") { Description = "Kernel command line", DefaultValueFactory = _ => "" };
        var memory = new Option<int>("--memory", "-m") { Description = "Guest memory in MiB", DefaultValueFactory = _ => 512 };
        var vcpus = new Option<int>("--vcpus") { Description = "Virtual CPUs", DefaultValueFactory = _ => 1 };
        var accel = new Option<AcceleratorRequest>("--accel") { Description = "auto, kvm or tcg", DefaultValueFactory = _ => AcceleratorRequest.Auto };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the boot plan and the QEMU command; start nothing" };
        var json = CommonOptions.Json();
        var timeout = new Option<double?>("--timeout") { Description = "Tear the guest down after this many seconds (exit 124)" };
        var firmware = new Option<BootFirmware>("--firmware") { Description = "direct (QEMU loads the kernel) or uefi (OVMF boots a UKI from an ESP)", DefaultValueFactory = _ => BootFirmware.Direct };
        var netboot = new Option<string?>("--netboot") { Description = "Boot from QEMU's iPXE ROM, fetching URL (\"[ip=ADDR:MASK:GW ]URL\"; 127.0.0.1 becomes the host as the guest sees it)" };
        var command = new Command("run", "Boot a kernel directly under QEMU with the serial console on this terminal");
        foreach (var o in new Option[] { kernel, disk, entry, initrd, module, cmdline, memory, vcpus, accel, dryRun, json, timeout, firmware, netboot }) command.Options.Add(o);
        command.SetAction(parseResult =>
        {
            var disks = parseResult.GetValue(disk) ?? [];
            if (parseResult.GetValue(netboot) is { } netbootSpec)
                return RunNetboot(parseResult, netbootSpec, parseResult.GetValue(kernel) is not null || disks.Length > 0,
                    parseResult.GetValue(memory), parseResult.GetValue(vcpus), parseResult.GetValue(accel), parseResult.GetValue(firmware),
                    parseResult.GetValue(dryRun), parseResult.GetValue(json), parseResult.GetValue(timeout));
            if ((disks.Length == 0) == (parseResult.GetValue(kernel) is null))
                throw new UsageException("give either --kernel or --disk");
            var request = new BootRequest
            {
                KernelPath = RemoteFiles.Local(parseResult.GetValue(kernel)) ?? "",
                Initrds = [.. (parseResult.GetValue(initrd) ?? []).Select(i => RemoteFiles.Local(i)!)],
                Modules = (parseResult.GetValue(module) ?? []).Select(ParseModule).Select(m => m with { Path = RemoteFiles.Local(m.Path)! }).ToList(),
                Cmdline = parseResult.GetValue(cmdline) ?? "",
                MemoryMiB = parseResult.GetValue(memory),
                Vcpus = parseResult.GetValue(vcpus),
                Accelerator = parseResult.GetValue(accel),
                Firmware = parseResult.GetValue(firmware),
            };
            double? seconds = parseResult.GetValue(timeout);
            if (seconds is <= 0) throw new UsageException($"--timeout {seconds} must be positive");
            var runtime = GuestSession.NewRuntime();
            if (disks.Length > 0)
            {
                var chosen = DiskBoot.Prepare(disks, parseResult.GetValue(entry), request.Cmdline, request, runtime, CancellationToken.None);
                request = chosen.Request;
                Console.Error.WriteLine($"domboot: {chosen.Menu.ConfigFormat} {chosen.Menu.ConfigPath}: entry {chosen.Entry.Index} \"{chosen.Entry.Title}\" ({chosen.Reason})");
            }
            BootPlan plan;
            try { plan = DirectBoot.Plan(request, runtime); }
            catch when (disks.Length > 0) { DeleteRuntime(runtime); throw; }
            if (parseResult.GetValue(dryRun) && disks.Length > 0)
            {
                Console.Out.Write(parseResult.GetValue(json) ? BootPlanText.ToJson(plan) + "\n" : BootPlanText.Render(plan));
                DeleteRuntime(runtime);
                return 0;
            }
            if (parseResult.GetValue(dryRun))
            {
                Console.Out.Write(parseResult.GetValue(json) ? BootPlanText.ToJson(plan) + "\n" : BootPlanText.Render(plan));
                return 0;
            }
            Console.Error.WriteLine($"domboot: accelerator {plan.Accelerator.QemuName} ({plan.Accelerator.Reason})");
            if (plan.Method == BootMethod.Uefi) DomBoot.Net.Packing.UefiBoot.Prepare(plan, runtime);
            return GuestSession.Run(plan, runtime, seconds is { } s ? TimeSpan.FromSeconds(s) : null);
        });
        return command;
    }

    /// <summary>--netboot "[ip=ADDR:MASK:GW ]URL": no kernel on the host; the guest's iPXE fetches URL itself.</summary>
    private static int RunNetboot(ParseResult parseResult, string spec, bool hasKernel, int memory, int vcpus, AcceleratorRequest accel,
        BootFirmware firmware, bool dryRun, bool json, double? seconds)
    {
        _ = parseResult;
        if (hasKernel) throw new UsageException("give either --netboot or --kernel/--disk");
        var words = spec.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        string? ip = null;
        string url;
        if (words.Length == 2 && words[0].StartsWith("ip=", StringComparison.Ordinal)) { ip = words[0]; url = words[1]; }
        else if (words.Length == 1) url = words[0];
        else throw new UsageException("--netboot takes \"URL\" or \"ip=ADDR:MASK:GW URL\"");
        if (seconds is <= 0) throw new UsageException($"--timeout {seconds} must be positive");
        var request = new BootRequest
        {
            KernelPath = "",
            Netboot = url,
            NetbootAddress = ip,
            MemoryMiB = memory,
            Vcpus = vcpus,
            Accelerator = accel,
            Firmware = firmware,
        };
        var runtime = GuestSession.NewRuntime();
        var plan = BootPlanner.PlanNetboot(request, AcceleratorDetector.Choose(accel, HostVirtualization.Probe()), runtime);
        if (dryRun)
        {
            Console.Out.Write(json ? BootPlanText.ToJson(plan) + "\n" : BootPlanText.Render(plan));
            return 0;
        }
        Console.Error.WriteLine($"domboot: accelerator {plan.Accelerator.QemuName} ({plan.Accelerator.Reason}); iPXE fetches {plan.Netboot!.GuestUrl}");
        return GuestSession.Run(plan, runtime, seconds is { } s ? TimeSpan.FromSeconds(s) : null);
    }

    private static void DeleteRuntime(RuntimePaths runtime)
    {
        try { Directory.Delete(runtime.Directory, recursive: true); }
        catch (IOException) { }
    }

    internal static MultibootModule ParseModule(string spec)
    {
        var s = spec.Trim();
        if (s.Length == 0) throw new UsageException("--module needs a file name");
        int sp = s.IndexOf(' ', StringComparison.Ordinal);
        return sp < 0 ? new MultibootModule(s, "") : new MultibootModule(s[..sp], s[(sp + 1)..].Trim());
    }
}
