using System.Text.Json;
using System.Text.Json.Serialization;
using DomBoot.Engine.Accel;
using DomBoot.Engine.Planning;
using DomBoot.TestSupport;
using static DomBoot.Engine.Tests.Planning.PlanAssert;

namespace DomBoot.Engine.Tests.Planning;

/// <summary>What --dry-run prints: the text layout for people and the JSON for machines.</summary>
[Collection(KernelsGroup.Name)]
public sealed class BootPlanTextTests(KernelsFixture k)
{
    private static readonly JsonSerializerOptions ReadBack = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, Converters = { new JsonStringEnumConverter() } };

    private BootPlan BzPlan(TempDir dir, out string initrd)
    {
        initrd = Bytes(dir.File("initrd.cpio"), 3001);
        return DirectBoot.Plan(new BootRequest { KernelPath = k.BzImage, Initrds = [initrd], Cmdline = "console=ttyS0 quiet", MemoryMiB = 512, Vcpus = 2 },
            new RuntimePaths(dir.File("run")), NoKvm);
    }

    [Fact]
    public void Render_ShowsLayoutHeaderWritesAndTheShellPasteableArgv()
    {
        using var dir = new TempDir();
        var plan = BzPlan(dir, out var initrd);
        var text = BootPlanText.Render(plan);
        var rd = Region(plan, "initrd");

        Assert.Contains($"Kernel:       {k.BzImage} (bzImage (also an EFI PE image), boot protocol 2.15, {k.Release})\n", text, StringComparison.Ordinal);
        Assert.Contains("Boot method:  Linux x86 boot protocol (QEMU linuxboot option ROM)\n", text, StringComparison.Ordinal);
        Assert.Contains("Accelerator:  tcg (auto: no vmx/svm flag in /proc/cpuinfo, so software emulation (TCG)); CPU " + AcceleratorChoice.TcgCpuModel + "\n", text, StringComparison.Ordinal);
        Assert.Contains("Memory:       512 MiB, 2 vCPUs\n", text, StringComparison.Ordinal);
        Assert.Contains("Command line: \"console=ttyS0 quiet\" (19 bytes)\n", text, StringComparison.Ordinal);
        Assert.Contains("  0x00010000-0x", text, StringComparison.Ordinal);
        Assert.Contains("  0x00020000-0x00020013            20 bytes  command line\n", text, StringComparison.Ordinal);
        Assert.Contains("  0x01000000-0x", text, StringComparison.Ordinal);
        Assert.Contains(FormattableString.Invariant($"  0x{rd.Start:X8}-0x{rd.End - 1:X8}          3001 bytes  initrd\n"), text, StringComparison.Ordinal);
        Assert.Contains("  type_of_loader   (0x210) = 0xB0", text, StringComparison.Ordinal);
        Assert.Contains("  cmd_line_ptr     (0x228) = 0x20000", text, StringComparison.Ordinal);
        Assert.Contains(FormattableString.Invariant($"  ramdisk_image    (0x218) = 0x{rd.Start:X}"), text, StringComparison.Ordinal);
        Assert.Contains($"QEMU: qemu-system-x86_64 -machine pc,accel=tcg -cpu {AcceleratorChoice.TcgCpuModel} -m 512 -smp 2 ", text, StringComparison.Ordinal);
        Assert.Contains($" -kernel {k.BzImage} -initrd {initrd} -append 'console=ttyS0 quiet'\n", text, StringComparison.Ordinal);

        // layout lines are sorted by address
        var starts = text.Split('\n').Where(l => l.StartsWith("  0x", StringComparison.Ordinal))
            .Select(l => Convert.ToUInt64(l[4..12], 16)).ToList();
        Assert.Equal(plan.Layout.Count, starts.Count);
        Assert.Equal(starts.Order(), starts);
    }

    [Fact]
    public void Render_ShowsPreparedFilesAndNotes()
    {
        using var dir = new TempDir();
        var runtime = new RuntimePaths(dir.File("run"));
        var plan = DirectBoot.Plan(new BootRequest { KernelPath = k.Uki, MemoryMiB = 512 }, runtime, NoKvm);
        var text = BootPlanText.Render(plan);
        var linux = k.UkiSection(".linux");
        Assert.Contains("Prepared files:\n", text, StringComparison.Ordinal);
        Assert.Contains(FormattableString.Invariant($"  {runtime.Kernel}: kernel (.linux section of the UKI) from {k.Uki}[0x{linux.FileOffset:X}+{linux.Size}]\n"), text, StringComparison.Ordinal);
        Assert.Contains("Note: command line from the UKI's .cmdline section\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void ToJson_ParsesBackToTheSamePlan()
    {
        using var dir = new TempDir();
        var plan = BzPlan(dir, out _);
        var json = BootPlanText.ToJson(plan);

        using (var doc = JsonDocument.Parse(json))
        {
            var root = doc.RootElement;
            Assert.Equal("LinuxBootProtocol", root.GetProperty("method").GetString());
            Assert.Equal("2.15", root.GetProperty("protocol").GetString());
            Assert.Equal("tcg", root.GetProperty("accelerator").GetProperty("qemuName").GetString());
            Assert.Equal(plan.QemuArgv, root.GetProperty("qemuArgv").EnumerateArray().Select(e => e.GetString()!));
            var layout = root.GetProperty("layout").EnumerateArray().ToList();
            Assert.Equal(plan.Layout.Select(r => r.Start), layout.Select(e => e.GetProperty("start").GetUInt64()));
            Assert.Contains(root.GetProperty("headerWrites").EnumerateArray(),
                e => e.GetProperty("field").GetString() == "type_of_loader" && e.GetProperty("value").GetUInt64() == 0xB0);
        }

        var back = JsonSerializer.Deserialize<BootPlan>(json, ReadBack)!;
        Assert.Equal(plan.QemuArgv, back.QemuArgv);
        Assert.Equal(plan.Layout, back.Layout);
        Assert.Equal(plan.HeaderWrites, back.HeaderWrites);
        Assert.Equal(plan.Accelerator, back.Accelerator);
        Assert.Equal((plan.Method, plan.Cmdline, plan.MemoryBytes, plan.Vcpus), (back.Method, back.Cmdline, back.MemoryBytes, back.Vcpus));
    }
}
