using System.Globalization;
using System.Text;

namespace DomBoot.Engine.Planning;

/// <summary>Builds the exact qemu-system-x86_64 argv for a plan.</summary>
public static class QemuCommandLine
{
    public const string Binary = "qemu-system-x86_64";

    /// <summary>Debian ovmf: the firmware code (read-only pflash 0) and the variable-store template copied per guest.</summary>
    public const string OvmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd";
    public const string OvmfVarsTemplate = "/usr/share/OVMF/OVMF_VARS_4M.fd";

    /// <summary>Debian ipxe-qemu: the iPXE PXE ROM for virtio-net (legacy BIOS).</summary>
    public const string IpxeRom = "/usr/lib/ipxe/qemu/pxe-virtio.rom";

    public static IReadOnlyList<string> Build(BootPlan plan, RuntimePaths runtime)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(runtime);
        if (plan.Method is BootMethod.Uefi or BootMethod.Netboot) return BuildFirmwareBoot(plan, runtime);
        var a = new List<string>
        {
            Binary,
            "-machine", "pc,accel=" + plan.Accelerator.QemuName,
            "-cpu", plan.Accelerator.CpuModel,
            "-m", (plan.MemoryBytes >> 20).ToString(CultureInfo.InvariantCulture),
            "-smp", plan.Vcpus.ToString(CultureInfo.InvariantCulture),
            "-nodefaults", "-no-user-config",
            "-display", "none",
            // The serial console is QEMU's stdio; domboot relays it to the terminal and watches it.
            "-chardev", "stdio,id=console0,signal=off",
            "-serial", "chardev:console0",
            "-qmp", "unix:" + runtime.QmpSocket + ",server=on,wait=off",
            "-no-reboot",
            "-kernel", plan.KernelPath,
        };
        if (plan.Method == BootMethod.Multiboot)
        {
            // QEMU's Multiboot loader takes modules as -initrd "file args,file args" (",," escapes a comma).
            var modules = plan.Layout.Count == 0 ? [] : ModuleStrings(plan);
            if (modules.Count > 0) { a.Add("-initrd"); a.Add(string.Join(',', modules)); }
        }
        else
        {
            var initrd = InitrdFile(plan, runtime);
            if (initrd is not null) { a.Add("-initrd"); a.Add(initrd); }
        }
        if (plan.Cmdline.Length > 0) { a.Add("-append"); a.Add(plan.Cmdline); }
        return a;
    }

    /// <summary>UEFI (OVMF on q35, the ESP on virtio-blk) or netboot (SeaBIOS, iPXE on virtio-net, -boot n): no -kernel.</summary>
    private static List<string> BuildFirmwareBoot(BootPlan plan, RuntimePaths runtime)
    {
        bool uefi = plan.Method == BootMethod.Uefi;
        var a = new List<string>
        {
            Binary,
            "-machine", (uefi ? "q35" : "pc") + ",accel=" + plan.Accelerator.QemuName,
            "-cpu", plan.Accelerator.CpuModel,
            "-m", (plan.MemoryBytes >> 20).ToString(CultureInfo.InvariantCulture),
            "-smp", plan.Vcpus.ToString(CultureInfo.InvariantCulture),
            "-nodefaults", "-no-user-config",
            "-display", "none",
            "-chardev", "stdio,id=console0,signal=off",
            "-serial", "chardev:console0",
            "-qmp", "unix:" + runtime.QmpSocket + ",server=on,wait=off",
            "-no-reboot",
        };
        if (uefi)
        {
            a.AddRange([
                "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + Escape(OvmfCode),
                "-drive", "if=pflash,format=raw,unit=1,file=" + Escape(runtime.FirmwareVars),
                "-drive", "if=none,id=esp,format=raw,file=" + Escape(runtime.Esp),
                "-device", "virtio-blk-pci,drive=esp,bootindex=0",
            ]);
        }
        else
        {
            var nb = plan.Netboot!;
            a.AddRange([
                "-netdev", "user,id=n0," + nb.NetdevOptions,
                // Debian's pxe-virtio.rom carries the virtio 1.0 device id 0x1041; SeaBIOS runs a PCI ROM only when the ids
                // match, so the NIC must be modern-only (a transitional one has id 0x1000 and the ROM is never run).
                "-device", "virtio-net-pci,netdev=n0,disable-legacy=on,romfile=" + Escape(nb.RomFile),
                "-boot", "n",
            ]);
        }
        return a;
    }

    /// <summary>The module list is kept on the plan as layout entries; the request's paths come through Sources.</summary>
    private static List<string> ModuleStrings(BootPlan plan) =>
        plan.ModuleArguments.Select(m => Escape(m.Arguments.Length > 0 ? m.Path + " " + m.Arguments : m.Path)).ToList();

    private static string? InitrdFile(BootPlan plan, RuntimePaths runtime)
    {
        if (plan.Prepare.Any(p => p.Path == runtime.Initrd)) return runtime.Initrd;
        return plan.InitrdPaths.Count == 1 ? plan.InitrdPaths[0] : null;
    }

    private static string Escape(string s) => s.Replace(",", ",,", StringComparison.Ordinal);

    /// <summary>One argv as a shell-pasteable line.</summary>
    public static string ToShellLine(IEnumerable<string> argv)
    {
        var sb = new StringBuilder();
        foreach (var arg in argv)
        {
            if (sb.Length > 0) sb.Append(' ');
            bool plain = arg.Length > 0 && arg.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@%".Contains(c, StringComparison.Ordinal));
            sb.Append(plain ? arg : "'" + arg.Replace("'", "'\\''", StringComparison.Ordinal) + "'");
        }
        return sb.ToString();
    }
}
