using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Domains;

/// <summary>Reboots re-run the bootloader: host-side GRUB default changes are honoured; on_reboot decides.</summary>
public sealed class RebootTests
{
    private static string BootloaderConfig(DomainHarness h, string name, string disk)
    {
        var path = h.File(name + ".cfg");
        System.IO.File.WriteAllText(path, $"""
            name = "{name}"
            bootloader = "domboot"
            memory = 256
            disk = [ "format=raw,vdev=xvda,access=w,target={disk}" ]

            """);
        return path;
    }

    [Fact]
    public void Reboot_RerunsBootloader_NewDefaultEntryBootsWithSameId()
    {
        using var h = new DomainHarness();
        var disk = ToolstackGuest.BootDisk(h.Root, "boot", 0);
        h.Ok("create", BootloaderConfig(h, "rb", disk));
        h.WaitForConsole("rb", @"^GUEST-UP cmdline=.*guest\.entry=first");
        var before = h.Listed("rb")!.Value;
        Assert.Equal(1, before.GetProperty("boots").GetInt32());

        ToolstackGuest.SetDefaultEntry(disk, 1);
        int mark = h.ConsoleLog("rb").Length;
        h.Ok("reboot", "rb");
        h.WaitForConsole("rb", @"^GUEST-UP cmdline=.*guest\.entry=second", after: mark);
        Assert.Contains(ToolstackGuest.PowerButtonLine, h.ConsoleLog("rb")[mark..], StringComparison.Ordinal);
        h.WaitUntil(() => h.Listed("rb")?.GetProperty("boots").GetInt32() == 2, "boots=2 in list --json");
        var after = h.Listed("rb")!.Value;
        Assert.Equal(before.GetProperty("domid").GetInt32(), after.GetProperty("domid").GetInt32());
        Assert.Equal(before.GetProperty("uuid").GetString(), after.GetProperty("uuid").GetString());
        Assert.Contains("guest.entry=second", after.GetProperty("cmdline").GetString(), StringComparison.Ordinal);

        // --force: QMP system_reset under -no-reboot ends QEMU (SHUTDOWN host-qmp-system-reset), so the bootloader
        // runs again; an in-place reset would keep the old kernel and not count a boot.
        ToolstackGuest.SetDefaultEntry(disk, 0);
        mark = h.ConsoleLog("rb").Length;
        h.Ok("reboot", "--force", "rb");
        h.WaitForConsole("rb", @"^GUEST-UP cmdline=.*guest\.entry=first", after: mark);
        Assert.DoesNotContain(ToolstackGuest.PowerButtonLine, h.ConsoleLog("rb")[mark..], StringComparison.Ordinal);
        h.WaitUntil(() => h.Listed("rb")?.GetProperty("boots").GetInt32() == 3, "boots=3 in list --json");
        Assert.Contains("host-qmp-system-reset", FaultProbe.Log(h, "rb"), StringComparison.Ordinal);
        h.Ok("destroy", "rb");
        Assert.Null(h.Listed("rb"));
    }

    [Fact]
    public void GuestReboot_DefaultRestarts_OnRebootDestroyEnds()
    {
        using var h = new DomainHarness();
        h.Ok("create", h.KernelConfig("gr", cmdlineExtra: "guest.reboot_after=2", memory: 128));
        h.Ok("create", h.KernelConfig("gd", "on_reboot = \"destroy\"", cmdlineExtra: "guest.reboot_after=2", memory: 128));

        h.WaitUntil(() => FaultProbe.CountMatches(h.ConsoleLog("gr"), "^GUEST-UP ") >= 2, "a second boot of gr after the guest's reboot", TimeSpan.FromSeconds(90));
        Assert.Contains(ToolstackGuest.RebootingLine, h.ConsoleLog("gr"), StringComparison.Ordinal);
        h.WaitUntil(() => h.Listed("gr")?.GetProperty("boots").GetInt32() >= 2, "boots>=2 for gr");
        Assert.Contains("guest-reset", FaultProbe.Log(h, "gr"), StringComparison.Ordinal);

        h.WaitUntil(() => h.Listed("gd") is null, "gd gone after its reboot (on_reboot=destroy)", TimeSpan.FromSeconds(90));
        Assert.Contains(ToolstackGuest.RebootingLine, h.ConsoleLog("gd"), StringComparison.Ordinal);
        Assert.Equal(1, FaultProbe.CountMatches(h.ConsoleLog("gd"), "^GUEST-UP "));
        Assert.Matches("guest reboot .*action destroy", FaultProbe.Log(h, "gd"));
        Assert.False(FaultProbe.FolderExists(h, "gd"));
        Assert.Empty(FaultProbe.QemuPids(h, "gd"));
        h.Ok("destroy", "gr");
    }
}
