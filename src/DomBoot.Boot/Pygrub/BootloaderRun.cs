using System.Text;
using DomBoot.Boot.Discovery;
using DomBoot.Boot.Extraction;
using DomBoot.Boot.Model;
using DomBoot.Boot.Selection;
using DomBoot.Formats.Errors;

namespace DomBoot.Boot.Pygrub;

/// <summary>pygrub's options, as xl and users pass them.</summary>
public sealed record BootloaderOptions
{
    public required IReadOnlyList<string> Disks { get; init; }
    public string? Entry { get; init; }
    public string? Kernel { get; init; }
    public string? Ramdisk { get; init; }
    public string? Args { get; init; }
    public long? Offset { get; init; }

    /// <summary>domUloader --root=DEV: the guest's root device; its /etc/fstab locates /boot.</summary>
    public string? Root { get; init; }
    public bool NotReally { get; init; }
    public string OutputFormat { get; init; } = "sxp";
    public string OutputDirectory { get; init; } = "/var/run/xen/pygrub";
    public BootloaderLimits Limits { get; init; } = new();
}

/// <summary>What the interactive menu returned: an entry index and, when the user pressed e, the edited command line.</summary>
public sealed record InteractiveChoice(int Index, string? EditedArgs);

/// <summary>The outcome: the record bytes for the toolstack and what was chosen.</summary>
public sealed record BootloaderResult(byte[] Record, BootEntry? Entry, string Reason, ExtractedBoot? Extracted, BootMenu? Menu);

/// <summary>The pygrub-compatible flow: discover, select, extract, format the record.</summary>
public static class BootloaderRun
{
    public static BootloaderResult Run(BootloaderOptions o, Func<BootMenu, InteractiveChoice?>? interactiveChoice, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(o);
        if (!PygrubRecord.Formats.Contains(o.OutputFormat))
            throw new InvalidRequestException($"--output-format {Quote.Text(o.OutputFormat)}; expected sxp, simple or simple0");
        using var disks = GuestDisks.Open(o.Disks, o.Offset);
        BootEntry entry;
        string reason;
        BootMenu? menu = null;
        if (o.Kernel is not null)
        {
            // --kernel/--ramdisk: no config; the first volume holding the kernel path.
            var vol = disks.GuestVolumes.FirstOrDefault(v => disks.FileExists(new GuestPath(v.Info.GrubDevice, o.Kernel)))
                ?? throw new FileNotFoundException($"--kernel {o.Kernel}: not found on any guest volume");
            var dev = vol.Info.GrubDevice;
            entry = new BootEntry
            {
                Index = 0,
                Title = "--kernel " + o.Kernel,
                Kernel = new GuestPath(dev, o.Kernel),
                Initrds = o.Ramdisk is null ? [] : [new GuestPath(dev, o.Ramdisk)],
                Args = "",
                Source = "command line",
            };
            reason = "--kernel given";
        }
        else if (o.Entry is { } spec0 && (spec0.StartsWith('/') || spec0.Contains(":/", StringComparison.Ordinal)))
        {
            // domUloader's explicit entry: [dev:]/kernel[,/initrd], dev as the guest names it.
            var d = Fstab.DomuLoaderSpec.Parse(spec0);
            var vol = d.Device is null
                ? disks.GuestVolumes.FirstOrDefault(v => disks.FileExists(new GuestPath(v.Info.GrubDevice, d.Kernel)))?.Info
                : BootDiscovery.VolumeForGuestDevice(disks, d.Device);
            if (vol is null) throw new FileNotFoundException($"--entry {spec0}: {(d.Device is null ? d.Kernel + " is on no guest volume" : "no volume " + d.Device)}");
            entry = new BootEntry
            {
                Index = 0,
                Title = spec0,
                Kernel = new GuestPath(vol.GrubDevice, d.Kernel),
                Initrds = d.Initrd is null ? [] : [new GuestPath(vol.GrubDevice, d.Initrd)],
                Source = "--entry",
            };
            reason = "domUloader entry " + spec0;
        }
        else
        {
            var found = BootDiscovery.Discover(disks, o.Limits, o.Root);
            menu = found.Menu;
            disks.SetDefaultDevice(found.Device);
            var picked = o.Entry is null ? interactiveChoice?.Invoke(menu) : null;
            var spec = o.Entry ?? picked?.Index.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var chosen = EntrySelector.Select(menu, spec, disks);
            entry = picked?.EditedArgs is { } edited ? chosen.Entry with { Args = edited } : chosen.Entry;
            reason = picked is null ? chosen.Reason : "chosen in the menu" + (picked.EditedArgs is null ? "" : ", command line edited");
        }
        // pygrub: --args is appended after a space; with --kernel it is the whole command line.
        string args = string.IsNullOrEmpty(o.Args) ? entry.Args : entry.Args.Length == 0 ? o.Args! : entry.Args + " " + o.Args;
        entry = entry with { Args = args };
        if (o.NotReally)
        {
            var missing = EntrySelector.MissingFile(entry, disks);
            if (missing is not null) throw new FileNotFoundException($"{missing}: not on the guest's disks");
            var rec = PygrubRecord.Format(o.OutputFormat, entry.Kernel!.ToString(), entry.Initrds.Count > 0 ? string.Join(",", entry.Initrds) : null, args);
            return new BootloaderResult(rec, entry, reason, null, menu);
        }
        var extracted = BootExtractor.Extract(disks, entry, o.OutputDirectory, o.Limits, multibootAsLinux: true, cancellationToken);
        try
        {
            var record = PygrubRecord.Format(o.OutputFormat, extracted.KernelPath, extracted.RamdiskPath, extracted.Args);
            return new BootloaderResult(record, entry, reason, extracted, menu);
        }
        catch
        {
            File.Delete(extracted.KernelPath);
            if (extracted.RamdiskPath is not null) File.Delete(extracted.RamdiskPath);
            throw;
        }
    }

    /// <summary>pygrub -l: title, root, kernel, args, initrd per entry.</summary>
    public static string ListEntries(BootMenu menu)
    {
        ArgumentNullException.ThrowIfNull(menu);
        var sb = new StringBuilder();
        foreach (var e in menu.Entries)
        {
            var kernel = e.Kind == BootEntryKind.Multiboot && e.Modules.Count > 0 ? e.Modules[0].File : e.Kernel;
            sb.Append("title: ").Append(string.Join(">", e.MenuPath.Count > 0 ? e.MenuPath : [e.Title])).Append('\n');
            sb.Append("  root: ").Append(kernel?.Device ?? "").Append('\n');
            sb.Append("  kernel: ").Append(kernel?.Path ?? "").Append('\n');
            sb.Append("  args: ").Append(e.Kind == BootEntryKind.Multiboot && e.Modules.Count > 0 ? e.Modules[0].Args : e.Args).Append('\n');
            sb.Append("  initrd: ").Append(string.Join(" ", (e.Kind == BootEntryKind.Multiboot ? e.Modules.Skip(1).Select(m => m.File) : e.Initrds).Select(p => p.Path))).Append('\n');
        }
        return sb.ToString();
    }
}
