using System.Globalization;
using DomBoot.Boot.GrubLegacy;
using DomBoot.Boot.Model;
using DomBoot.Formats.Errors;

namespace DomBoot.Boot.Syslinux;

/// <summary>
/// syslinux / extlinux / isolinux configuration (syslinux.cfg(5) as documented in doc/syslinux.txt and doc/menu.txt),
/// evaluated for "which kernel boots by default".
/// <para>
/// Keywords are case-insensitive. Relative paths (KERNEL, INITRD, INCLUDE) resolve against the directory of the main
/// config file, which is syslinux's working directory. <c>initrd=</c> inside APPEND stays in <c>Args</c> (syslinux passes
/// it to the kernel too) and also becomes the initrd list (comma-separated); an INITRD keyword takes precedence over
/// it, as syslinux appends INITRD after APPEND and the last initrd= wins. <c>MENU LABEL</c> is the title with '^'
/// hotkey markers removed. <c>MENU DEFAULT</c> counts only with a menu (UI, or DEFAULT naming a .c32 module).
/// TIMEOUT is in 1/10 s and rounded up to seconds; TIMEOUT 0 (wait forever) gives no timeout.
/// </para>
/// </summary>
internal static class SyslinuxConfig
{
    public const string Format = "syslinux";

    internal static class Limits
    {
        public const int MaxIncludeDepth = 16;
        public const int MaxEntries = 4096;
        public const long MaxIncludeBytes = 1024 * 1024;
    }

    public static BootMenu Evaluate(string text, string configPath, IGuestFiles files)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(configPath);
        ArgumentNullException.ThrowIfNull(files);
        var state = new State(configPath, ConfigLines.DirectoryOf(configPath), files);
        state.Run(text, configPath, [configPath]);
        state.Finish();
        return state.BuildMenu();
    }

    private sealed class Label(string name, string source)
    {
        public string Name { get; } = name;
        public string Source { get; } = source;
        public string? MenuLabel { get; set; }
        public string? KernelKeyword { get; set; }
        public string? KernelWord { get; set; }
        public string? Append { get; set; }
        public string? Initrd { get; set; }
    }

    private sealed class State(string configPath, string baseDir, IGuestFiles files)
    {
        private readonly List<Label> _labels = [];
        private readonly List<string> _warnings = [];
        private Label? _current;
        private string? _globalAppend;
        private string? _default;
        private string? _defaultSource;
        private bool _ui;
        private Label? _menuDefault;
        private int? _timeoutTenths;

        public void Run(string text, string fileName, List<string> includeStack)
        {
            List<string> lines = ConfigLines.Split(text, fileName);
            bool inText = false;
            for (int i = 0; i < lines.Count; i++)
            {
                int lineNo = i + 1;
                string line = ConfigLines.TrimBlanks(lines[i]);
                (string kw, string rest) = ConfigLines.SplitKeyword(line);
                string keyword = kw.ToUpperInvariant();
                if (inText)
                {
                    if (keyword == "ENDTEXT") inText = false;
                    continue;
                }
                if (line.Length == 0 || line[0] == '#') continue;
                string where = $"{fileName}:{lineNo}";
                switch (keyword)
                {
                    case "LABEL":
                        if (_labels.Count >= Limits.MaxEntries)
                            throw new ConfigSyntaxException(fileName, lineNo, 1, $"more than {Limits.MaxEntries} labels");
                        _current = new Label(rest, where);
                        _labels.Add(_current);
                        break;
                    case "KERNEL":
                    case "LINUX":
                    case "BOOT":
                    case "BSS":
                    case "PXE":
                    case "FDIMAGE":
                    case "COMBOOT":
                    case "COM32":
                    case "CONFIG":
                    case "LOCALBOOT":
                        if (_current is null) { _warnings.Add($"{where}: {kw} outside a LABEL; ignored"); break; }
                        _current.KernelKeyword = keyword;
                        _current.KernelWord = rest;
                        break;
                    case "APPEND":
                        if (_current is null) _globalAppend = rest;
                        else _current.Append = rest;
                        break;
                    case "INITRD":
                        if (_current is null) { _warnings.Add($"{where}: INITRD outside a LABEL; ignored"); break; }
                        _current.Initrd = rest;
                        break;
                    case "DEFAULT":
                        _default = rest;
                        _defaultSource = where;
                        break;
                    case "UI":
                        _ui = true;
                        break;
                    case "TIMEOUT":
                        if (int.TryParse(rest, NumberStyles.None, CultureInfo.InvariantCulture, out int t)) _timeoutTenths = t;
                        else _warnings.Add($"{where}: TIMEOUT {Quote.Text(rest)} is not a number; ignored");
                        break;
                    case "INCLUDE":
                        Include(rest, where, fileName, lineNo, includeStack);
                        break;
                    case "TEXT":
                        inText = true;
                        break;
                    case "MENU":
                        Menu(rest, where, fileName, lineNo, includeStack);
                        break;
                    default:
                        // IPAPPEND, SYSAPPEND, PROMPT, SAY, DISPLAY, F1..F12, ONTIMEOUT, SERIAL, FONT, KBDMAP, ...
                        break;
                }
            }
        }

        private void Menu(string rest, string where, string fileName, int lineNo, List<string> includeStack)
        {
            (string sub, string arg) = ConfigLines.SplitKeyword(rest);
            switch (sub.ToUpperInvariant())
            {
                case "LABEL":
                    if (_current is not null) _current.MenuLabel = arg.Replace("^", "", StringComparison.Ordinal);
                    break;
                case "DEFAULT":
                    if (_current is not null) _menuDefault = _current;
                    break;
                case "BEGIN":
                case "END":
                    // a submenu's own MENU LABEL / MENU DEFAULT must not land on the LABEL before it
                    _current = null;
                    break;
                case "INCLUDE":
                    Include(ConfigLines.SplitKeyword(arg).Keyword, where, fileName, lineNo, includeStack);
                    break;
                default:
                    break;
            }
        }

        private void Include(string name, string where, string fileName, int lineNo, List<string> includeStack)
        {
            if (name.Length == 0) return;
            string path = ConfigLines.Combine(baseDir, name);
            if (includeStack.Contains(path))
                throw new ConfigSyntaxException(fileName, lineNo, 1, $"INCLUDE loop: {Quote.Text(path)} includes itself");
            if (includeStack.Count > Limits.MaxIncludeDepth)
                throw new ConfigSyntaxException(fileName, lineNo, 1, $"INCLUDE nested deeper than {Limits.MaxIncludeDepth}");
            byte[]? bytes = files.ReadFile(new GuestPath(null, path), Limits.MaxIncludeBytes);
            if (bytes is null)
            {
                _warnings.Add($"{where}: INCLUDE {Quote.Text(path)} not found; ignored");
                return;
            }
            includeStack.Add(path);
            Run(ConfigLines.Decode(bytes), path, includeStack);
            includeStack.RemoveAt(includeStack.Count - 1);
        }

        private readonly List<BootEntry> _entries = [];
        private int _defaultIndex = -1;
        private string _reason = "";

        public void Finish()
        {
            foreach (Label l in _labels) _entries.Add(ToEntry(l, _entries.Count));
            string? defaultWord = _default is null ? null : ConfigLines.SplitKeyword(_default).Keyword;
            bool menu = _ui || (defaultWord is not null && defaultWord.EndsWith(".c32", StringComparison.OrdinalIgnoreCase)
                && !_labels.Any(l => l.Name == _default));
            int byDefault = _default is null ? -1 : _labels.FindIndex(l => l.Name == _default);
            if (menu && _menuDefault is not null)
            {
                _defaultIndex = _labels.IndexOf(_menuDefault);
                _reason = $"MENU DEFAULT on LABEL {Quote.Text(_menuDefault.Name)}";
            }
            else if (byDefault >= 0)
            {
                _defaultIndex = byDefault;
                _reason = $"DEFAULT {Quote.Text(_default)} names LABEL {byDefault}";
            }
            else if (_default is not null && !menu)
            {
                // DEFAULT naming no LABEL is a command line: kernel word plus arguments, global APPEND first.
                (string kernel, string args) = ConfigLines.SplitKeyword(_default);
                string allArgs = string.Join(' ', new[] { _globalAppend, args }.Where(s => !string.IsNullOrEmpty(s) && s != "-"));
                _entries.Add(new BootEntry
                {
                    Index = _entries.Count,
                    Title = _default,
                    MenuPath = [_default],
                    Kernel = new GuestPath(null, ConfigLines.Combine(baseDir, kernel)),
                    Initrds = InitrdsFromArgs(allArgs),
                    Args = allArgs,
                    Source = _defaultSource!,
                });
                _defaultIndex = _entries.Count - 1;
                _reason = $"DEFAULT {Quote.Text(_default)} names no LABEL: booted as a command line";
            }
            else if (_entries.Count > 0)
            {
                _defaultIndex = 0;
                _reason = _default is null ? "no DEFAULT: first LABEL" : $"menu without MENU DEFAULT: first LABEL";
            }
            else
            {
                _reason = "no LABEL entries";
            }
        }

        private BootEntry ToEntry(Label l, int index)
        {
            string title = l.MenuLabel ?? l.Name;
            string? word = l.KernelWord;
            string keyword = l.KernelKeyword ?? "";
            string append = l.Append ?? _globalAppend ?? "";
            if (append == "-") append = "";
            var entry = new BootEntry { Index = index, Title = title, Id = l.Name, MenuPath = [title], Source = l.Source };
            if (string.IsNullOrEmpty(word) || keyword is "LOCALBOOT" or "CONFIG")
                return entry;
            string kernelFile = ConfigLines.SplitKeyword(word).Keyword;
            bool isModule = kernelFile.EndsWith(".c32", StringComparison.OrdinalIgnoreCase) || keyword == "COM32";
            if (isModule && Path.GetFileName(kernelFile).Equals("mboot.c32", StringComparison.OrdinalIgnoreCase))
                return Multiboot(entry, append);
            if (isModule || keyword is "BOOT" or "BSS" or "PXE" or "FDIMAGE" or "COMBOOT")
            {
                _warnings.Add($"{l.Source}: LABEL {Quote.Text(l.Name)} runs {Quote.Text(kernelFile)}, not a Linux kernel");
                return entry;
            }
            IReadOnlyList<GuestPath> initrds = l.Initrd is not null
                ? SplitInitrds(l.Initrd)
                : InitrdsFromArgs(append);
            return entry with { Kernel = new GuestPath(null, ConfigLines.Combine(baseDir, kernelFile)), Initrds = initrds, Args = append };
        }

        /// <summary>mboot.c32: APPEND xen.gz xenargs --- vmlinuz args --- initrd [--- more modules].</summary>
        private BootEntry Multiboot(BootEntry entry, string append)
        {
            var parts = new List<List<string>> { new() };
            foreach (string w in append.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
            {
                if (w == "---") parts.Add([]);
                else parts[^1].Add(w);
            }
            if (parts[0].Count == 0)
            {
                _warnings.Add($"{entry.Source}: mboot.c32 without a hypervisor file in APPEND");
                return entry;
            }
            var modules = parts.Skip(1).Where(p => p.Count > 0)
                .Select(p => new BootModule(new GuestPath(null, ConfigLines.Combine(baseDir, p[0])), string.Join(' ', p.Skip(1))))
                .ToList();
            return entry with
            {
                Kind = BootEntryKind.Multiboot,
                Kernel = new GuestPath(null, ConfigLines.Combine(baseDir, parts[0][0])),
                Args = string.Join(' ', parts[0].Skip(1)),
                Modules = modules,
            };
        }

        private List<GuestPath> SplitInitrds(string list) =>
            [.. list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(p => new GuestPath(null, ConfigLines.Combine(baseDir, p)))];

        private List<GuestPath> InitrdsFromArgs(string args)
        {
            string? last = null;
            foreach (string w in args.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
                if (w.StartsWith("initrd=", StringComparison.Ordinal)) last = w["initrd=".Length..];
            return last is null ? [] : SplitInitrds(last);
        }

        public BootMenu BuildMenu() => new()
        {
            ConfigFormat = Format,
            ConfigPath = configPath,
            Entries = _entries,
            DefaultIndex = _defaultIndex,
            DefaultReason = _reason,
            TimeoutSeconds = _timeoutTenths is null or 0 ? null : (_timeoutTenths.Value + 9) / 10,
            Warnings = _warnings,
        };
    }
}
