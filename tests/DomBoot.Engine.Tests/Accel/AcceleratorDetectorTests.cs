using DomBoot.Engine.Accel;
using DomBoot.Formats.Errors;
using DomBoot.TestSupport;

namespace DomBoot.Engine.Tests.Accel;

public sealed class AcceleratorDetectorTests
{
    // request, vmx/svm, /dev/kvm exists, /dev/kvm read-write, expected accelerator, words the reason must contain
    public static TheoryData<AcceleratorRequest, bool, bool, bool, Accelerator, string> Choices => new()
    {
        { AcceleratorRequest.Auto, true, true, true, Accelerator.Kvm, "/dev/kvm is read-write" },
        { AcceleratorRequest.Auto, false, true, true, Accelerator.Tcg, "no vmx/svm flag" },
        { AcceleratorRequest.Auto, true, false, false, Accelerator.Tcg, "/dev/kvm does not exist" },
        { AcceleratorRequest.Auto, true, true, false, Accelerator.Tcg, "/dev/kvm is not read-write" },
        { AcceleratorRequest.Auto, false, false, false, Accelerator.Tcg, "no vmx/svm flag" },
        { AcceleratorRequest.Tcg, true, true, true, Accelerator.Tcg, "tcg requested" },
        { AcceleratorRequest.Tcg, false, false, false, Accelerator.Tcg, "tcg requested" },
        { AcceleratorRequest.Kvm, true, true, true, Accelerator.Kvm, "kvm requested" },
    };

    [Theory]
    [MemberData(nameof(Choices))]
    public void Choose_PicksKvmOnlyWithFlagsAndAReadWriteDevice(AcceleratorRequest request, bool flags, bool exists, bool rw, Accelerator expected, string reason)
    {
        var choice = AcceleratorDetector.Choose(request, new HostVirtualization(flags, exists, rw));
        Assert.Equal(expected, choice.Accelerator);
        Assert.Contains(reason, choice.Reason, StringComparison.Ordinal);
        if (request == AcceleratorRequest.Auto) Assert.StartsWith("auto: ", choice.Reason, StringComparison.Ordinal);
        Assert.Equal(expected == Accelerator.Kvm ? "kvm" : "tcg", choice.QemuName);
        Assert.Equal(expected == Accelerator.Kvm ? "host" : AcceleratorChoice.TcgCpuModel, choice.CpuModel);
    }

    [Theory]
    [InlineData(false, true, true, "no vmx/svm flag in /proc/cpuinfo")]
    [InlineData(true, false, false, "/dev/kvm does not exist")]
    [InlineData(true, true, false, "/dev/kvm is not read-write")]
    public void Choose_KvmRequestedWithoutSupport_ThrowsUnavailable(bool flags, bool exists, bool rw, string why)
    {
        var ex = Assert.Throws<UnavailableException>(() => AcceleratorDetector.Choose(AcceleratorRequest.Kvm, new HostVirtualization(flags, exists, rw)));
        Assert.Contains(why, ex.Message, StringComparison.Ordinal);
        Assert.Contains("--accel tcg", ex.Message, StringComparison.Ordinal);
    }

    private const string IntelCpuinfo = """
        processor	: 0
        vendor_id	: GenuineIntel
        model name	: Intel(R) Xeon(R) CPU
        flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr vmx ssse3 sse4_1 sse4_2 x2apic
        vmx flags	: vnmi preemption_timer invvpid ept_x_only ept_ad
        bugs		: spectre_v1

        """;

    private const string AmdCpuinfo = """
        processor	: 0
        vendor_id	: AuthenticAMD
        flags		: fpu vme de pse tsc msr pae mce cx8 apic sep svm extapic cr8_legacy
        """;

    // "vmx" appears in the model name and a "vmx flags" line, and "svm_lock" as a flag: none of them is the vmx/svm flag
    private const string NoVirtCpuinfo = """
        processor	: 0
        model name	: vmx svm emulator
        flags		: fpu vme de pse tsc msr pae hypervisor svm_lock vmxnot
        vmx flags	: vnmi
        """;

    [Theory]
    [InlineData(IntelCpuinfo, true)]
    [InlineData(AmdCpuinfo, true)]
    [InlineData(NoVirtCpuinfo, false)]
    [InlineData("", false)]
    public void Probe_ReadsVmxOrSvmFromTheFlagsLine(string cpuinfo, bool expected)
    {
        using var dir = new TempDir();
        var path = dir.File("cpuinfo");
        File.WriteAllText(path, cpuinfo);
        Assert.Equal(expected, HostVirtualization.Probe(path, dir.File("no-kvm")).CpuHasVmxOrSvm);
    }

    [Fact]
    public void Probe_MissingCpuinfo_MeansNoFlags()
    {
        using var dir = new TempDir();
        Assert.False(HostVirtualization.Probe(dir.File("missing"), dir.File("no-kvm")).CpuHasVmxOrSvm);
    }

    [Fact]
    public void Probe_ReadWriteKvmDevice_IsUsable()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("cpuinfo"), IntelCpuinfo);
        var kvm = dir.File("kvm");
        File.WriteAllBytes(kvm, []);
        var host = HostVirtualization.Probe(dir.File("cpuinfo"), kvm);
        Assert.Equal(new HostVirtualization(true, true, true), host);
        Assert.Equal(Accelerator.Kvm, AcceleratorDetector.Choose(AcceleratorRequest.Auto, host).Accelerator);
    }

    /// <summary>
    /// A read-only /dev/kvm cannot be simulated with chmod 0444 when the tests run as root (root opens it for writing
    /// anyway), so "not usable" is tested with the device missing, and with a path that exists but cannot be opened
    /// read-write by anyone (a directory).
    /// </summary>
    [Fact]
    public void Probe_MissingKvmDevice_FallsBackToTcg()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("cpuinfo"), IntelCpuinfo);
        var host = HostVirtualization.Probe(dir.File("cpuinfo"), dir.File("kvm"));
        Assert.Equal(new HostVirtualization(true, false, false), host);
        var choice = AcceleratorDetector.Choose(AcceleratorRequest.Auto, host);
        Assert.Equal((Accelerator.Tcg, "auto: /dev/kvm does not exist, so software emulation (TCG)"), (choice.Accelerator, choice.Reason));
    }

    [Fact]
    public void Probe_KvmPathThatCannotBeOpenedReadWrite_FallsBackToTcg()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("cpuinfo"), AmdCpuinfo);
        var notADevice = Directory.CreateDirectory(dir.File("kvm")).FullName;
        var host = HostVirtualization.Probe(dir.File("cpuinfo"), notADevice);
        Assert.Equal(new HostVirtualization(true, true, false), host);
        Assert.Contains("/dev/kvm is not read-write", AcceleratorDetector.Choose(AcceleratorRequest.Auto, host).Reason, StringComparison.Ordinal);
    }
}
