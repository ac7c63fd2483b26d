using System.Text;
using DomBoot.Boot.Model;
using DomBoot.Formats.Errors;

namespace DomBoot.Boot.Grub2;

/// <summary>GRUB's environment block (GNU GRUB manual, "Environment block"; grub-core/lib/envblk.c).</summary>
internal static class Grub2EnvBlock
{
    public const string Signature = "# GRUB Environment Block\n";

    /// <summary>name=value pairs in file order; backslash escapes the next character; null without the signature.</summary>
    public static List<(string Name, string Value)>? Parse(ReadOnlySpan<byte> bytes)
    {
        string text = Grub2Evaluator.DecodeText(bytes);
        if (!text.StartsWith(Signature, StringComparison.Ordinal)) return null;
        var result = new List<(string, string)>();
        int i = Signature.Length;
        var line = new StringBuilder();
        while (i < text.Length)
        {
            line.Clear();
            while (i < text.Length && text[i] != '\n')
            {
                if (text[i] == '\\' && i + 1 < text.Length)
                {
                    line.Append(text[i + 1]);
                    i += 2;
                    continue;
                }
                line.Append(text[i++]);
            }
            i++;
            if (line.Length == 0 || line[0] == '#') continue;
            string l = line.ToString();
            int eq = l.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) continue;
            result.Add((l[..eq], l[(eq + 1)..]));
        }
        return result;
    }
}

/// <summary>rpm's rpmvercmp, as rhboot/grub2 blscfg.c uses to order BLS entries.</summary>
internal static class RpmVersion
{
    private static bool IsAlnum(char c) => char.IsAsciiLetterOrDigit(c);

    public static int Compare(string a, string b)
    {
        if (a == b) return 0;
        int i = 0, j = 0;
        while (i < a.Length || j < b.Length)
        {
            while (i < a.Length && !IsAlnum(a[i]) && a[i] != '~' && a[i] != '^') i++;
            while (j < b.Length && !IsAlnum(b[j]) && b[j] != '~' && b[j] != '^') j++;
            bool ta = i < a.Length && a[i] == '~', tb = j < b.Length && b[j] == '~';
            if (ta || tb)
            {
                if (!ta) return 1;
                if (!tb) return -1;
                i++;
                j++;
                continue;
            }
            bool ca = i < a.Length && a[i] == '^', cb = j < b.Length && b[j] == '^';
            if (ca || cb)
            {
                if (i >= a.Length) return -1;
                if (j >= b.Length) return 1;
                if (!ca) return 1;
                if (!cb) return -1;
                i++;
                j++;
                continue;
            }
            if (i >= a.Length || j >= b.Length) break;
            bool num = char.IsAsciiDigit(a[i]);
            int si = i, sj = j;
            if (num)
            {
                while (i < a.Length && char.IsAsciiDigit(a[i])) i++;
                while (j < b.Length && char.IsAsciiDigit(b[j])) j++;
            }
            else
            {
                while (i < a.Length && char.IsAsciiLetter(a[i])) i++;
                while (j < b.Length && char.IsAsciiLetter(b[j])) j++;
            }
            if (sj == j) return num ? 1 : -1;
            string x = a[si..i], y = b[sj..j];
            if (num)
            {
                x = x.TrimStart('0');
                y = y.TrimStart('0');
                if (x.Length != y.Length) return x.Length > y.Length ? 1 : -1;
            }
            int c = string.CompareOrdinal(x, y);
            if (c != 0) return c < 0 ? -1 : 1;
        }
        if (i >= a.Length && j >= b.Length) return 0;
        return i >= a.Length ? -1 : 1;
    }
}

internal sealed partial class Grub2Evaluator
{
    private sealed record BlsSnippet(string Id, string Title, string? Version, string Linux, List<string> Initrds, string Options, int Line);

    /// <summary>rhboot/grub2 blscfg: one menu entry per /loader/entries/*.conf, newest version first.</summary>
    private void Blscfg(Grub2Context ctx, Grub2Node node)
    {
        _status = false;
        _rhbootSelection = true;
        if (ctx.Menu is null)
        {
            Warn($"{Loc(ctx, node)}: blscfg inside a menu entry ignored");
            return;
        }
        var candidates = new List<string>();
        // blscfg reads the entries from $boot (BIOS build); $root and every volume are our fallbacks
        foreach (var name in new[] { "boot", "root" })
        {
            string? dev = ctx.Scope.Get(name);
            if (!string.IsNullOrEmpty(dev) && !candidates.Contains("(" + dev + ")")) candidates.Add("(" + dev + ")");
        }
        foreach (var v in _files.Volumes)
            if (!candidates.Contains(v.GrubDevice)) candidates.Add(v.GrubDevice);
        string? blsdir = ctx.Scope.Get("blsdir");
        string[] dirs = string.IsNullOrEmpty(blsdir) ? ["/loader/entries", "/boot/loader/entries"] : [blsdir.TrimEnd('/')];
        string? device = null, dir = null;
        List<string> names = [];
        foreach (var dev in candidates)
        {
            foreach (var d in dirs)
            {
                names = _files.ListDirectory(new GuestPath(dev, d)).Where(n => n.Length > 5 && n[0] != '.' && n.EndsWith(".conf", StringComparison.Ordinal)).ToList();
                if (names.Count > 0)
                {
                    device = dev;
                    dir = d;
                    break;
                }
            }
            if (device is not null) break;
        }
        if (device is null || dir is null)
        {
            Warn($"{Loc(ctx, node)}: blscfg found no /loader/entries/*.conf");
            return;
        }
        if (names.Count > _options.MaxEntries)
            throw new MalformedDataException($"{device}{dir}", -1, $"{names.Count} BLS entries exceed the limit of {_options.MaxEntries}");
        var snippets = new List<BlsSnippet>();
        foreach (var name in names)
        {
            Step();
            var path = new GuestPath(device, dir + "/" + name);
            long? size = _files.FileSize(path);
            if (size is null) continue;
            if (size > _options.MaxBlsFileBytes)
            {
                Warn($"BLS entry {path} is {size} bytes; skipped as blscfg does");
                continue;
            }
            byte[]? bytes = _files.ReadFile(path, _options.MaxBlsFileBytes);
            if (bytes is null) continue;
            var s = ParseBls(name[..^5], DecodeText(bytes));
            if (s is null)
            {
                Warn($"BLS entry {path} has no linux key; skipped");
                continue;
            }
            snippets.Add(s);
        }
        // bls_cmp sorts ascending (an entry without version counts as newer), blscfg then adds from the end
        snippets.Sort((a, b) =>
        {
            if (a.Version is not null && b.Version is null) return 1;
            if (a.Version is null && b.Version is not null) return -1;
            int c = RpmVersion.Compare(b.Version ?? "", a.Version ?? "");
            return c != 0 ? c : RpmVersion.Compare(b.Id, a.Id);
        });
        string? root = ctx.Scope.Get("root");
        string rootDevice = string.IsNullOrEmpty(root) ? device : "(" + root + ")";
        foreach (var s in snippets)
        {
            string file = $"{device}{dir}/{s.Id}.conf";
            // create_entry: "linux ($root)<linux> <options>" and "initrd ($root)<value> ..." as script text, so
            // $kernelopts and friends expand when the entry boots
            var text = new StringBuilder();
            text.Append("linux ($root)").Append(BlsPath(rootDevice, s.Linux));
            if (s.Options.Length > 0) text.Append(' ').Append(s.Options);
            text.Append('\n');
            if (s.Initrds.Count > 0)
            {
                text.Append("initrd");
                foreach (var i in s.Initrds) text.Append(" ($root)").Append(BlsPath(rootDevice, i));
                text.Append('\n');
            }
            Grub2Script script;
            try
            {
                script = ParseScript(text.ToString(), file);
            }
            catch (ConfigSyntaxException e)
            {
                Warn($"BLS entry {file}: {e.Message}; skipped");
                continue;
            }
            CountItem();
            ctx.Menu.Items.Add(new Grub2MenuItem
            {
                IsSubmenu = false,
                Title = s.Title,
                Id = s.Id,
                Body = script.Commands,
                Source = $"{file}:{s.Line}",
                File = file,
            });
        }
        _status = true;
    }

    /// <summary>
    /// BLS paths are relative to the partition holding them. With /boot on the root fs, a snippet written as
    /// "/vmlinuz-X" only boots if it exists there; when only "/boot/vmlinuz-X" does, use that (and say so).
    /// </summary>
    private string BlsPath(string device, string value)
    {
        if (value.StartsWith('/') && !value.StartsWith("/boot/", StringComparison.Ordinal))
        {
            int end = value.IndexOfAny([' ', '\t']);
            string first = end < 0 ? value : value[..end];
            if (!_files.FileExists(new GuestPath(device, first)) && _files.FileExists(new GuestPath(device, "/boot" + first)))
            {
                Warn($"BLS path {Quote.Text(first)} is not on {device}; using /boot{first}");
                return "/boot" + value;
            }
        }
        return value;
    }

    private static BlsSnippet? ParseBls(string id, string text)
    {
        string? title = null, version = null, linux = null;
        int linuxLine = 1;
        var initrds = new List<string>();
        var options = new List<string>();
        int lineNo = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNo++;
            string line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            int sp = line.IndexOfAny([' ', '\t']);
            string key = sp < 0 ? line : line[..sp];
            string value = sp < 0 ? "" : line[(sp + 1)..].Trim();
            switch (key)
            {
                case "title": title = value; break;
                case "version": version = value; break;
                case "linux":
                    linux = value;
                    linuxLine = lineNo;
                    break;
                case "initrd":
                    initrds.Add(value);
                    break;
                case "options": options.Add(value); break;
                default: break;
            }
        }
        if (string.IsNullOrEmpty(linux)) return null;
        return new BlsSnippet(id, string.IsNullOrEmpty(title) ? linux : title, version, linux, initrds, string.Join(' ', options), linuxLine);
    }
}
