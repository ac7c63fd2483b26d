using DomBoot.Boot.Discovery;
using DomBoot.Boot.Extraction;
using DomBoot.Boot.Model;
using DomBoot.Boot.Selection;

namespace DomBoot.Engine.Planning;

/// <summary>`run --disk`: the guest's own bootloader choice, copied out of its disks, turned into a direct-boot request.</summary>
public static class DiskBoot
{
    public sealed record Chosen(BootRequest Request, BootEntry Entry, string Reason, BootMenu Menu);

    public static Chosen Prepare(IReadOnlyList<string> disks, string? entry, string? extraArgs, BootRequest template, RuntimePaths runtime, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(runtime);
        using var guest = GuestDisks.Open(disks);
        var found = BootDiscovery.Discover(guest, new BootloaderLimits());
        guest.SetDefaultDevice(found.Device);
        var chosen = EntrySelector.Select(found.Menu, entry, guest);
        Directory.CreateDirectory(runtime.Directory);
        var x = BootExtractor.Extract(guest, chosen.Entry, runtime.Directory, new BootloaderLimits(), multibootAsLinux: false, cancellationToken);
        string args = string.IsNullOrEmpty(extraArgs) ? x.Args : (x.Args + " " + extraArgs).Trim();
        var request = template with
        {
            KernelPath = x.KernelPath,
            Initrds = x.RamdiskPath is null ? [] : [x.RamdiskPath],
            Modules = [.. x.Modules.Select(m => new MultibootModule(m.Path, StripPlaceholder(m.Args)))],
            Cmdline = args,
        };
        return new Chosen(request, chosen.Entry, chosen.Reason, found.Menu);
    }

    private static string StripPlaceholder(string a) => a.StartsWith("placeholder", StringComparison.Ordinal) ? a["placeholder".Length..].TrimStart() : a;
}
