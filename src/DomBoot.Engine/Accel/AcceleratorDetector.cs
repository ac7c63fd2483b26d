namespace DomBoot.Engine.Accel;

public enum Accelerator { Kvm, Tcg }

public enum AcceleratorRequest { Auto, Kvm, Tcg }

/// <summary>The accelerator chosen and why, in words a user can check.</summary>
public sealed record AcceleratorChoice(Accelerator Accelerator, string Reason)
{
    public string QemuName => Accelerator == Accelerator.Kvm ? "kvm" : "tcg";

    /// <summary>
    /// CPU model: the host's under KVM; under TCG a named model (Haswell-noTSX) minus the features TCG cannot
    /// emulate, so QEMU prints no warnings. `-cpu max` makes Xen 4.17's dom0 crash early under TCG.
    /// </summary>
    public string CpuModel => Accelerator == Accelerator.Kvm ? "host" : TcgCpuModel;

    public const string TcgCpuModel = "Haswell-noTSX,-x2apic,-tsc-deadline,-invpcid,-pcid";
}

/// <summary>What the host offers: CPU flags from /proc/cpuinfo and access to /dev/kvm.</summary>
public sealed record HostVirtualization(bool CpuHasVmxOrSvm, bool KvmDeviceExists, bool KvmDeviceReadWrite)
{
    public static HostVirtualization Probe(string cpuinfoPath = "/proc/cpuinfo", string kvmPath = "/dev/kvm")
    {
        bool flags = false;
        try
        {
            foreach (var line in File.ReadLines(cpuinfoPath))
            {
                if (!line.StartsWith("flags", StringComparison.Ordinal)) continue;
                var words = line.Split([' ', '\t', ':'], StringSplitOptions.RemoveEmptyEntries);
                if (words.Contains("vmx") || words.Contains("svm")) { flags = true; break; }
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        bool exists = File.Exists(kvmPath) || Path.Exists(kvmPath);
        bool rw = false;
        if (exists)
        {
            try
            {
                using var h = File.OpenHandle(kvmPath, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
                rw = true;
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return new HostVirtualization(flags, exists, rw);
    }
}

/// <summary>Picks KVM only with vmx/svm in /proc/cpuinfo and a read-write /dev/kvm; TCG otherwise.</summary>
public static class AcceleratorDetector
{
    public static AcceleratorChoice Choose(AcceleratorRequest request, HostVirtualization host)
    {
        switch (request)
        {
            case AcceleratorRequest.Tcg:
                return new(Accelerator.Tcg, "tcg requested");
            case AcceleratorRequest.Kvm:
                if (!host.CpuHasVmxOrSvm || !host.KvmDeviceReadWrite)
                    throw new Formats.Errors.UnavailableException("kvm requested but " + Missing(host) + "; use --accel tcg");
                return new(Accelerator.Kvm, "kvm requested");
            default:
                return host.CpuHasVmxOrSvm && host.KvmDeviceReadWrite
                    ? new(Accelerator.Kvm, "auto: vmx/svm in /proc/cpuinfo and /dev/kvm is read-write")
                    : new(Accelerator.Tcg, "auto: " + Missing(host) + ", so software emulation (TCG)");
        }
    }

    private static string Missing(HostVirtualization host) =>
        !host.CpuHasVmxOrSvm ? "no vmx/svm flag in /proc/cpuinfo"
        : !host.KvmDeviceExists ? "/dev/kvm does not exist"
        : "/dev/kvm is not read-write";
}
