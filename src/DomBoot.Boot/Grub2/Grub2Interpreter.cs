using System.Globalization;
using System.Text;
using DomBoot.Boot.Model;
using DomBoot.Formats.Errors;

namespace DomBoot.Boot.Grub2;

/// <summary>
/// Evaluates a grub.cfg the way GRUB 2's normal mode builds its menu (GNU GRUB manual, "Shell-like scripting",
/// grub-core/script/*.c, grub-core/normal/menu.c), bounded by <see cref="Grub2Options"/>. Nothing runs on the
/// host: every command is interpreted here and every file is asked of <see cref="IGuestFiles"/>.
/// </summary>
public static class Grub2Interpreter
{
    public static BootMenu Evaluate(string configText, string configPath, IGuestFiles files, Grub2Options? options = null)
    {
        ArgumentNullException.ThrowIfNull(configText);
        ArgumentNullException.ThrowIfNull(configPath);
        ArgumentNullException.ThrowIfNull(files);
        var opts = options ?? new Grub2Options();
        if (configText.Length > opts.MaxConfigBytes || Encoding.UTF8.GetByteCount(configText) > opts.MaxConfigBytes)
            throw new MalformedDataException(configPath, -1, $"config is larger than the limit of {opts.MaxConfigBytes} bytes");
        return new Grub2Evaluator(opts, files).Run(configText, configPath);
    }
}

internal enum Grub2Flow { Normal, Return, Exit, Replaced }

internal sealed class Grub2MenuItem
{
    public required bool IsSubmenu { get; init; }
    public required string Title { get; init; }
    public string? Id { get; init; }
    public required IReadOnlyList<Grub2Node> Body { get; init; }
    public IReadOnlyList<string> Args { get; init; } = [];
    public required string Source { get; init; }
    public required string File { get; init; }
}

internal sealed class Grub2Menu
{
    public List<Grub2MenuItem> Items { get; } = [];
}

/// <summary>What an entry body loaded: GRUB's loader state at the time `boot` would run.</summary>
internal sealed class Grub2Loaded
{
    public BootEntryKind Kind { get; set; } = BootEntryKind.Linux;
    public GuestPath? Kernel { get; set; }
    public string Args { get; set; } = "";
    public List<GuestPath> Initrds { get; } = [];
    public List<BootModule> Modules { get; } = [];
}

internal sealed class Grub2Context
{
    public required Grub2Scope Scope { get; set; }
    public required string File { get; init; }
    public Grub2Menu? Menu { get; set; }
    public Grub2Loaded? Loaded { get; init; }
    public int SourceDepth { get; init; }
}

/// <summary>A built menu level: leaves point into the flat entry list, submenus hold their children.</summary>
internal sealed class Grub2TreeItem
{
    public required string Title { get; init; }
    public string? Id { get; init; }
    public int FlatIndex { get; init; } = -1;
    public List<Grub2TreeItem>? Children { get; init; }
    public string? OwnDefault { get; init; }
}

internal sealed partial class Grub2Evaluator
{
    private const int MaxWarnings = 100;
    private const int MaxExecDepth = 400;
    private int _execDepth;
    private readonly Grub2Options _options;
    private readonly IGuestFiles _files;
    private readonly Dictionary<string, IReadOnlyList<Grub2Node>> _functions = new(StringComparer.Ordinal);
    private readonly List<string> _warnings = [];
    private readonly List<BootEntry> _entries = [];
    private long _steps;
    private int _callDepth;
    private bool _status = true;
    private (Grub2Menu Menu, Grub2Scope Scope, string File)? _replacement;

    private static readonly HashSet<string> Ignored = new(StringComparer.Ordinal)
    {
        "insmod", "rmmod", "echo", "terminal_output", "terminal_input", "terminal", "loadfont", "gfxmode",
        "background_image", "background_color", "play", "clear", "sleep", "boot", "save_env", "set_background_color",
        "serial", "cryptomount", "lsmod", "ls", "videoinfo", "gfxpayload", "reboot", "halt", "tr", "loopback",
        "fwsetup", "hashsum", "verify_detached", "trust", "distrust", "password", "password_pbkdf2", "keymap", "smbios",
    };

    public Grub2Evaluator(Grub2Options options, IGuestFiles files)
    {
        _options = options;
        _files = files;
    }

    public BootMenu Run(string configText, string configPath)
    {
        var scope = new Grub2Scope(_options.MaxVariableBytes);
        string? rootDevice = StripParens(_files.DefaultDevice);
        if (!string.IsNullOrEmpty(rootDevice)) InitVar(scope, "root", rootDevice);
        string dir = DirectoryOf(configPath);
        string devPrefix = string.IsNullOrEmpty(rootDevice) ? "" : "(" + rootDevice + ")";
        InitVar(scope, "prefix", devPrefix + dir);
        InitVar(scope, "grub_platform", _options.Platform);
        InitVar(scope, "grub_cpu", _options.Cpu);
        foreach (var f in new[] { "menuentry_id", "all_video_module", "default_font_path", "platform_search_hint", "timeout_style", "200_final", "nativedisk_cmd", "chainloader_bpb", "ntldr" })
            InitVar(scope, "feature_" + f, "y");
        InitVar(scope, "config_directory", devPrefix + dir);
        InitVar(scope, "config_file", devPrefix + configPath);
        var (menu, finalScope, finalFile) = RunMenuFile(configText, configPath, scope, 0);

        var tree = BuildLevel(menu, finalScope, [], 0);
        int defaultIndex = -1;
        string reason;
        var fallbacks = new List<int>();
        if (_entries.Count == 0)
        {
            reason = "the menu has no entries";
        }
        else
        {
            string? spec = finalScope.Get("default");
            var parts = new List<string>();
            defaultIndex = ResolvePath(tree, spec, parts, 0);
            string origin = DescribeOrigin(finalScope, "default");
            if (string.IsNullOrEmpty(spec))
            {
                reason = "default unset -> " + string.Join(" > ", parts);
                if (defaultIndex < 0) defaultIndex = 0;
            }
            else if (defaultIndex < 0)
            {
                defaultIndex = 0;
                reason = $"default={Quote.Text(spec)}{origin} matches no entry -> entry 0 (as GRUB)";
            }
            else
            {
                reason = $"default={Quote.Text(spec)}{origin} -> {string.Join(" > ", parts)}"
                    + (_rhbootSelection ? " (rhboot GRUB: id and title before number)" : "");
            }
            string? fallback = finalScope.Get("fallback");
            if (!string.IsNullOrWhiteSpace(fallback))
            {
                foreach (var f in fallback.Split([' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries))
                {
                    int fi = ResolvePath(tree, f, [], 0);
                    if (fi >= 0 && !fallbacks.Contains(fi)) fallbacks.Add(fi);
                    else if (fi < 0) Warn($"fallback {Quote.Text(f)} matches no entry");
                }
            }
        }
        int? timeout = null;
        string? t = finalScope.Get("timeout");
        if (t is not null && int.TryParse(t.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int ts)) timeout = ts;
        return new BootMenu
        {
            ConfigFormat = "grub2",
            ConfigPath = finalFile,
            Entries = _entries.ToArray(),
            DefaultIndex = defaultIndex,
            DefaultReason = reason,
            FallbackIndexes = fallbacks,
            TimeoutSeconds = timeout,
            Warnings = _warnings.ToArray(),
        };
    }

    private static void InitVar(Grub2Scope scope, string name, string value)
    {
        scope.Set(name, value, null);
        scope.Export(name);
    }

    private static string DescribeOrigin(Grub2Scope scope, string name)
    {
        string? o = scope.Origin(name);
        return o is null ? "" : " (" + o + ")";
    }

    internal static string? StripParens(string? device)
    {
        if (device is null) return null;
        return device.Length >= 2 && device[0] == '(' && device[^1] == ')' ? device[1..^1] : device;
    }

    internal static string DirectoryOf(string path)
    {
        int slash = path.LastIndexOf('/');
        return slash <= 0 ? (slash == 0 ? "" : "") : path[..slash];
    }

    private void Warn(string message)
    {
        if (_warnings.Count < MaxWarnings) _warnings.Add(message);
    }

    private void Step()
    {
        if (++_steps > _options.MaxSteps)
            throw new MalformedDataException("GRUB script", -1, $"evaluation exceeded the limit of {_options.MaxSteps} steps");
    }

    /// <summary>Runs a file as a menu context; a configfile inside replaces the menu (GRUB shows the new file's menu).</summary>
    private (Grub2Menu Menu, Grub2Scope Scope, string File) RunMenuFile(string text, string file, Grub2Scope scope, int depth)
    {
        var script = ParseScript(text, file);
        var ctx = new Grub2Context { Scope = scope, File = file, Menu = new Grub2Menu(), SourceDepth = depth };
        var flow = ExecList(script.Commands, ctx);
        if (flow == Grub2Flow.Replaced && _replacement is { } r)
        {
            _replacement = null;
            return r;
        }
        return (ctx.Menu!, ctx.Scope, file);
    }

    private Grub2Script ParseScript(string text, string file)
    {
        var script = Grub2Parser.Parse(text, file, out bool sawNul);
        if (sawNul) Warn($"{file}: NUL byte ends its line (as GRUB reads C strings)");
        return script;
    }

    private Grub2Flow ExecList(IReadOnlyList<Grub2Node> list, Grub2Context ctx)
    {
        // function calls, sources and nested blocks all recurse here: bound the host stack
        if (++_execDepth > MaxExecDepth)
            throw new MalformedDataException(ctx.File, -1, $"script nesting (blocks, function calls, sourced files) deeper than {MaxExecDepth}");
        try
        {
            foreach (var node in list)
            {
                var flow = Exec(node, ctx);
                if (flow != Grub2Flow.Normal) return flow;
            }
            return Grub2Flow.Normal;
        }
        finally
        {
            _execDepth--;
        }
    }

    private Grub2Flow Exec(Grub2Node node, Grub2Context ctx)
    {
        Step();
        switch (node)
        {
            case Grub2Simple s:
                {
                    var fields = Expand(s.Words, ctx.Scope);
                    if (fields.Count == 0) return Grub2Flow.Normal;
                    return RunCommand(fields, s, ctx);
                }
            case Grub2BlockCommand b:
                {
                    var fields = Expand(b.Words, ctx.Scope);
                    string name = fields.Count > 0 ? fields[0] : "";
                    if (name is "menuentry" or "submenu") AddMenuItem(fields, b, ctx);
                    else Warn($"{ctx.File}:{b.Line}: block after {Quote.Text(name)} ignored");
                    return Grub2Flow.Normal;
                }
            case Grub2If i:
                foreach (var (cond, body) in i.Branches)
                {
                    var f = ExecList(cond, ctx);
                    if (f != Grub2Flow.Normal) return f;
                    if (_status) return ExecList(body, ctx);
                }
                if (i.Else is not null) return ExecList(i.Else, ctx);
                _status = true;
                return Grub2Flow.Normal;
            case Grub2Function fn:
                _functions[fn.Name] = fn.Body;
                _status = true;
                return Grub2Flow.Normal;
            case Grub2Group g:
                return ExecList(g.Body, ctx);
            case Grub2For loop:
                foreach (var item in Expand(loop.Items, ctx.Scope))
                {
                    ctx.Scope.Set(loop.Name, item, null);
                    var f = ExecList(loop.Body, ctx);
                    if (f != Grub2Flow.Normal) return f;
                }
                return Grub2Flow.Normal;
            case Grub2While w:
                while (true)
                {
                    Step();
                    var f = ExecList(w.Condition, ctx);
                    if (f != Grub2Flow.Normal) return f;
                    if (_status == w.Until) return Grub2Flow.Normal;
                    f = ExecList(w.Body, ctx);
                    if (f != Grub2Flow.Normal) return f;
                }
            default:
                return Grub2Flow.Normal;
        }
    }

    private static string Loc(Grub2Context ctx, Grub2Node node) => $"{ctx.File}:{node.Line}";

    private Grub2Flow RunCommand(List<string> fields, Grub2Simple node, Grub2Context ctx)
    {
        string name = fields[0];
        var args = fields.GetRange(1, fields.Count - 1);
        switch (name)
        {
            case "set":
                foreach (var a in args)
                {
                    int eq = a.IndexOf('=', StringComparison.Ordinal);
                    if (eq <= 0) continue;
                    ctx.Scope.Set(a[..eq], a[(eq + 1)..], SetOrigin(node, a[..eq], ctx));
                }
                _status = true;
                return Grub2Flow.Normal;
            case "unset":
                foreach (var a in args) ctx.Scope.Unset(a);
                _status = true;
                return Grub2Flow.Normal;
            case "export":
                foreach (var a in args) ctx.Scope.Export(a);
                _status = true;
                return Grub2Flow.Normal;
            case "true":
                _status = true;
                return Grub2Flow.Normal;
            case "false":
                _status = false;
                return Grub2Flow.Normal;
            case "[":
                _status = args.Count > 0 && args[^1] == "]" && Test(args.GetRange(0, args.Count - 1), ctx);
                return Grub2Flow.Normal;
            case "test":
                _status = Test(args, ctx);
                return Grub2Flow.Normal;
            case "load_env":
                LoadEnv(args, ctx);
                return Grub2Flow.Normal;
            case "search":
            case "search.fs_uuid":
            case "search.fs_label":
            case "search.file":
                Search(name, args, ctx);
                return Grub2Flow.Normal;
            case "source":
            case ".":
                return Source(args, ctx, node);
            case "configfile":
                return Configfile(args, ctx, node);
            case "blscfg":
                Blscfg(ctx, node);
                return Grub2Flow.Normal;
            case "linux":
            case "linux16":
            case "linuxefi":
                LoadLinux(args, ctx, node);
                return Grub2Flow.Normal;
            case "initrd":
            case "initrd16":
            case "initrdefi":
                LoadInitrd(args, ctx, node);
                return Grub2Flow.Normal;
            case "multiboot":
            case "multiboot2":
                LoadMultiboot(args, ctx, node);
                return Grub2Flow.Normal;
            case "module":
            case "module2":
                LoadModule(args, ctx, node);
                return Grub2Flow.Normal;
            case "return":
                _status = args.Count == 0 || args[0] == "0";
                return Grub2Flow.Return;
            case "exit":
                return Grub2Flow.Exit;
            case "menuentry":
            case "submenu":
                Warn($"{Loc(ctx, node)}: {name} without a {{ }} block");
                _status = false;
                return Grub2Flow.Normal;
            default:
                break;
        }
        if (Ignored.Contains(name))
        {
            _status = true;
            return Grub2Flow.Normal;
        }
        if (_functions.TryGetValue(name, out var body)) return CallFunction(body, args, ctx);
        int assign = name.IndexOf('=', StringComparison.Ordinal);
        if (assign > 0)
        {
            ctx.Scope.Set(name[..assign], name[(assign + 1)..], SetOrigin(node, name[..assign], ctx));
            _status = true;
            return Grub2Flow.Normal;
        }
        Warn($"{Loc(ctx, node)}: command {Quote.Text(name)} not interpreted");
        _status = false;
        return Grub2Flow.Normal;
    }

    /// <summary>"set at grub.cfg:12", or "from $saved_entry (grubenv ...)" when the value is a single variable reference.</summary>
    private static string SetOrigin(Grub2Simple node, string name, Grub2Context ctx)
    {
        string at = $"set at {Loc(ctx, node)}";
        foreach (var w in node.Words.Skip(node.Words.Count > 0 && node.Words[0].BareText == "set" ? 1 : 0))
        {
            if (w.Parts.Count < 2 || w.Parts[0].Kind != Grub2PartKind.Bare || w.Parts[0].Text != name + "=") continue;
            var refs = w.Parts.Skip(1).ToList();
            if (refs.Count == 1 && refs[0].Kind is Grub2PartKind.Var or Grub2PartKind.QuotedVar)
            {
                string src = refs[0].Text;
                string? inner = ctx.Scope.Origin(src);
                return $"{at} from ${src}" + (inner is null ? "" : $" ({inner})");
            }
        }
        return at;
    }

    private Grub2Flow CallFunction(IReadOnlyList<Grub2Node> body, List<string> args, Grub2Context ctx)
    {
        if (_callDepth >= _options.MaxFunctionDepth)
            throw new MalformedDataException("GRUB script", -1, $"function call depth {_callDepth + 1} exceeds the limit of {_options.MaxFunctionDepth}");
        var saved = ctx.Scope.Positional;
        ctx.Scope.Positional = args;
        _callDepth++;
        try
        {
            var flow = ExecList(body, ctx);
            return flow == Grub2Flow.Return ? Grub2Flow.Normal : flow;
        }
        finally
        {
            _callDepth--;
            ctx.Scope.Positional = saved;
        }
    }

    // ---- expansion ----

    private string GetVar(string name, Grub2Scope scope)
    {
        switch (name)
        {
            case "?": return _status ? "0" : "1";
            case "#": return scope.Positional.Count.ToString(CultureInfo.InvariantCulture);
            case "@":
            case "*": return string.Join(' ', scope.Positional);
            default:
                break;
        }
        if (name[0] is >= '0' and <= '9')
        {
            if (!int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n == 0 || n > scope.Positional.Count) return "";
            return scope.Positional[n - 1];
        }
        return scope.Get(name) ?? "";
    }

    private static bool IsSplit(char c) => c is ' ' or '\t' or '\n';

    /// <summary>GRUB argument expansion: unquoted variables split at blanks, quoted text never does.</summary>
    internal List<string> Expand(IReadOnlyList<Grub2Word> words, Grub2Scope scope)
    {
        var fields = new List<string>();
        var cur = new StringBuilder();
        bool have = false;
        long total = 0;
        void Flush()
        {
            if (!have) return;
            total += cur.Length;
            if (cur.Length > _options.MaxVariableBytes || total > 4L * _options.MaxVariableBytes)
                throw new MalformedDataException("GRUB script", -1, $"expanded arguments exceed the limit of {_options.MaxVariableBytes} characters");
            fields.Add(cur.ToString());
            cur.Clear();
            have = false;
        }
        foreach (var word in words)
        {
            foreach (var part in word.Parts)
            {
                switch (part.Kind)
                {
                    case Grub2PartKind.Bare:
                    case Grub2PartKind.Quoted:
                        cur.Append(part.Text);
                        have = true;
                        break;
                    case Grub2PartKind.QuotedVar:
                        cur.Append(GetVar(part.Text, scope));
                        have = true;
                        break;
                    default:
                        {
                            string v = GetVar(part.Text, scope);
                            int i = 0;
                            while (i < v.Length)
                            {
                                if (IsSplit(v[i]))
                                {
                                    Flush();
                                    while (i < v.Length && IsSplit(v[i])) i++;
                                    continue;
                                }
                                int start = i;
                                while (i < v.Length && !IsSplit(v[i])) i++;
                                cur.Append(v, start, i - start);
                                have = true;
                                if (cur.Length > _options.MaxVariableBytes) Flush();
                            }
                            break;
                        }
                }
                if (cur.Length > _options.MaxVariableBytes) Flush();
            }
            Flush();
        }
        return fields;
    }

    // ---- paths ----

    internal static GuestPath ToPath(string text, Grub2Scope scope)
    {
        if (text.StartsWith('('))
        {
            int close = text.IndexOf(')', StringComparison.Ordinal);
            if (close > 0) return new GuestPath(text[..(close + 1)], text[(close + 1)..]);
        }
        string? root = scope.Get("root");
        return new GuestPath(string.IsNullOrEmpty(root) ? null : "(" + root + ")", text);
    }

    // ---- test / [ ----

    private bool Test(List<string> args, Grub2Context ctx)
    {
        int pos = 0;
        if (args.Count == 0) return false;
        bool result = TestOr(args, ref pos, ctx);
        return result;
    }

    private bool TestOr(List<string> a, ref int pos, Grub2Context ctx)
    {
        bool r = TestAnd(a, ref pos, ctx);
        while (pos < a.Count && a[pos] == "-o")
        {
            pos++;
            bool rhs = TestAnd(a, ref pos, ctx);
            r = r || rhs;
        }
        return r;
    }

    private bool TestAnd(List<string> a, ref int pos, Grub2Context ctx)
    {
        bool r = TestUnary(a, ref pos, ctx);
        while (pos < a.Count && a[pos] == "-a")
        {
            pos++;
            bool rhs = TestUnary(a, ref pos, ctx);
            r = r && rhs;
        }
        return r;
    }

    private static readonly HashSet<string> BinaryOps = new(StringComparer.Ordinal)
    {
        "=", "==", "!=", "<", ">", "<=", ">=", "-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-pgt", "-plt", "-nt", "-ot",
    };

    private int _testDepth;

    private bool TestUnary(List<string> a, ref int pos, Grub2Context ctx)
    {
        if (++_testDepth > MaxTestDepth)
            throw new MalformedDataException(ctx.File, -1, $"test expression nested deeper than {MaxTestDepth}");
        try
        {
            return TestUnaryCore(a, ref pos, ctx);
        }
        finally
        {
            _testDepth--;
        }
    }

    private const int MaxTestDepth = 100;

    private bool TestUnaryCore(List<string> a, ref int pos, Grub2Context ctx)
    {
        Step();
        if (pos >= a.Count) return false;
        string t = a[pos];
        if (t == "!" && pos + 1 < a.Count)
        {
            pos++;
            return !TestUnary(a, ref pos, ctx);
        }
        if (t == "(")
        {
            pos++;
            bool r = TestOr(a, ref pos, ctx);
            if (pos < a.Count && a[pos] == ")") pos++;
            return r;
        }
        if (pos + 2 < a.Count && BinaryOps.Contains(a[pos + 1]))
        {
            string l = a[pos], op = a[pos + 1], r = a[pos + 2];
            pos += 3;
            return Binary(l, op, r);
        }
        if (t is "-z" or "-n" or "-e" or "-f" or "-d" or "-s" && pos + 1 < a.Count)
        {
            string v = a[pos + 1];
            pos += 2;
            return t switch
            {
                "-z" => v.Length == 0,
                "-n" => v.Length > 0,
                "-e" => _files.FileExists(ToPath(v, ctx.Scope)) || _files.DirectoryExists(ToPath(v, ctx.Scope)),
                "-f" => _files.FileExists(ToPath(v, ctx.Scope)),
                "-d" => _files.DirectoryExists(ToPath(v, ctx.Scope)),
                _ => _files.FileSize(ToPath(v, ctx.Scope)) is > 0,
            };
        }
        pos++;
        return t.Length > 0;
    }

    private static bool Binary(string l, string op, string r)
    {
        switch (op)
        {
            case "=":
            case "==": return l == r;
            case "!=": return l != r;
            case "<": return string.CompareOrdinal(l, r) < 0;
            case ">": return string.CompareOrdinal(l, r) > 0;
            case "<=": return string.CompareOrdinal(l, r) <= 0;
            case ">=": return string.CompareOrdinal(l, r) >= 0;
            default:
                break;
        }
        long.TryParse(l, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long x);
        long.TryParse(r, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long y);
        return op switch
        {
            "-eq" => x == y,
            "-ne" => x != y,
            "-lt" or "-plt" => x < y,
            "-le" => x <= y,
            "-gt" or "-pgt" => x > y,
            "-ge" => x >= y,
            _ => false,
        };
    }
}
