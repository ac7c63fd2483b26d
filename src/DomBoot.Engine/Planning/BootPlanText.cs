using System.Globalization;
using System.Text;
using System.Text.Json;

namespace DomBoot.Engine.Planning;

/// <summary>Renders a boot plan for people (text) and machines (JSON).</summary>
public static class BootPlanText
{
    public static string Render(BootPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var sb = new StringBuilder();
        void Line(string k, string v) => sb.Append(CultureInfo.InvariantCulture, $"{k,-14}{v}\n");
        Line("Kernel:", $"{plan.KernelPath} ({plan.KernelKind}{(plan.Protocol is { } p ? ", boot protocol " + p : "")}{(plan.KernelRelease is { } r ? ", " + r : "")})");
        Line("Boot method:", plan.Method switch
        {
            BootMethod.LinuxBootProtocol => "Linux x86 boot protocol (QEMU linuxboot option ROM)",
            BootMethod.Pvh => "PVH entry of an ELF kernel (QEMU pvh option ROM)",
            BootMethod.Uefi => "UEFI firmware (OVMF) runs the image as \\EFI\\BOOT\\BOOTX64.EFI from an ESP disk",
            BootMethod.Netboot => "network boot: QEMU's iPXE ROM fetches " + plan.Netboot?.GuestUrl,
            _ => "Multiboot 1 (QEMU multiboot option ROM)",
        });
        if (plan.Firmware != BootFirmware.Direct) Line("Firmware:", plan.Firmware + " (" + QemuCommandLine.OvmfCode + ")");
        if (plan.Netboot is { } nb) Line("Network:", $"user-mode {nb.Network}, guest {nb.GuestAddress}, host {nb.HostAddress}; ROM {nb.RomFile}");
        Line("Accelerator:", $"{plan.Accelerator.QemuName} ({plan.Accelerator.Reason}); CPU {plan.Accelerator.CpuModel}");
        Line("Memory:", $"{plan.MemoryBytes >> 20} MiB, {plan.Vcpus} vCPU{(plan.Vcpus == 1 ? "" : "s")}");
        Line("Command line:", $"\"{plan.Cmdline}\" ({Encoding.UTF8.GetByteCount(plan.Cmdline)} bytes)");
        if (plan.Layout.Count > 0) sb.Append("Layout (guest-physical):\n");
        foreach (var m in plan.Layout.OrderBy(m => m.Start))
            sb.Append(CultureInfo.InvariantCulture, $"  0x{m.Start:X8}-0x{(m.SizeInBytes == 0 ? m.Start : m.End - 1):X8}  {m.SizeInBytes,12} bytes  {m.What}\n");
        if (plan.HeaderWrites.Count > 0)
        {
            sb.Append("Setup header writes:\n");
            foreach (var w in plan.HeaderWrites)
                sb.Append(CultureInfo.InvariantCulture, $"  {w.Field,-16} (0x{w.Offset:X3}) = 0x{w.Value:X}  {w.Why}\n");
        }
        if (plan.Prepare.Count > 0)
        {
            sb.Append("Prepared files:\n");
            foreach (var f in plan.Prepare)
                sb.Append(CultureInfo.InvariantCulture, $"  {f.Path}: {f.What} from {string.Join(" + ", f.Sources.Select(s => s.Path + (s.Length is { } l ? $"[0x{s.Offset:X}+{l}]" : "")))}\n");
        }
        foreach (var n in plan.Notes) sb.Append("Note: ").Append(n).Append('\n');
        sb.Append("QEMU: ").Append(QemuCommandLine.ToShellLine(plan.QemuArgv)).Append('\n');
        return sb.ToString();
    }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };

    public static string ToJson(BootPlan plan) => JsonSerializer.Serialize(plan, JsonOptions);
}
