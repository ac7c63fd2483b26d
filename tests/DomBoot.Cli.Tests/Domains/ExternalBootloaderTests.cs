using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Domains;

/// <summary>
/// bootloader = "/path/to/program": called the way libxl calls pygrub (--output=FILE --output-format=simple0
/// --output-directory=DIR [args] DISK), its kernel/ramdisk/args records booted. Shown with Xen's own pygrub (from
/// xen-utils, installed by scripts/setup.sh) and with domboot's pygrub drop-in behind a wrapper script.
/// </summary>
public sealed class ExternalBootloaderTests
{
    private static string Config(DomainHarness h, string name, string bootloader, string disk, string args = "")
    {
        var path = h.File(name + ".cfg");
        File.WriteAllText(path, $"""
            name = "{name}"
            bootloader = "{bootloader}"
            {(args.Length > 0 ? $"bootloader_args = [ \"{args}\" ]" : "")}
            disk = [ "format=raw,vdev=xvda,access=r,target={disk}" ]
            memory = 256

            """);
        return path;
    }

    [Fact]
    public void Create_WithXensPygrub_BootsTheDiskDefault()
    {
        const string pygrub = "/usr/lib/xen-4.17/bin/pygrub";
        Assert.True(File.Exists(pygrub), $"{pygrub} missing: run scripts/setup.sh (xen-utils-4.17)");
        using var h = new DomainHarness();
        var disk = ToolstackGuest.BootDisk(h.Root, "pg", 1);
        // The supervisor has no terminal (libxl gives pygrub a pty for its curses menu): -q, as in bench/bootloader.sh.
        h.Ok("create", Config(h, "pg", pygrub, disk, "-q"));
        h.WaitForConsole("pg", "^GUEST-UP cmdline=.*guest.entry=second");
        var listed = h.Listed("pg")!.Value;
        Assert.Contains("guest.entry=second", listed.GetProperty("cmdline").GetString(), StringComparison.Ordinal);
        h.Ok("destroy", "pg");
    }

    [Fact]
    public void Create_WithDombootPygrubDropIn_HonoursBootloaderArgs()
    {
        using var h = new DomainHarness();
        var disk = ToolstackGuest.BootDisk(h.Root, "dp", 1);
        var wrapper = h.File("domboot-pygrub");
        File.WriteAllText(wrapper, $"#!/bin/sh\nexec '{DombootProcess.Executable}' bootloader \"$@\"\n");
        File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        // --entry=0 overrides the disk's default (1); the program is given the disk and writes simple0 records.
        h.Ok("create", Config(h, "dp", wrapper, disk, "--entry=0"));
        h.WaitForConsole("dp", "^GUEST-UP cmdline=.*guest.entry=first");
        h.Ok("destroy", "dp");
    }

    [Fact]
    public void Create_BootloaderThatFails_IsAOneLineErrorAndNothingRuns()
    {
        using var h = new DomainHarness();
        var disk = ToolstackGuest.ScratchDisk(h.Root, "empty", 8);
        var bad = h.File("bad-bootloader");
        File.WriteAllText(bad, "#!/bin/sh\necho 'no kernel found on the disk' >&2\nexit 3\n");
        File.SetUnixFileMode(bad, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var r = h.Domboot("create", Config(h, "bb", bad, disk));
        Assert.NotEqual(0, r.ExitCode);
        var error = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last();
        Assert.Contains("failed with status 3", error, StringComparison.Ordinal);
        Assert.Contains("no kernel found on the disk", error, StringComparison.Ordinal);
        Assert.Null(h.Listed("bb"));

        // And a program that names a kernel outside its output folder is refused (never boot a host file it chose).
        File.WriteAllText(bad, "#!/bin/sh\nfor a; do case $a in --output=*) out=${a#--output=};; esac; done\nprintf 'kernel /etc/passwd\\0args x\\0' > \"$out\"\n");
        r = h.Domboot("create", Config(h, "bb", bad, disk));
        Assert.Equal(65, r.ExitCode);
        Assert.Contains("expected a file inside", r.Stderr, StringComparison.Ordinal);
        Assert.Null(h.Listed("bb"));
    }
}
