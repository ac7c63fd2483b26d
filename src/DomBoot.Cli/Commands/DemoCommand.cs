using System.CommandLine;
using DomBoot.Engine;
using DomBoot.Engine.Accel;
using DomBoot.Engine.Demo;
using DomBoot.Engine.Planning;
using DomBoot.Formats.Kernel;

namespace DomBoot.Cli.Commands;

/// <summary>`domboot demo`: boots the cached Debian cloud kernel with a busybox initramfs that prints a banner and powers off.</summary>
internal static class DemoCommand
{
    public static Command Build()
    {
        var accel = new Option<AcceleratorRequest>("--accel") { Description = "auto, kvm or tcg", DefaultValueFactory = _ => AcceleratorRequest.Auto };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the boot plan; start nothing" };
        var command = new Command("demo", "Boot the embedded default guest: a generated GPT disk (ext4 /boot, grub.cfg, Debian cloud kernel, busybox initramfs) through the bootloader");
        command.Options.Add(accel);
        command.Options.Add(dryRun);
        command.SetAction(parseResult =>
        {
            var runtime = GuestSession.NewRuntime();
            Directory.CreateDirectory(runtime.Directory);
            var release = KernelInspector.Inspect(ArtifactCache.KernelPath).BzImage?.KernelRelease ?? "unknown";
            var disk = Path.Combine(runtime.Directory, "demo-disk.img");
            DemoDisk.Build(disk, ArtifactCache.KernelPath, release, DemoGuest.BuildInitramfs(ArtifactCache.BusyboxPath));
            var template = new BootRequest
            {
                KernelPath = "",
                MemoryMiB = 256,
                Accelerator = parseResult.GetValue(accel),
                Name = "domboot-demo",
            };
            var chosen = DiskBoot.Prepare([disk], null, null, template, runtime, CancellationToken.None);
            var request = chosen.Request;
            Console.Error.WriteLine($"domboot: demo: GPT disk with ext4 /boot; {chosen.Menu.ConfigFormat} {chosen.Menu.ConfigPath} chose entry {chosen.Entry.Index} \"{chosen.Entry.Title}\" ({chosen.Reason})");
            var plan = DirectBoot.Plan(request, runtime);
            if (parseResult.GetValue(dryRun))
            {
                Console.Out.Write(BootPlanText.Render(plan));
                Directory.Delete(runtime.Directory, recursive: true);
                return 0;
            }
            Console.Error.WriteLine($"domboot: demo: booting {plan.KernelRelease} with a busybox initramfs; accelerator {plan.Accelerator.QemuName} ({plan.Accelerator.Reason})");
            return GuestSession.Run(plan, runtime, TimeSpan.FromMinutes(5));
        });
        return command;
    }
}
