using System.Globalization;
using System.Text;
using System.Text.Json;

namespace DomBoot.Toolstack.Config;

/// <summary>The dry run as people read it (after xc_dom_create.py -n) and as JSON.</summary>
internal static class DomainPlanText
{
    public static string Render(DomainPlan plan, string configFile)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var sb = new StringBuilder();
        void Line(string label, string value) => sb.Append(CultureInfo.InvariantCulture, $"{label,-19}: \"{value}\"\n");
        sb.Append(CultureInfo.InvariantCulture, $"Parsing config file '{configFile}'\n\n");
        Line("VM name", plan.Name);
        Line("VM domain id", plan.DomainId.ToString(CultureInfo.InvariantCulture));
        Line("VM type", DomainPlanner.TypeName(plan.Type));
        Line(plan.BootSource switch
        {
            DomainBootSource.Bootloader => "VM bootloader",
            DomainBootSource.Netboot => "VM netboot",
            _ => "VM image",
        }, plan.Image);
        if (plan.BootloaderArgs.Count > 0) Line("VM bootloader args", string.Join(' ', plan.BootloaderArgs));
        Line("VM ramdisk", plan.Ramdisk ?? "");
        Line("VM memory (MB)", plan.MemoryMiB.ToString(CultureInfo.InvariantCulture));
        Line("VM vcpus", plan.Vcpus.ToString(CultureInfo.InvariantCulture));
        if (plan.Cpus is not null) Line("VM cpus", plan.Cpus.ToString());
        Line("VM IP address(es)", string.Join("; ", plan.IpAddresses));
        Line("VM forwarded ports", string.Join("; ", plan.Forwards.Select(f => $"127.0.0.1:{f.HostPort}->{f.GuestPort}/{(f.Protocol == XlForwardProtocol.Tcp ? "tcp" : "udp")}")));
        Line("VM block device(s)", string.Join("; ", plan.Drives.Select(d => d.Summary)));
        Line("VM cmdline", plan.Cmdline);
        Line("VM on_poweroff", Action(plan.OnPoweroff));
        Line("VM on_reboot", Action(plan.OnReboot));
        Line("VM on_crash", Action(plan.OnCrash));
        sb.Append("VM QEMU arguments  : ").Append(ShellLine(plan.QemuArgs)).Append('\n');
        foreach (var w in plan.Warnings) sb.Append("warning: ").Append(w).Append('\n');
        return sb.ToString();
    }

    public static string ToJson(DomainPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var doc = new Dictionary<string, object?>
        {
            ["name"] = plan.Name,
            ["domid"] = plan.DomainId,
            ["type"] = DomainPlanner.TypeName(plan.Type),
            ["boot_source"] = plan.BootSource.ToString().ToLowerInvariant(),
            ["image"] = plan.Image,
            ["ramdisk"] = plan.Ramdisk,
            ["memory_mib"] = plan.MemoryMiB,
            ["vcpus"] = plan.Vcpus,
            ["cpus"] = plan.Cpus?.ToString(),
            ["cmdline"] = plan.Cmdline,
            ["bootloader_args"] = plan.BootloaderArgs,
            ["ip_addresses"] = plan.IpAddresses,
            ["forwards"] = plan.Forwards.Select(f => new Dictionary<string, object> { ["protocol"] = f.Protocol == XlForwardProtocol.Tcp ? "tcp" : "udp", ["host_port"] = f.HostPort, ["guest_port"] = f.GuestPort }).ToList(),
            ["disks"] = plan.Drives.Select(d => new Dictionary<string, object> { ["target"] = d.Disk.Target, ["vdev"] = d.Disk.Vdev, ["format"] = d.Disk.Format == XlDiskFormat.Qcow2 ? "qcow2" : "raw", ["writable"] = d.Disk.Writable, ["cdrom"] = d.Disk.IsCdrom, ["drive"] = d.DriveOption }).ToList(),
            ["on_poweroff"] = Action(plan.OnPoweroff),
            ["on_reboot"] = Action(plan.OnReboot),
            ["on_crash"] = Action(plan.OnCrash),
            ["qemu_args"] = plan.QemuArgs,
            ["warnings"] = plan.Warnings,
        };
        return JsonSerializer.Serialize(doc, JsonOptions);
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    private static string Action(XlAction a) => a.ToString().ToLowerInvariant();

    /// <summary>Shell-pasteable, as QemuCommandLine.ToShellLine does for whole argvs.</summary>
    private static string ShellLine(IEnumerable<string> argv) => DomBoot.Engine.Planning.QemuCommandLine.ToShellLine(argv);
}
