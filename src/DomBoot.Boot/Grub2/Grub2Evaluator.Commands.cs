using System.Text;
using DomBoot.Boot.Model;
using DomBoot.Formats.Errors;

namespace DomBoot.Boot.Grub2;

internal sealed partial class Grub2Evaluator
{
    private int _itemCount;

    /// <summary>Set once blscfg runs: only rhboot's GRUB has blscfg, and it matches id and title before numbers.</summary>
    private bool _rhbootSelection;

    private GuestPath? FindFile(string text, Grub2Context ctx, Grub2Node node, string command)
    {
        var path = ToPath(text, ctx.Scope);
        long? size = _files.FileSize(path);
        if (size is null)
        {
            Warn($"{Loc(ctx, node)}: {command}: file {Quote.Text(path.ToString())} not found");
            return null;
        }
        if (size > _options.MaxConfigBytes)
            throw new MalformedDataException(Quote.Text(path.ToString()), -1, $"{command} file is {size} bytes, larger than the limit of {_options.MaxConfigBytes}");
        return path;
    }

    private string? ReadText(GuestPath path, long max)
    {
        byte[]? bytes = _files.ReadFile(path, max);
        if (bytes is null) return null;
        return DecodeText(bytes);
    }

    /// <summary>UTF-8 with invalid sequences as U+FFFD (GRUB itself treats bytes opaquely); a BOM is dropped.</summary>
    internal static string DecodeText(ReadOnlySpan<byte> bytes)
    {
        if (bytes.StartsWith("\uFEFF"u8)) bytes = bytes[3..];
        return Encoding.UTF8.GetString(bytes);
    }

    private void CheckSourceDepth(Grub2Context ctx, Grub2Node node, string command)
    {
        if (ctx.SourceDepth + 1 > _options.MaxSourceDepth)
            throw new MalformedDataException(ctx.File, -1, $"{command} depth {ctx.SourceDepth + 1} at line {node.Line} exceeds the limit of {_options.MaxSourceDepth}");
    }

    private Grub2Flow Source(List<string> args, Grub2Context ctx, Grub2Node node)
    {
        _status = false;
        if (args.Count == 0) return Grub2Flow.Normal;
        CheckSourceDepth(ctx, node, "source");
        var path = FindFile(args[0], ctx, node, "source");
        if (path is null) return Grub2Flow.Normal;
        string? text = ReadText(path, _options.MaxConfigBytes);
        if (text is null) return Grub2Flow.Normal;
        var script = ParseScript(text, path.ToString());
        var sub = new Grub2Context { Scope = ctx.Scope, File = path.ToString(), Menu = ctx.Menu, Loaded = ctx.Loaded, SourceDepth = ctx.SourceDepth + 1 };
        var flow = ExecList(script.Commands, sub);
        return flow == Grub2Flow.Return ? Grub2Flow.Normal : flow;
    }

    private Grub2Flow Configfile(List<string> args, Grub2Context ctx, Grub2Node node)
    {
        _status = false;
        if (args.Count == 0) return Grub2Flow.Normal;
        if (ctx.Loaded is not null)
        {
            Warn($"{Loc(ctx, node)}: configfile inside a menu entry is not followed");
            return Grub2Flow.Normal;
        }
        CheckSourceDepth(ctx, node, "configfile");
        var path = FindFile(args[0], ctx, node, "configfile");
        if (path is null) return Grub2Flow.Normal;
        string? text = ReadText(path, _options.MaxConfigBytes);
        if (text is null) return Grub2Flow.Normal;
        var scope = ctx.Scope.NewContext();
        scope.Set("config_file", path.ToString(), null);
        scope.Set("config_directory", DirectoryOf(path.ToString()), null);
        _replacement = RunMenuFile(text, path.ToString(), scope, ctx.SourceDepth + 1);
        return Grub2Flow.Replaced;
    }

    private void LoadEnv(List<string> args, Grub2Context ctx)
    {
        _status = false;
        string? file = null;
        var only = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if ((a == "-f" || a == "--file") && i + 1 < args.Count) file = args[++i];
            else if (a.StartsWith("--file=", StringComparison.Ordinal)) file = a[7..];
            else if (a is "-s" or "--skip-sig") continue;
            else only.Add(a);
        }
        file ??= (ctx.Scope.Get("prefix") ?? "") + "/grubenv";
        var path = ToPath(file, ctx.Scope);
        long? size = _files.FileSize(path);
        if (size is null) return;
        if (size > _options.MaxEnvBytes)
        {
            Warn($"grubenv {Quote.Text(path.ToString())} is {size} bytes, larger than the limit of {_options.MaxEnvBytes}; ignored");
            return;
        }
        byte[]? bytes = _files.ReadFile(path, _options.MaxEnvBytes);
        if (bytes is null) return;
        var vars = Grub2EnvBlock.Parse(bytes);
        if (vars is null)
        {
            Warn($"grubenv {Quote.Text(path.ToString())} does not start with \"# GRUB Environment Block\"; ignored");
            return;
        }
        foreach (var (name, value) in vars)
        {
            if (only.Count > 0 && !only.Contains(name)) continue;
            ctx.Scope.Set(name, value, $"grubenv {path}");
        }
        _status = true;
    }

    private void Search(string command, List<string> args, Grub2Context ctx)
    {
        _status = false;
        string mode = command switch { "search.fs_uuid" => "uuid", "search.fs_label" => "label", _ => "file" };
        string? setVar = command == "search" ? null : "root";
        var hints = new List<string>();
        var positional = new List<string>();
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            switch (a)
            {
                case "--fs-uuid" or "-u": mode = "uuid"; continue;
                case "--label" or "-l": mode = "label"; continue;
                case "--file" or "-f": mode = "file"; continue;
                case "--set" or "-s": setVar = "root"; continue;
                case "--no-floppy" or "-n" or "--efidisk-only" or "--cryptodisk-only": continue;
                case "-h":
                    if (i + 1 < args.Count) hints.Add(args[++i]);
                    continue;
                default:
                    break;
            }
            if (a.StartsWith("--set=", StringComparison.Ordinal)) setVar = a[6..];
            else if (a.StartsWith("--hint", StringComparison.Ordinal))
            {
                int eq = a.IndexOf('=', StringComparison.Ordinal);
                if (eq >= 0) hints.Add(a[(eq + 1)..]);
                else if (i + 1 < args.Count) hints.Add(args[++i]);
            }
            else positional.Add(a);
        }
        if (positional.Count == 0) return;
        string value = positional[0];
        if (command != "search" && positional.Count > 1) setVar = positional[1];
        bool Matches(GuestVolumeInfo v) => mode switch
        {
            "uuid" => string.Equals(v.Uuid, value, StringComparison.OrdinalIgnoreCase),
            "label" => string.Equals(v.Label, value, StringComparison.Ordinal),
            _ => _files.FileExists(new GuestPath(v.GrubDevice, value)),
        };
        GuestVolumeInfo? found = null;
        foreach (var hint in hints)
        {
            string h = StripParens(hint)!.TrimEnd(',');
            found = _files.Volumes.FirstOrDefault(v => StripParens(v.GrubDevice) == h && Matches(v));
            if (found is not null) break;
        }
        found ??= _files.Volumes.FirstOrDefault(Matches);
        if (found is null)
        {
            Warn($"search {mode} {Quote.Text(value)}: no such device");
            return;
        }
        if (setVar is not null) ctx.Scope.Set(setVar, StripParens(found.GrubDevice)!, $"search --{mode} {Quote.Text(value)}");
        _status = true;
    }

    // ---- loaders (inside entry bodies) ----

    private static IEnumerable<string> SkipOptions(List<string> args) => args.SkipWhile(a => a.StartsWith("--", StringComparison.Ordinal));

    private void LoadLinux(List<string> args, Grub2Context ctx, Grub2Node node)
    {
        _status = false;
        if (ctx.Loaded is null || args.Count == 0)
        {
            if (ctx.Loaded is null) Warn($"{Loc(ctx, node)}: linux outside a menu entry ignored");
            return;
        }
        ctx.Loaded.Kind = BootEntryKind.Linux;
        ctx.Loaded.Kernel = ToPath(args[0], ctx.Scope);
        ctx.Loaded.Args = CommandLine(args.Skip(1));
        ctx.Loaded.Initrds.Clear();
        ctx.Loaded.Modules.Clear();
        _status = true;
    }

    private void LoadInitrd(List<string> args, Grub2Context ctx, Grub2Node node)
    {
        _status = false;
        if (ctx.Loaded is not { Kernel: not null, Kind: BootEntryKind.Linux })
        {
            Warn($"{Loc(ctx, node)}: initrd without a linux kernel loaded first (GRUB: you need to load the kernel first)");
            return;
        }
        ctx.Loaded.Initrds.Clear();
        foreach (var a in args)
        {
            if (a.StartsWith("--", StringComparison.Ordinal)) continue;
            ctx.Loaded.Initrds.Add(ToPath(a, ctx.Scope));
        }
        _status = true;
    }

    private void LoadMultiboot(List<string> args, Grub2Context ctx, Grub2Node node)
    {
        _status = false;
        var rest = SkipOptions(args).ToList();
        if (ctx.Loaded is null || rest.Count == 0)
        {
            if (ctx.Loaded is null) Warn($"{Loc(ctx, node)}: multiboot outside a menu entry ignored");
            return;
        }
        ctx.Loaded.Kind = BootEntryKind.Multiboot;
        ctx.Loaded.Kernel = ToPath(rest[0], ctx.Scope);
        ctx.Loaded.Args = CommandLine(rest.Skip(1));
        ctx.Loaded.Initrds.Clear();
        ctx.Loaded.Modules.Clear();
        _status = true;
    }

    private void LoadModule(List<string> args, Grub2Context ctx, Grub2Node node)
    {
        _status = false;
        var rest = SkipOptions(args).ToList();
        if (ctx.Loaded is not { Kernel: not null, Kind: BootEntryKind.Multiboot } || rest.Count == 0)
        {
            Warn($"{Loc(ctx, node)}: module without a multiboot kernel loaded first");
            return;
        }
        ctx.Loaded.Modules.Add(new BootModule(ToPath(rest[0], ctx.Scope), CommandLine(rest.Skip(1))));
        _status = true;
    }

    private static bool IsHex(char c) => c is (>= '0' and <= '9') or (>= 'a' and <= 'f') or (>= 'A' and <= 'F');

    /// <summary>grub-core/lib/cmdline.c grub_create_loader_cmdline: args with a space are quoted; \ ' " escaped; \xNN kept.</summary>
    internal static string CommandLine(IEnumerable<string> args)
    {
        var sb = new StringBuilder();
        bool first = true;
        foreach (var a in args)
        {
            if (!first) sb.Append(' ');
            first = false;
            bool space = a.Contains(' ', StringComparison.Ordinal);
            if (space) sb.Append('"');
            for (int i = 0; i < a.Length; i++)
            {
                char c = a[i];
                if (c == '\\' && i + 3 < a.Length && a[i + 1] == 'x' && IsHex(a[i + 2]) && IsHex(a[i + 3]))
                {
                    sb.Append(a, i, 4);
                    i += 3;
                    continue;
                }
                if (c is '\\' or '\'' or '"') sb.Append('\\');
                sb.Append(c);
            }
            if (space) sb.Append('"');
        }
        return sb.ToString();
    }

    // ---- menu ----

    private void CountItem()
    {
        if (++_itemCount > _options.MaxEntries)
            throw new MalformedDataException("GRUB menu", -1, $"more than {_options.MaxEntries} menu entries");
    }

    private void AddMenuItem(List<string> fields, Grub2BlockCommand b, Grub2Context ctx)
    {
        string command = fields[0];
        if (ctx.Menu is null)
        {
            Warn($"{Loc(ctx, b)}: {command} inside a menu entry ignored");
            return;
        }
        string? id = null;
        var positional = new List<string>();
        bool rest = false;
        for (int i = 1; i < fields.Count; i++)
        {
            string a = fields[i];
            if (rest || !a.StartsWith("--", StringComparison.Ordinal) || a.Length == 2)
            {
                if (a == "--" && !rest)
                {
                    rest = true;
                    continue;
                }
                positional.Add(a);
                continue;
            }
            switch (a)
            {
                case "--class" or "--users" or "--hotkey" or "--source":
                    i++;
                    break;
                case "--id":
                    if (i + 1 < fields.Count) id = fields[++i];
                    break;
                default:
                    if (a.StartsWith("--id=", StringComparison.Ordinal)) id = a[5..];
                    break;
            }
        }
        CountItem();
        ctx.Menu.Items.Add(new Grub2MenuItem
        {
            IsSubmenu = command == "submenu",
            Title = positional.Count > 0 ? positional[0] : "",
            Id = id,
            Body = b.Body,
            Args = positional.Skip(1).ToArray(),
            Source = $"{ctx.File}:{b.Line}",
            File = ctx.File,
        });
        _status = true;
    }

    private List<Grub2TreeItem> BuildLevel(Grub2Menu menu, Grub2Scope scope, IReadOnlyList<string> path, int depth)
    {
        if (depth > _options.MaxFunctionDepth)
            throw new MalformedDataException("GRUB menu", -1, $"submenu depth {depth} exceeds the limit of {_options.MaxFunctionDepth}");
        var result = new List<Grub2TreeItem>();
        foreach (var item in menu.Items)
        {
            var itemPath = path.Append(item.Title).ToArray();
            if (!item.IsSubmenu)
            {
                result.Add(new Grub2TreeItem { Title = item.Title, Id = item.Id, FlatIndex = AddEntry(item, scope, itemPath) });
                continue;
            }
            var subScope = scope.NewContext();
            subScope.Unset("default");
            subScope.Positional = item.Args;
            var ctx = new Grub2Context { Scope = subScope, File = item.File, Menu = new Grub2Menu() };
            var subMenu = ctx.Menu;
            if (ExecList(item.Body, ctx) == Grub2Flow.Replaced && _replacement is { } r)
            {
                _replacement = null;
                subMenu = r.Menu;
                subScope = r.Scope;
            }
            string? own = subScope.Get("default");
            var children = BuildLevel(subMenu, subScope, itemPath, depth + 1);
            result.Add(new Grub2TreeItem { Title = item.Title, Id = item.Id, Children = children, OwnDefault = own });
        }
        return result;
    }

    private int AddEntry(Grub2MenuItem item, Grub2Scope scope, string[] menuPath)
    {
        if (_entries.Count >= _options.MaxEntries)
            throw new MalformedDataException("GRUB menu", -1, $"more than {_options.MaxEntries} menu entries");
        var entryScope = scope.Clone();
        entryScope.Positional = item.Args;
        var loaded = new Grub2Loaded();
        var ctx = new Grub2Context { Scope = entryScope, File = item.File, Loaded = loaded };
        ExecList(item.Body, ctx);
        _entries.Add(new BootEntry
        {
            Index = _entries.Count,
            Title = item.Title,
            Id = item.Id,
            MenuPath = menuPath,
            Kind = loaded.Kind,
            Kernel = loaded.Kernel,
            Initrds = loaded.Initrds.ToArray(),
            Args = loaded.Args,
            Modules = loaded.Modules.ToArray(),
            Source = item.Source,
        });
        return _entries.Count - 1;
    }

    // ---- default selection (grub-core/normal/menu.c) ----

    /// <summary>Follows a default spec level by level; -1 when the first component matches nothing at the top.</summary>
    private int ResolvePath(List<Grub2TreeItem> items, string? spec, List<string> parts, int depth)
    {
        if (items.Count == 0) return -1;
        int idx = 0;
        string? tail = null;
        if (!string.IsNullOrEmpty(spec)) (idx, tail) = ResolveFirst(items, spec, _rhbootSelection);
        if (idx < 0 || idx >= items.Count)
        {
            if (depth == 0) return -1;
            parts.Add($"{Quote.Text(spec)} matches nothing in the submenu -> item 0");
            idx = 0;
            tail = null;
        }
        var it = items[idx];
        parts.Add($"item {idx} {Quote.Text(it.Title)}");
        if (it.Children is null) return it.FlatIndex;
        return ResolvePath(it.Children, it.OwnDefault ?? tail, parts, depth + 1);
    }

    /// <summary>menu.c get_entry_number: a number (grub_strtoul base 0) or a title/--id up to the first unescaped '>'.</summary>
    internal static (int Index, string? Tail) ResolveFirst(IReadOnlyList<Grub2TreeItem> items, string spec, bool idFirst)
    {
        int p = 0;
        while (p < spec.Length && spec[p] is ' ' or '\t') p++;
        long value = 0;
        bool overflow = false;
        int digits = 0;
        int radix = 10;
        if (p + 2 < spec.Length && spec[p] == '0' && spec[p + 1] is 'x' or 'X' && IsHex(spec[p + 2]))
        {
            radix = 16;
            p += 2;
        }
        else if (p < spec.Length && spec[p] == '0')
        {
            radix = 8;
        }
        while (p < spec.Length)
        {
            int d = spec[p] switch
            {
                >= '0' and <= '9' => spec[p] - '0',
                >= 'a' and <= 'f' => spec[p] - 'a' + 10,
                >= 'A' and <= 'F' => spec[p] - 'A' + 10,
                _ => 99,
            };
            if (d >= radix) break;
            value = value * radix + d;
            if (value > int.MaxValue) overflow = true;
            if (overflow) value = int.MaxValue;
            digits++;
            p++;
        }
        string? tail = null;
        for (int q = 0; q < spec.Length; q++)
        {
            if (spec[q] != '>') continue;
            if (q + 1 < spec.Length && spec[q + 1] == '>')
            {
                q++;
                continue;
            }
            if (q + 1 < spec.Length) tail = spec[(q + 1)..];
            break;
        }
        // get_entry_number: any leading number wins (grub_strtoul ignores what follows); the rest of the
        // path is what grub_menu_execute_entry hands the submenu as its default
        if (idFirst)
        {
            // rhboot/grub2 "Fix menu entry selection based on ID and title": id, then title, then number
            // (BLS ids start with the machine id, often a digit)
            for (int k = 0; k < items.Count; k++)
                if (MenuEntryEq(items[k].Id, spec) > 0) return (k, tail);
            for (int k = 0; k < items.Count; k++)
                if (MenuEntryEq(items[k].Title, spec) > 0) return (k, tail);
            return digits > 0 ? (overflow ? -1 : (int)value, tail) : (-1, tail);
        }
        if (digits > 0) return (overflow ? -1 : (int)value, tail);
        int found = -1;
        for (int k = 0; k < items.Count; k++)
        {
            if (MenuEntryEq(items[k].Title, spec) > 0 || MenuEntryEq(items[k].Id, spec) > 0)
            {
                found = k;
                break;
            }
        }
        return (found, tail);
    }

    /// <summary>menu.c menuentry_eq: id equals spec's first component, where "&gt;&gt;" in spec stands for a literal '&gt;'.</summary>
    internal static int MenuEntryEq(string? id, string spec)
    {
        if (id is null) return 0;
        int p1 = 0, p2 = 0;
        while (true)
        {
            char c1 = p1 < id.Length ? id[p1] : '\0';
            char c2 = p2 < spec.Length ? spec[p2] : '\0';
            char n2 = p2 + 1 < spec.Length ? spec[p2 + 1] : '\0';
            if (c2 == '>' && n2 != '>' && c1 == '\0') return p2;
            if (c2 == '>' && n2 != '>') return 0;
            if (c2 == '>') c2 = spec[++p2];
            if (c1 != c2) return 0;
            if (c1 == '\0') return p1;
            p1++;
            p2++;
        }
    }
}
