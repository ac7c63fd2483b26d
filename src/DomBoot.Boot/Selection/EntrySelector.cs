using System.Globalization;
using DomBoot.Boot.Model;
using DomBoot.Formats.Errors;

namespace DomBoot.Boot.Selection;

/// <summary>The entry chosen and why.</summary>
public sealed record SelectedEntry(BootEntry Entry, string Reason);

/// <summary>
/// Picks the entry to boot: an explicit --entry (flattened index as pygrub counts, exact title, id, "Submenu>Entry"
/// title path or GRUB's numeric "1>0" path), else the config's default; an entry whose kernel or initrd is missing
/// falls back through the config's fallback list, as GRUB does.
/// </summary>
public static class EntrySelector
{
    public static SelectedEntry Select(BootMenu menu, string? entry, IGuestFiles files)
    {
        ArgumentNullException.ThrowIfNull(menu);
        ArgumentNullException.ThrowIfNull(files);
        if (menu.Entries.Count == 0) throw new MalformedDataException(menu.ConfigPath, -1, "has no boot entries; expected at least one");
        int index;
        string reason;
        if (!string.IsNullOrEmpty(entry))
        {
            index = Find(menu, entry) ?? throw new InvalidRequestException(
                $"--entry {Quote.Text(entry)} matches no entry of {menu.ConfigPath}; entries are 0..{menu.Entries.Count - 1} (titles, ids, A>B paths)");
            reason = $"--entry {entry}";
        }
        else
        {
            index = menu.DefaultIndex is >= 0 && menu.DefaultIndex < menu.Entries.Count ? menu.DefaultIndex : 0;
            reason = menu.DefaultReason;
        }
        var tried = new List<string>();
        foreach (var candidate in new[] { index }.Concat(menu.FallbackIndexes).Where(i => i >= 0 && i < menu.Entries.Count).Distinct())
        {
            var e = menu.Entries[candidate];
            var missing = MissingFile(e, files);
            if (missing is null)
                return new SelectedEntry(e, candidate == index ? reason : $"{reason}; entry {index} names missing {tried[0]}, fallback {candidate}");
            tried.Add(missing.ToString());
        }
        var first = menu.Entries[index];
        throw new FileNotFoundException($"entry {index} \"{first.Title}\" ({first.Source}) names {tried[0]}, which is not on the guest's disks"
            + (tried.Count > 1 ? $"; fallbacks name {string.Join(", ", tried.Skip(1))}" : ""));
    }

    /// <summary>The first file an entry needs that is absent, or null.</summary>
    public static GuestPath? MissingFile(BootEntry e, IGuestFiles files)
    {
        ArgumentNullException.ThrowIfNull(e);
        ArgumentNullException.ThrowIfNull(files);
        if (e.Kernel is null) return new GuestPath(null, "(no kernel)");
        if (!files.FileExists(e.Kernel)) return e.Kernel;
        foreach (var i in e.Initrds) if (!files.FileExists(i)) return i;
        foreach (var m in e.Modules) if (!files.FileExists(m.File)) return m.File;
        return null;
    }

    public static int? Find(BootMenu menu, string spec)
    {
        ArgumentNullException.ThrowIfNull(menu);
        ArgumentNullException.ThrowIfNull(spec);
        if (int.TryParse(spec, NumberStyles.None, CultureInfo.InvariantCulture, out int n))
            return n < menu.Entries.Count ? n : null;
        foreach (var e in menu.Entries) if (e.Title == spec) return e.Index;
        foreach (var e in menu.Entries) if (e.Id is not null && e.Id == spec) return e.Index;
        if (spec.Contains('>', StringComparison.Ordinal))
        {
            var parts = spec.Split('>');
            foreach (var e in menu.Entries)
                if (e.MenuPath.Count == parts.Length && e.MenuPath.SequenceEqual(parts)) return e.Index;
            if (parts.All(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
                return NumericPath(menu, [.. parts.Select(p => int.Parse(p, CultureInfo.InvariantCulture))]);
        }
        return null;
    }

    /// <summary>GRUB's "1>0": top-level item 1 (a submenu counts as one item), then its entry 0.</summary>
    private static int? NumericPath(BootMenu menu, int[] path)
    {
        var top = new List<(string? Submenu, List<BootEntry> Entries)>();
        foreach (var e in menu.Entries)
        {
            string? sub = e.MenuPath.Count > 1 ? e.MenuPath[0] : null;
            if (sub is not null && top.Count > 0 && top[^1].Submenu == sub) top[^1].Entries.Add(e);
            else top.Add((sub, [e]));
        }
        if (path[0] >= top.Count) return null;
        var item = top[path[0]];
        if (path.Length == 1) return item.Submenu is null ? item.Entries[0].Index : null;
        return item.Submenu is not null && path.Length == 2 && path[1] < item.Entries.Count ? item.Entries[path[1]].Index : null;
    }
}
