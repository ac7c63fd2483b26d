using System.Buffers.Binary;
using DomBoot.Engine.Accel;
using DomBoot.Engine.Planning;

namespace DomBoot.Engine.Tests.Planning;

/// <summary>Shared set-up and argv/layout assertions for the planning tests.</summary>
internal static class PlanAssert
{
    /// <summary>No vmx/svm, no /dev/kvm: auto always picks TCG, whatever machine runs the tests.</summary>
    public static readonly HostVirtualization NoKvm = new(false, false, false);

    /// <summary>QEMU pc machine: ACPI data reserved below the top of low RAM (hw/i386/x86.c acpi_data_size).</summary>
    public const ulong AcpiDataSize = 0x28000;

    /// <summary>The value following <paramref name="flag"/>, which must occur exactly once.</summary>
    public static string Arg(IReadOnlyList<string> argv, string flag)
    {
        var at = Enumerable.Range(0, argv.Count).Where(i => argv[i] == flag).ToList();
        Assert.True(at.Count == 1, $"expected {flag} once in the argv, found {at.Count}: {string.Join(' ', argv)}");
        Assert.True(at[0] + 1 < argv.Count, $"{flag} is the last argument");
        return argv[at[0] + 1];
    }

    public static void NoArg(IReadOnlyList<string> argv, string flag) =>
        Assert.DoesNotContain(flag, argv);

    /// <summary>Accelerator and CPU facts every TCG plan shares.</summary>
    public static void TcgMachine(BootPlan plan, int memoryMiB)
    {
        var argv = plan.QemuArgv;
        Assert.Equal(QemuCommandLine.Binary, argv[0]);
        Assert.Equal("pc,accel=tcg", Arg(argv, "-machine"));
        Assert.Equal(AcceleratorChoice.TcgCpuModel, Arg(argv, "-cpu"));
        Assert.Equal(memoryMiB.ToString(System.Globalization.CultureInfo.InvariantCulture), Arg(argv, "-m"));
        Assert.Equal(Accelerator.Tcg, plan.Accelerator.Accelerator);
    }

    public static MemoryRegion Region(BootPlan plan, string whatStartsWith) =>
        Assert.Single(plan.Layout, r => r.What.StartsWith(whatStartsWith, StringComparison.Ordinal));

    public static HeaderWrite Write(BootPlan plan, string field) => Assert.Single(plan.HeaderWrites, w => w.Field == field);

    /// <summary>QEMU x86_load_linux / PVH: the initrd ends below the ACPI data at the top of low RAM, page aligned.</summary>
    public static ulong InitrdAddress(ulong memoryBytes, ulong initrdBytes) => ((memoryBytes - AcpiDataSize - 1) - initrdBytes) & ~0xFFFUL;

    public static ulong AlignUp(ulong v, ulong a) => (v + a - 1) / a * a;

    /// <summary>A sparse file of <paramref name="size"/> bytes.</summary>
    public static string Sparse(string path, long size)
    {
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write);
        f.SetLength(size);
        return path;
    }

    public static string Bytes(string path, int size, byte seed = 1)
    {
        File.WriteAllBytes(path, Enumerable.Range(0, size).Select(i => (byte)(i * 31 + seed)).ToArray());
        return path;
    }

    /// <summary>The header fields of the real kernel, read at their boot.rst offsets.</summary>
    public sealed record Header(int SetupSects, uint InitrdAddrMax, uint KernelAlignment, byte MinAlignment, uint CmdlineSize, ulong PrefAddress, uint InitSize)
    {
        public long ProtectedModeOffset => (SetupSects + 1) * 512L;

        public static Header Read(string kernel)
        {
            var h = new byte[0x270];
            using (var f = File.OpenRead(kernel)) f.ReadExactly(h);
            return new Header(h[0x1F1] == 0 ? 4 : h[0x1F1],
                BinaryPrimitives.ReadUInt32LittleEndian(h.AsSpan(0x22C)),
                BinaryPrimitives.ReadUInt32LittleEndian(h.AsSpan(0x230)),
                h[0x235],
                BinaryPrimitives.ReadUInt32LittleEndian(h.AsSpan(0x238)),
                BinaryPrimitives.ReadUInt64LittleEndian(h.AsSpan(0x258)),
                BinaryPrimitives.ReadUInt32LittleEndian(h.AsSpan(0x260)));
        }
    }
}
