using System.Diagnostics;
using DomBoot.Engine.Planning;
using DomBoot.Formats.Errors;

namespace DomBoot.Net.Packing;

/// <summary>
/// Makes what OVMF needs to boot a UKI: a FAT ESP image holding it as \EFI\BOOT\BOOTX64.EFI (the removable-media
/// default path, UEFI 2.10 section 3.5.1.1) and a writable copy of the firmware's variable store.
/// </summary>
public static class UefiBoot
{
    public const string EspLabel = "DOMBOOTESP";
    public const string EspVolumeId = "D0B0E5F1";
    private const long Slack = 4L << 20;

    /// <summary>Builds runtime.Esp and runtime.FirmwareVars for a <see cref="BootMethod.Uefi"/> plan.</summary>
    public static void Prepare(BootPlan plan, RuntimePaths runtime)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(runtime);
        if (plan.Method != BootMethod.Uefi) return;
        foreach (var f in new[] { QemuCommandLine.OvmfCode, QemuCommandLine.OvmfVarsTemplate })
            if (!File.Exists(f)) throw new UnavailableException($"UEFI firmware {f} not found; run scripts/setup.sh (installs Debian's ovmf)");
        Directory.CreateDirectory(runtime.Directory);
        File.Copy(QemuCommandLine.OvmfVarsTemplate, runtime.FirmwareVars, overwrite: true);
        BuildEsp(plan.KernelPath, runtime.Esp);
    }

    /// <summary>A FAT image (mkfs.vfat, then mtools) with <paramref name="efiApplication"/> as \EFI\BOOT\BOOTX64.EFI.</summary>
    public static void BuildEsp(string efiApplication, string espPath)
    {
        ArgumentNullException.ThrowIfNull(efiApplication);
        ArgumentNullException.ThrowIfNull(espPath);
        long size = new FileInfo(efiApplication).Length;
        // FAT overhead is small; round up to whole MiB and keep at least 33 MiB so mkfs.vfat picks FAT32 like a real ESP
        long kib = Math.Max(33L << 10, (size + Slack + (1 << 20) - 1) >> 20 << 10);
        if (File.Exists(espPath)) File.Delete(espPath);
        Run(Tool("mkfs.vfat"), ["-C", "-F", "32", "-n", EspLabel, "-i", EspVolumeId, espPath, kib.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        Run(Tool("mmd"), ["-i", espPath, "::/EFI", "::/EFI/BOOT"]);
        Run(Tool("mcopy"), ["-i", espPath, efiApplication, "::/EFI/BOOT/BOOTX64.EFI"]);
    }

    private static string Tool(string name)
    {
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/sbin", "/sbin", "/usr/bin"]);
        foreach (var d in dirs)
        {
            var p = Path.Combine(d, name);
            if (File.Exists(p)) return p;
        }
        throw new UnavailableException($"{name} not found; run scripts/setup.sh (installs Debian's dosfstools and mtools)");
    }

    private static void Run(string tool, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["MTOOLS_SKIP_CHECK"] = "1";
        using var p = Process.Start(psi) ?? throw new UnavailableException($"could not start {tool}");
        var err = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new IOException($"{Path.GetFileName(tool)} failed (exit {p.ExitCode}): {err.Result.Trim()}");
    }
}
