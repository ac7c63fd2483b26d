using System.Buffers.Binary;
using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests;

/// <summary>Hostile kernel files and requests: one `domboot: error:` line with the offset, exit 65, no stack trace, QEMU never started.</summary>
public sealed class BadInputTests : IDisposable
{
    private readonly TempDir _dir = new("domboot-cli-bad");

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string, string> BadKernels => new()
    {
        { "empty", "offset 0x0: truncated" },
        { "short100", "offset 0x0: truncated" },
        { "random64k", "offset 0x202" },
        { "wrong-magic", "offset 0x202" },
        { "bad-boot-flag", "offset 0x1FE" },
        { "huge-setup-sects", "offset 0x1F1" },
        { "lying-payload-length", "offset 0x248" },
        { "kernel-version-pointer-out-of-range", "offset 0x20E" },
    };

    private string Make(string kind)
    {
        var path = _dir.File(kind);
        byte[] b;
        switch (kind)
        {
            case "empty": b = []; break;
            case "short100": b = new byte[100]; break;
            case "random64k": b = new byte[65536]; new Random(1234).NextBytes(b); b[0x202] = 0; break;
            default:
                // Real header bytes, then one lie each.
                b = File.ReadAllBytes(Cache.Kernel);
                switch (kind)
                {
                    case "wrong-magic": b[0x202] = (byte)'X'; break;
                    case "bad-boot-flag": b[0x1FE] = 0; break;
                    case "huge-setup-sects": b = b.AsSpan(0, 64 * 1024).ToArray(); b[0x1F1] = 250; break;
                    case "lying-payload-length": BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(0x24C), 0x7FFFFFF0); break;
                    case "kernel-version-pointer-out-of-range": BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(0x20E), 0xFFF0); break;
                }
                break;
        }
        File.WriteAllBytes(path, b);
        return path;
    }

    private static void AssertOneLineError(DombootProcess.Result r, int exit, string? contains = null)
    {
        Assert.Equal(exit, r.ExitCode);
        var lines = r.Stderr.TrimEnd('\n').Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("domboot: error: ", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
        if (contains is not null) Assert.Contains(contains, lines[0], StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(BadKernels))]
    public void KernelInspect_BadKernel_OneLineErrorWithOffset(string kind, string offset)
    {
        var r = DombootProcess.Run("kernel", "inspect", Make(kind));
        AssertOneLineError(r, 65, offset);
        Assert.Matches("expected|truncated", r.Stderr);
    }

    [Theory]
    [MemberData(nameof(BadKernels))]
    public void Run_BadKernel_FailsBeforeQemuStarts(string kind, string offset)
    {
        var env = DombootProcess.FakeQemuEnvironment(_dir, out var started);
        var r = DombootProcess.Run(["run", "--kernel", Make(kind), "--accel", "tcg"], env);
        AssertOneLineError(r, 65, offset);
        Assert.False(File.Exists(started), "QEMU was started for a kernel that failed validation");
    }

    [Fact]
    public void Run_CommandLineLongerThanCmdlineSize_FailsBeforeQemuStarts()
    {
        var env = DombootProcess.FakeQemuEnvironment(_dir, out var started);
        var r = DombootProcess.Run(["run", "--kernel", Cache.Kernel, "--accel", "tcg", "--cmdline", new string('a', 2113)], env);
        AssertOneLineError(r, 65, "offset 0x238: command line is 2113 bytes; expected at most 2047");
        Assert.False(File.Exists(started));
    }

    [Fact]
    public void Run_MemoryTooSmallForInitSize_FailsBeforeQemuStarts()
    {
        var env = DombootProcess.FakeQemuEnvironment(_dir, out var started);
        var r = DombootProcess.Run(["run", "--kernel", Cache.Kernel, "--accel", "tcg", "--memory", "32"], env);
        AssertOneLineError(r, 65, "init_size");
        Assert.False(File.Exists(started));
    }

    [Fact]
    public void Run_MissingInitrd_Exit66()
    {
        var r = DombootProcess.Run("run", "--kernel", Cache.Kernel, "--initrd", _dir.File("nope.img"), "--accel", "tcg");
        AssertOneLineError(r, 66, "nope.img");
    }

    [Fact]
    public void Run_MissingKernelOption_IsAUsageError()
    {
        var r = DombootProcess.Run("run");
        AssertOneLineError(r, 64, "--kernel");
    }

    [Fact]
    public void Run_KvmRequestedWithoutKvm_Exit69()
    {
        var hasKvm = File.ReadAllText("/proc/cpuinfo").Contains(" vmx", StringComparison.Ordinal) || File.ReadAllText("/proc/cpuinfo").Contains(" svm", StringComparison.Ordinal);
        var r = DombootProcess.Run("run", "--kernel", Cache.Kernel, "--accel", "kvm", "--dry-run");
        if (hasKvm) Assert.Equal(0, r.ExitCode);
        else AssertOneLineError(r, 69, "vmx/svm");
    }

    [Fact]
    public void Verbose_AddsTheStackTrace()
    {
        var r = DombootProcess.Run("kernel", "inspect", "--verbose", Make("wrong-magic"));
        Assert.Equal(65, r.ExitCode);
        Assert.Contains("   at ", r.Stderr, StringComparison.Ordinal);
    }
}
