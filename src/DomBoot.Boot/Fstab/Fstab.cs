using System.Globalization;
using System.Text;
using DomBoot.Boot.GrubLegacy;
using DomBoot.Boot.Model;
using DomBoot.Formats.Errors;

namespace DomBoot.Boot.Fstab;

/// <summary>One fstab(5) line: fs_spec, fs_file, fs_vfstype, fs_mntops, fs_freq, fs_passno (octal escapes decoded).</summary>
internal sealed record FstabEntry(string Spec, string File, string VfsType, string MntOps, int Freq, int PassNo, string Source)
{
    /// <summary>
    /// Parses one non-comment line. At least fs_spec, fs_file and fs_vfstype are required; fs_mntops defaults to
    /// "defaults", fs_freq and fs_passno to 0 (as libmount does). More than six fields is an error.
    /// </summary>
    public static FstabEntry Parse(string line, string fileName, int lineNo)
    {
        ArgumentNullException.ThrowIfNull(line);
        string[] fields = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 3)
            throw new ConfigSyntaxException(fileName, lineNo, 1, $"fstab line has {fields.Length} fields; expected at least 3 (spec, file, vfstype)");
        if (fields.Length > 6)
            throw new ConfigSyntaxException(fileName, lineNo, 1, $"fstab line has {fields.Length} fields; expected at most 6");
        return new FstabEntry(
            Unescape(fields[0], fileName, lineNo),
            Unescape(fields[1], fileName, lineNo),
            Unescape(fields[2], fileName, lineNo),
            fields.Length > 3 ? Unescape(fields[3], fileName, lineNo) : "defaults",
            fields.Length > 4 ? Number(fields[4], "fs_freq", fileName, lineNo) : 0,
            fields.Length > 5 ? Number(fields[5], "fs_passno", fileName, lineNo) : 0,
            $"{fileName}:{lineNo}");
    }

    private static int Number(string s, string field, string fileName, int lineNo)
    {
        if (s.Length <= 9 && int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int n)) return n;
        throw new ConfigSyntaxException(fileName, lineNo, 1, $"{field} is {Quote.Text(s)}; expected a number");
    }

    /// <summary>fstab(5): "\040" style octal escapes (space, tab, newline, backslash, any byte); UTF-8 re-decoded.</summary>
    private static string Unescape(string field, string fileName, int lineNo)
    {
        if (!field.Contains('\\', StringComparison.Ordinal)) return field;
        var bytes = new List<byte>();
        for (int i = 0; i < field.Length; i++)
        {
            char c = field[i];
            if (c == '\\' && IsOctal(field, i + 1) && IsOctal(field, i + 2) && IsOctal(field, i + 3))
            {
                int v = ((field[i + 1] - '0') << 6) | ((field[i + 2] - '0') << 3) | (field[i + 3] - '0');
                if (v is 0 or > 0xFF)
                    throw new ConfigSyntaxException(fileName, lineNo, 1, $"octal escape \\{field.Substring(i + 1, 3)} is not a byte");
                bytes.Add((byte)v);
                i += 3;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
            }
        }
        return Encoding.UTF8.GetString([.. bytes]);
    }

    private static bool IsOctal(string s, int i) => i < s.Length && s[i] is >= '0' and <= '7';
}

/// <summary>A btrfs subvolume named by mount options: <c>subvol=</c> path and/or <c>subvolid=</c>.</summary>
internal sealed record BtrfsSubvolume(string? Path, ulong? Id);

/// <summary>
/// /etc/fstab reading and resolution against the guest's volumes, for domUloader's "find /boot through the guest's
/// fstab" (anchors section 5).
/// </summary>
internal static class Fstab
{
    public static IReadOnlyList<FstabEntry> Parse(string text, string fileName)
    {
        ArgumentNullException.ThrowIfNull(text);
        List<string> lines = ConfigLines.Split(text, fileName);
        var result = new List<FstabEntry>();
        for (int i = 0; i < lines.Count; i++)
        {
            string line = ConfigLines.TrimBlanks(lines[i]);
            if (line.Length == 0 || line[0] == '#') continue;
            result.Add(FstabEntry.Parse(line, fileName, i + 1));
        }
        return result;
    }

    /// <summary>
    /// The volume <paramref name="entry"/>'s fs_spec names: UUID=, LABEL=, PARTUUID=, PARTLABEL= (optionally quoted),
    /// /dev/disk/by-uuid|by-label|by-partuuid|by-partlabel/..., or a device name /dev/xvdXN, sdXN, hdXN, vdXN.
    /// Device names go first to <paramref name="guestDeviceToVolume"/> (name without "/dev/", e.g. "xvda2" -> the
    /// volume's GrubDevice, or null when it does not know the name); failing that, any of xvd/sd/hd/vd maps to the
    /// volume whose LinuxName is "vd" + the same letters and number. Null when nothing matches (LVM, md, tmpfs...).
    /// </summary>
    public static GuestVolumeInfo? FindVolume(FstabEntry entry, IReadOnlyList<GuestVolumeInfo> volumes, Func<string, string?>? guestDeviceToVolume)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(volumes);
        string spec = entry.Spec;
        if (TryTag(spec, "UUID=", out string v)) return volumes.FirstOrDefault(x => string.Equals(x.Uuid, v, StringComparison.OrdinalIgnoreCase));
        if (TryTag(spec, "LABEL=", out v)) return volumes.FirstOrDefault(x => x.Label == v);
        if (TryTag(spec, "PARTUUID=", out v)) return volumes.FirstOrDefault(x => string.Equals(x.PartUuid, v, StringComparison.OrdinalIgnoreCase));
        if (TryTag(spec, "PARTLABEL=", out v)) return volumes.FirstOrDefault(x => x.PartLabel == v);
        const string byDir = "/dev/disk/";
        if (spec.StartsWith(byDir, StringComparison.Ordinal))
        {
            string rest = spec[byDir.Length..];
            int slash = rest.IndexOf('/', StringComparison.Ordinal);
            if (slash < 0) return null;
            string kind = rest[..slash];
            string value = UnescapeUdev(rest[(slash + 1)..]);
            return kind switch
            {
                "by-uuid" => volumes.FirstOrDefault(x => string.Equals(x.Uuid, value, StringComparison.OrdinalIgnoreCase)),
                "by-label" => volumes.FirstOrDefault(x => x.Label == value),
                "by-partuuid" => volumes.FirstOrDefault(x => string.Equals(x.PartUuid, value, StringComparison.OrdinalIgnoreCase)),
                "by-partlabel" => volumes.FirstOrDefault(x => x.PartLabel == value),
                _ => null,
            };
        }
        if (spec.StartsWith("/dev/", StringComparison.Ordinal))
        {
            string name = spec["/dev/".Length..];
            string? grub = guestDeviceToVolume?.Invoke(name);
            if (grub is not null) return volumes.FirstOrDefault(x => x.GrubDevice == grub);
            string? vd = ToVdName(name);
            return vd is null ? null : volumes.FirstOrDefault(x => x.LinuxName == vd);
        }
        return null;
    }

    /// <summary>"xvda2", "sda2", "hda2", "vda2" -> "vda2"; null for other names.</summary>
    internal static string? ToVdName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string? tail = null;
        foreach (string prefix in new[] { "xvd", "sd", "hd", "vd" })
        {
            if (name.StartsWith(prefix, StringComparison.Ordinal)) { tail = name[prefix.Length..]; break; }
        }
        if (tail is null) return null;
        int i = 0;
        while (i < tail.Length && tail[i] is >= 'a' and <= 'z') i++;
        if (i is 0 or > 3) return null;
        for (int j = i; j < tail.Length; j++) if (!char.IsAsciiDigit(tail[j])) return null;
        if (tail.Length - i > 3) return null;
        return "vd" + tail;
    }

    /// <summary>btrfs <c>subvol=</c>/<c>subvolid=</c> from fs_mntops (last occurrence wins, as mount does); null when neither.</summary>
    public static BtrfsSubvolume? SubvolOf(string mntops)
    {
        ArgumentNullException.ThrowIfNull(mntops);
        string? path = null;
        ulong? id = null;
        foreach (string opt in mntops.Split(','))
        {
            if (opt.StartsWith("subvol=", StringComparison.Ordinal)) path = opt["subvol=".Length..];
            else if (opt.StartsWith("subvolid=", StringComparison.Ordinal)
                && ulong.TryParse(opt.AsSpan("subvolid=".Length), NumberStyles.None, CultureInfo.InvariantCulture, out ulong n)) id = n;
        }
        return path is null && id is null ? null : new BtrfsSubvolume(path, id);
    }

    /// <summary>
    /// The entry whose mount point is the longest path prefix of "/boot" ("/boot" beats "/"); swap and non-path mount
    /// points are skipped. Null when no entry holds /boot.
    /// </summary>
    public static FstabEntry? BootMountFor(IReadOnlyList<FstabEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        FstabEntry? best = null;
        foreach (FstabEntry e in entries)
        {
            if (e.VfsType == "swap" || !e.File.StartsWith('/')) continue;
            string mp = e.File.Length > 1 ? e.File.TrimEnd('/') : e.File;
            bool holds = mp == "/" || mp == "/boot";
            if (!holds) continue;
            if (best is null || mp.Length >= best.File.TrimEnd('/').Length) best = e;
        }
        return best;
    }

    /// <summary>Where guest path <paramref name="guestPath"/> ("/boot/vmlinuz") lies inside the filesystem mounted by <paramref name="mount"/>.</summary>
    public static string PathOnVolume(FstabEntry mount, string guestPath)
    {
        ArgumentNullException.ThrowIfNull(mount);
        ArgumentNullException.ThrowIfNull(guestPath);
        string mp = mount.File.Length > 1 ? mount.File.TrimEnd('/') : "/";
        string p = ConfigLines.Combine("/", guestPath);
        if (mp == "/") return p;
        if (p == mp) return "/";
        if (p.StartsWith(mp + "/", StringComparison.Ordinal)) return p[mp.Length..];
        throw new ArgumentException($"{guestPath} is not under {mount.File}", nameof(guestPath));
    }

    private static bool TryTag(string spec, string tag, out string value)
    {
        value = "";
        if (!spec.StartsWith(tag, StringComparison.Ordinal)) return false;
        value = spec[tag.Length..];
        if (value.Length >= 2 && (value[0] == '"' || value[0] == '\'') && value[^1] == value[0]) value = value[1..^1];
        return true;
    }

    /// <summary>udev encodes unsafe characters in /dev/disk/by-* names as \xNN.</summary>
    private static string UnescapeUdev(string s)
    {
        if (!s.Contains("\\x", StringComparison.Ordinal)) return s;
        var bytes = new List<byte>();
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && i + 3 < s.Length && s[i + 1] == 'x'
                && byte.TryParse(s.AsSpan(i + 2, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte b))
            {
                bytes.Add(b);
                i += 3;
            }
            else bytes.AddRange(Encoding.UTF8.GetBytes(s[i].ToString()));
        }
        return Encoding.UTF8.GetString([.. bytes]);
    }
}
