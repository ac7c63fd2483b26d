using DomBoot.Engine.Accel;
using DomBoot.Formats.Kernel;

namespace DomBoot.Engine.Planning;

/// <summary>From files on disk to a validated plan: inspect the kernel, measure the initrds and modules, pick the accelerator.</summary>
public static class DirectBoot
{
    public static BootPlan Plan(BootRequest request, RuntimePaths runtime, HostVirtualization? host = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        var kernel = KernelInspector.Inspect(request.KernelPath);
        var sizes = new BootInputSizes(request.Initrds.Select(SizeOf).ToList(), request.Modules.Select(m => SizeOf(m.Path)).ToList());
        var accel = AcceleratorDetector.Choose(request.Accelerator, host ?? HostVirtualization.Probe());
        return BootPlanner.Plan(request, kernel, sizes, accel, runtime);
    }

    private static long SizeOf(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"{path}: no such file", path);
        return info.Length;
    }
}
