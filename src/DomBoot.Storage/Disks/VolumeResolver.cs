using DomBoot.Storage.Partitions;

namespace DomBoot.Storage.Disks;

/// <summary>
/// Finds a volume the way fstab, the kernel command line and GRUB name one: UUID=, LABEL=, PARTUUID=, PARTLABEL=,
/// /dev/vdXN (or bare vdXN), and GRUB's (hdN,msdosM) / (hdN,gptM) / (hdN).
/// </summary>
public static class VolumeResolver
{
    /// <summary>The first volume matching <paramref name="spec"/> across the disks' reports, or null.</summary>
    public static VolumeReport? Find(IEnumerable<DiskReport> disks, string spec)
    {
        ArgumentNullException.ThrowIfNull(disks);
        ArgumentNullException.ThrowIfNull(spec);
        return disks.SelectMany(d => d.Volumes).FirstOrDefault(v => Matches(v, spec));
    }

    public static bool Matches(VolumeReport volume, string spec)
    {
        ArgumentNullException.ThrowIfNull(volume);
        ArgumentNullException.ThrowIfNull(spec);
        var v = volume.Volume;
        var fs = volume.FileSystem;
        spec = spec.Trim();
        if (TryValue(spec, "UUID=", out var uuid)) return fs?.Uuid is { } u && string.Equals(u, uuid, StringComparison.OrdinalIgnoreCase);
        if (TryValue(spec, "LABEL=", out var label)) return fs?.Label is { } l && l == label;
        if (TryValue(spec, "PARTUUID=", out var pu)) return v.PartUuid is { } p && string.Equals(p, pu, StringComparison.OrdinalIgnoreCase);
        if (TryValue(spec, "PARTLABEL=", out var pl)) return v.Name is { } n && n == pl;
        if (spec.StartsWith('(')) return string.Equals(v.GrubName, spec, StringComparison.Ordinal);
        string name = spec.StartsWith("/dev/", StringComparison.Ordinal) ? spec["/dev/".Length..] : spec;
        return v.Kind != VolumeKind.Extended && string.Equals(v.LinuxName, name, StringComparison.Ordinal);
    }

    private static bool TryValue(string spec, string prefix, out string value)
    {
        if (spec.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
        {
            value = spec[prefix.Length..].Trim('"');
            return true;
        }
        value = "";
        return false;
    }
}
