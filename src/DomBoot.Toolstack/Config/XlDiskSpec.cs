using DomBoot.Formats.Errors;

namespace DomBoot.Toolstack.Config;

/// <summary>Image formats domboot hands to QEMU.</summary>
internal enum XlDiskFormat { Raw, Qcow2 }

/// <summary>
/// One `disk=` entry (xl-disk-configuration(5); tools/libs/util/libxlu_disk_l.l). Target is empty for an empty
/// cdrom drive.
/// </summary>
internal sealed record XlDiskSpec(string Target, XlDiskFormat Format, string Vdev, bool Writable, bool IsCdrom)
{
    private static readonly string[] IgnoredPrefixes = ["file", "phy", "tap", "tap2", "tapdisk", "aio", "ioemu"];
    private static readonly string[] FormatPrefixes = ["raw", "qcow", "qcow2", "vhd"];
    private static readonly string[] IgnoredKeys = ["backend", "backendtype", "script", "specification", "colo-host", "colo-port", "colo-export", "active-disk", "hidden-disk", "grant_usage"];
    private static readonly string[] IgnoredFlags = ["direct-io-safe", "discard", "no-discard", "trusted", "untrusted", "colo"];

    /// <summary>
    /// Parses one spec. Positionals fill target, format, vdev, access in order; a deprecated prefix on the target
    /// (`file:`, `phy:`, `raw:`, `qcow2:` …) skips the format slot; `target=` swallows the rest of the string;
    /// a target not starting with '/' gets "/dev/" prepended (as xl does). Errors are reported at <paramref name="at"/>.
    /// </summary>
    public static XlDiskSpec Parse(string spec, string fileName, XlPosition at)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ConfigSyntaxException Bad(string detail) => new(fileName, at.Line, at.Column, $"disk spec {Quote.Text(spec)}: {detail}");

        string? target = null, format = null, vdev = null, access = null, devtype = null;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int positional = 0;
        bool prefixSeen = false;
        int pos = 0;
        void Set(ref string? slot, string name, string value)
        {
            if (!seen.Add(name)) throw Bad($"parameter {name} given twice");
            slot = value.Length == 0 ? null : value;
        }

        while (pos <= spec.Length)
        {
            while (pos < spec.Length && (spec[pos] == ' ' || spec[pos] == '\t' || spec[pos] == '\n')) pos++;
            if (spec.AsSpan(pos).StartsWith("target=", StringComparison.Ordinal))
            {
                Set(ref target, "target", spec[(pos + "target=".Length)..]);
                break;
            }
            int comma = spec.IndexOf(',', pos);
            int end = comma < 0 ? spec.Length : comma;
            string token = spec[pos..end];
            pos = end + 1;
            int eq = token.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0)
            {
                string key = token[..eq], value = token[(eq + 1)..];
                switch (key)
                {
                    case "format": Set(ref format, key, value); break;
                    case "vdev": Set(ref vdev, key, value); break;
                    case "access": Set(ref access, key, value); break;
                    case "devtype": Set(ref devtype, key, value); break;
                    default:
                        if (!IgnoredKeys.Contains(key)) throw Bad($"unknown parameter {Quote.Text(key)}");
                        if (!seen.Add(key)) throw Bad($"parameter {key} given twice");
                        break;
                }
            }
            else if (token == "cdrom") Set(ref devtype, "devtype", "cdrom");
            else if (IgnoredFlags.Contains(token)) { if (!seen.Add(token)) throw Bad($"parameter {token} given twice"); }
            else
            {
                // Positionals, in order: target, format, vdev, access. A deprecated prefix skips format.
                if (positional == 0)
                {
                    string t = token;
                    for (int i = 0; i < 3; i++)
                    {
                        int colon = t.IndexOf(':', StringComparison.Ordinal);
                        if (colon <= 0) break;
                        string prefix = t[..colon];
                        if (IgnoredPrefixes.Contains(prefix)) { prefixSeen = true; t = t[(colon + 1)..]; }
                        else if (FormatPrefixes.Contains(prefix)) { prefixSeen = true; Set(ref format, "format", prefix); t = t[(colon + 1)..]; }
                        else break;
                    }
                    Set(ref target, "target", t);
                    positional = prefixSeen ? 2 : 1;
                }
                else if (positional == 1 && !token.EndsWith(":cdrom", StringComparison.Ordinal)) { Set(ref format, "format", token); positional = 2; }
                else if (positional <= 2)
                {
                    string v = token;
                    if (v.EndsWith(":cdrom", StringComparison.Ordinal)) { v = v[..^":cdrom".Length]; Set(ref devtype, "devtype", "cdrom"); }
                    Set(ref vdev, "vdev", v);
                    positional = 3;
                }
                else if (positional == 3) { Set(ref access, "access", token); positional = 4; }
                else throw Bad($"unexpected {Quote.Text(token)} after target, format, vdev and access");
            }
            if (comma < 0) break;
        }

        bool cdrom = devtype switch
        {
            null or "disk" => false,
            "cdrom" => true,
            _ => throw Bad($"devtype is {Quote.Text(devtype)}; expected disk or cdrom"),
        };
        var fmt = format switch
        {
            null or "raw" => XlDiskFormat.Raw,
            "qcow2" => XlDiskFormat.Qcow2,
            "qcow" or "vhd" or "qed" or "empty" => throw Bad($"format {format} is not supported by domboot; expected raw or qcow2"),
            _ => throw Bad($"format is {Quote.Text(format)}; expected raw or qcow2"),
        };
        bool writable = access switch
        {
            null => !cdrom,
            "w" or "rw" => true,
            "r" or "ro" => false,
            _ => throw Bad($"access is {Quote.Text(access)}; expected r, ro, w or rw"),
        };
        if (vdev is null) throw Bad("no vdev specified");
        if (!IsValidVdev(vdev)) throw Bad($"vdev is {Quote.Text(vdev)}; expected a name like xvda, hda, sda or vda");
        if (cdrom && writable) throw Bad("a cdrom cannot be writable");
        if (target is null && !cdrom) throw Bad("no target specified");
        string path = target ?? "";
        if (path.Length > 0 && path[0] != '/') path = "/dev/" + path;
        if (path.Length > 4096) throw Bad("target is longer than 4096 characters");
        if (path.Contains('\0', StringComparison.Ordinal)) throw Bad("target contains a NUL character");
        return new XlDiskSpec(path, fmt, vdev, writable, cdrom);
    }

    private static bool IsValidVdev(string vdev) =>
        vdev.Length is > 0 and <= 16 && char.IsAsciiLetterLower(vdev[0]) && vdev.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c));

    /// <summary>The spec as xl would write it back (canonical key=value form, target last).</summary>
    public override string ToString() =>
        $"format={(Format == XlDiskFormat.Qcow2 ? "qcow2" : "raw")}, vdev={Vdev}, access={(Writable ? "rw" : "ro")}{(IsCdrom ? ", devtype=cdrom" : "")}, target={Target}";
}
