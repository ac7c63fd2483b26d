using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Domains;

/// <summary>A disk opened writable by one domain is not opened by another; read-only sharing is allowed.</summary>
public sealed class SharingTests
{
    [Fact]
    public void Create_RefusesWritableSharing_AllowsReadOnlySharing()
    {
        using var h = new DomainHarness();
        var disk = ToolstackGuest.ScratchDisk(h.Root, "shared", 4);

        h.Ok("create", FaultProbe.DiskConfig(h, "wa", disk, writable: true));
        var refused = h.Domboot("create", FaultProbe.DiskConfig(h, "wb", disk, writable: true));
        Assert.Equal(64, refused.ExitCode);
        var error = Assert.Single(refused.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("domboot: error:", StringComparison.Ordinal));
        Assert.Contains("domain wa (writable)", error, StringComparison.Ordinal);
        Assert.False(FaultProbe.FolderExists(h, "wb"));
        Assert.Empty(FaultProbe.QemuPids(h, "wb"));
        Assert.Null(h.Listed("wb"));

        // read-only next to a writable holder: refused the same way
        var ro = h.Domboot("create", FaultProbe.DiskConfig(h, "rc", disk, writable: false));
        Assert.Equal(64, ro.ExitCode);
        Assert.Contains("domain wa (writable)", ro.Stderr, StringComparison.Ordinal);
        Assert.Empty(FaultProbe.QemuPids(h, "rc"));

        // a stopped domain releases its lock
        h.Ok("destroy", "wa");
        h.Ok("create", FaultProbe.DiskConfig(h, "r1", disk, writable: false));
        h.Ok("create", FaultProbe.DiskConfig(h, "r2", disk, writable: false));
        Assert.Single(FaultProbe.QemuPids(h, "r1"));
        Assert.Single(FaultProbe.QemuPids(h, "r2"));
        var w = h.Domboot("create", FaultProbe.DiskConfig(h, "w3", disk, writable: true));
        Assert.Equal(64, w.ExitCode);
        Assert.Matches("domain r[12] \\(read-only\\)", w.Stderr);
        Assert.Empty(FaultProbe.QemuPids(h, "w3"));
        h.Ok("destroy", "r1");
        h.Ok("destroy", "r2");
        h.Ok("create", FaultProbe.DiskConfig(h, "w4", disk, writable: true));
        Assert.Single(FaultProbe.QemuPids(h, "w4"));
        h.Ok("destroy", "w4");
    }
}
