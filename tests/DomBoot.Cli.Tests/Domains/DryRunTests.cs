using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Domains;

/// <summary>create -n with -D variables: the xc_dom_create-style summary and the exact QEMU argv; nothing starts.</summary>
public sealed class DryRunTests
{
    private static string Config(DomainHarness h)
    {
        var path = h.File("vars.cfg");
        var disk = h.File("data.img");
        System.IO.File.WriteAllBytes(disk, new byte[1 << 20]);
        System.IO.File.WriteAllText(path, $$"""
            # variables come from -D
            name = "vm${vmid}"
            kernel = "{{Cache.Kernel}}"
            memory = ${mem}
            vcpus = 1
            cmdline = "console=ttyS0 ${extra}"
            vif = [ "ip=10.0.0.${vmid}" ]
            disk = [ "file:{{disk}},xvda,w" ]

            """);
        return path;
    }

    [Fact]
    public void DryRun_SubstitutesVariables_PrintsExactArgv_StartsNothing()
    {
        using var h = new DomainHarness();
        var cfg = Config(h);
        var r = h.Ok("create", "-n", cfg, "-D", "vmid=7:mem=300", "-D", "extra=quiet");
        var lines = r.Stdout.Split('\n');
        Assert.Contains("VM name            : \"vm7\"", lines);
        Assert.Contains("VM memory (MB)     : \"300\"", lines);
        Assert.Contains("VM IP address(es)  : \"10.0.0.7\"", lines);
        Assert.Contains(lines, l => l.StartsWith("VM block device(s) : \"", StringComparison.Ordinal) && l.Contains(h.File("data.img"), StringComparison.Ordinal) && l.Contains("xvda", StringComparison.Ordinal));
        Assert.Contains("VM cmdline         : \"console=ttyS0 quiet\"", lines);
        var argv = Assert.Single(lines, l => l.StartsWith("VM QEMU arguments  : ", StringComparison.Ordinal));
        Assert.StartsWith("VM QEMU arguments  : qemu-system-x86_64 -machine pc,", argv, StringComparison.Ordinal);
        Assert.Contains($" -kernel {Cache.Kernel} ", argv, StringComparison.Ordinal);
        Assert.Contains(" -m 300", argv, StringComparison.Ordinal);
        Assert.Contains(" -name vm7,debug-threads=on ", argv, StringComparison.Ordinal);
        Assert.Contains(h.StateDir + "/domains/vm7/qmp.sock", argv, StringComparison.Ordinal);
        Assert.DoesNotContain(lines, l => l.StartsWith("warning:", StringComparison.Ordinal));
        AssertNothingStarted(h);
    }

    [Fact]
    public void DryRun_RejectsUndefinedVariable_NamingIt()
    {
        using var h = new DomainHarness();
        var cfg = Config(h);
        var r = h.Domboot("create", "-n", cfg, "-D", "vmid=7:extra=quiet");
        Assert.Equal(65, r.ExitCode);
        var line = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Matches(@"^domboot: error: .*vars\.cfg:4:\d+: undefined variable ""mem""$", line);
        Assert.Equal("", r.Stdout);
        AssertNothingStarted(h);
    }

    private static void AssertNothingStarted(DomainHarness h)
    {
        var domains = System.IO.Path.Combine(h.StateDir, "domains");
        Assert.True(!Directory.Exists(domains) || Directory.GetFileSystemEntries(domains).Length == 0);
        Assert.Empty(FaultProbe.QemuPids(h));
        Assert.Null(h.Listed("vm7"));
    }
}
