using System.Globalization;
using System.Text.RegularExpressions;
using DomBoot.Boot.Model;
using DomBoot.Formats.Errors;

namespace DomBoot.Boot.GrubLegacy;

/// <summary>
/// GRUB legacy (0.97) menu.lst / grub.conf, evaluated the way stage2 chooses an entry (GNU GRUB Legacy manual,
/// "Menu-specific commands" and "Command-line and menu entry commands").
/// <para>
/// Keywords are matched case-sensitively (stage2 uses strcmp; every real config is lower case); a keyword ends at a
/// blank or '=' so <c>default=0</c> works as in stage2's find_command. Legacy devices are converted to GRUB2 names:
/// partition numbers are 0-based in legacy and 1-based in GRUB2, so <c>(hd0,0)</c> becomes the volume named
/// <c>(hd0,msdos1)</c> / <c>(hd0,gpt1)</c> in <see cref="IGuestFiles.Volumes"/>, or "(hd0,msdos1)" when no volume has
/// that number; BSD sub-partition <c>(hd0,0,a)</c> becomes "(hd0,msdos1,bsd1)". <c>Args</c> is the text after the
/// file name (the kernel sees no file name); module <c>Args</c> likewise.
/// </para>
/// </summary>
internal static partial class GrubLegacyConfig
{
    public const string Format = "grub-legacy";

    internal static class Limits
    {
        public const int MaxEntries = 4096;
        public const long MaxDefaultFileBytes = 4096;
    }

    public static BootMenu Evaluate(string text, string configPath, IGuestFiles files)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(configPath);
        ArgumentNullException.ThrowIfNull(files);

        List<string> lines = ConfigLines.Split(text, configPath);
        var warnings = new List<string>();
        var entries = new List<BootEntry>();
        EntryBuilder? current = null;
        string? globalRoot = null;
        string? defaultValue = null;
        int defaultLine = 0;
        List<(string Value, int Line)> fallback = [];
        int? timeout = null;

        for (int i = 0; i < lines.Count; i++)
        {
            int lineNo = i + 1;
            string line = ConfigLines.TrimBlanks(lines[i]);
            if (line.Length == 0 || line[0] == '#') continue;
            (string keyword, string rest) = SplitCommand(line);
            switch (keyword)
            {
                case "title":
                    if (current is not null) entries.Add(current.Build(entries.Count, warnings));
                    if (entries.Count >= Limits.MaxEntries)
                        throw new ConfigSyntaxException(configPath, lineNo, 1, $"more than {Limits.MaxEntries} entries");
                    current = new EntryBuilder(TitleOf(line), $"{configPath}:{lineNo}", globalRoot);
                    break;
                case "default":
                    defaultValue = rest;
                    defaultLine = lineNo;
                    break;
                case "fallback":
                    fallback = [.. rest.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries).Select(v => (v, lineNo))];
                    break;
                case "timeout":
                    if (int.TryParse(FirstWord(rest), NumberStyles.None, CultureInfo.InvariantCulture, out int t)) timeout = t;
                    else warnings.Add($"{configPath}:{lineNo}: timeout {Quote.Text(rest)} is not a number; ignored");
                    break;
                case "root":
                case "rootnoverify":
                    {
                        string dev = ConvertDevice(FirstWord(rest), files, warnings, configPath, lineNo);
                        if (current is null) globalRoot = dev;
                        else current.Root = dev;
                        break;
                    }
                case "kernel":
                    if (current is null) { warnings.Add($"{configPath}:{lineNo}: kernel outside an entry; ignored"); break; }
                    {
                        (string path, string args) = SplitFileAndArgs(SkipOptions(rest));
                        if (path.Length == 0) { warnings.Add($"{configPath}:{lineNo}: kernel without a file; ignored"); break; }
                        current.Kernel = ToGuestPath(path, current.Root, files, warnings, configPath, lineNo);
                        current.Args = args;
                        current.Modules.Clear();
                        current.Initrds.Clear();
                    }
                    break;
                case "initrd":
                    if (current is null) { warnings.Add($"{configPath}:{lineNo}: initrd outside an entry; ignored"); break; }
                    {
                        (string path, _) = SplitFileAndArgs(rest);
                        if (path.Length == 0) break;
                        current.Initrds.Clear();   // stage2 keeps only the last initrd
                        current.Initrds.Add(ToGuestPath(path, current.Root, files, warnings, configPath, lineNo));
                    }
                    break;
                case "module":
                case "modulenounzip":
                    if (current is null) { warnings.Add($"{configPath}:{lineNo}: {keyword} outside an entry; ignored"); break; }
                    {
                        (string path, string args) = SplitFileAndArgs(rest);
                        if (path.Length == 0) break;
                        current.Modules.Add(new BootModule(ToGuestPath(path, current.Root, files, warnings, configPath, lineNo), args));
                    }
                    break;
                default:
                    // hiddenmenu, savedefault, lock, password, color, splashimage, serial, terminal, ...: they do not
                    // change which file boots.
                    break;
            }
        }
        if (current is not null) entries.Add(current.Build(entries.Count, warnings));

        (int defaultIndex, string reason) = ChooseDefault(defaultValue, defaultLine, entries.Count, configPath, files, warnings);
        var fallbackIndexes = new List<int>();
        foreach ((string value, int line) in fallback)
        {
            if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int f) && f < entries.Count) fallbackIndexes.Add(f);
            else warnings.Add($"{configPath}:{line}: fallback {Quote.Text(value)} names no entry; ignored");
        }

        return new BootMenu
        {
            ConfigFormat = Format,
            ConfigPath = configPath,
            Entries = entries,
            DefaultIndex = defaultIndex,
            DefaultReason = reason,
            FallbackIndexes = fallbackIndexes,
            TimeoutSeconds = timeout,
            Warnings = warnings,
        };
    }

    private static (int Index, string Reason) ChooseDefault(string? value, int line, int count, string configPath, IGuestFiles files, List<string> warnings)
    {
        if (count == 0) return (-1, "no title entries");
        if (value is null) return (0, "no default command: entry 0");
        string word = FirstWord(value);
        int n;
        string why;
        if (word == "saved")
        {
            string defaultFile = ConfigLines.Combine(ConfigLines.DirectoryOf(configPath), "default");
            byte[]? bytes = files.ReadFile(new GuestPath(null, defaultFile), Limits.MaxDefaultFileBytes);
            if (bytes is null) return (0, $"default saved: {defaultFile} absent -> entry 0");
            string first = ConfigLines.TrimBlanks(ConfigLines.Split(ConfigLines.Decode(bytes), defaultFile).FirstOrDefault() ?? "");
            if (!TryLeadingInt(first, out n))
            {
                warnings.Add($"{defaultFile}:1: saved default {Quote.Text(first)} is not a number");
                return (0, $"default saved: {defaultFile} holds no number -> entry 0");
            }
            why = $"default saved -> {n} ({defaultFile})";
        }
        else
        {
            if (!TryLeadingInt(word, out n))
            {
                warnings.Add($"{configPath}:{line}: default {Quote.Text(value)} is not a number");
                return (0, $"default {Quote.Text(value)} is not a number -> entry 0");
            }
            why = $"default {n}";
        }
        if (n >= count) return (0, $"{why} out of range ({count} entries) -> entry 0, as GRUB legacy does");
        return (n, why);
    }

    private static bool TryLeadingInt(string s, out int value)
    {
        int i = 0;
        while (i < s.Length && i < 9 && char.IsAsciiDigit(s[i])) i++;
        value = 0;
        return i > 0 && (i == s.Length || !char.IsAsciiDigit(s[i])) && int.TryParse(s.AsSpan(0, i), NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>stage2 find_command: the keyword ends at a blank or '='; then blanks and one '=' are skipped.</summary>
    private static (string Keyword, string Value) SplitCommand(string line)
    {
        int i = 0;
        while (i < line.Length && !ConfigLines.IsBlank(line[i]) && line[i] != '=') i++;
        string keyword = line[..i];
        while (i < line.Length && ConfigLines.IsBlank(line[i])) i++;
        if (i < line.Length && line[i] == '=') i++;
        return (keyword, ConfigLines.TrimBlanks(line[i..]));
    }

    /// <summary>The title is the rest of the line verbatim after "title" and its separator.</summary>
    private static string TitleOf(string line)
    {
        int i = "title".Length;
        while (i < line.Length && (ConfigLines.IsBlank(line[i]) || line[i] == '=')) i++;
        return line[i..].TrimEnd(' ', '\t', '\f', '\v');
    }

    private static string FirstWord(string s)
    {
        int i = 0;
        while (i < s.Length && !ConfigLines.IsBlank(s[i])) i++;
        return s[..i];
    }

    /// <summary>kernel --type=netbsd --no-mem-option FILE: options before the file name are skipped.</summary>
    private static string SkipOptions(string rest)
    {
        string s = rest;
        while (s.StartsWith("--", StringComparison.Ordinal))
        {
            string word = FirstWord(s);
            s = ConfigLines.TrimBlanks(s[word.Length..]);
        }
        return s;
    }

    private static (string Path, string Args) SplitFileAndArgs(string rest)
    {
        string path = FirstWord(rest);
        return (path, ConfigLines.TrimBlanks(rest[path.Length..]));
    }

    private static GuestPath ToGuestPath(string word, string? root, IGuestFiles files, List<string> warnings, string configPath, int line)
    {
        if (word.StartsWith('('))
        {
            int close = word.IndexOf(')', StringComparison.Ordinal);
            if (close > 0)
            {
                string dev = ConvertDevice(word[..(close + 1)], files, warnings, configPath, line);
                string p = word[(close + 1)..];
                return new GuestPath(dev, ConfigLines.Combine("/", p));
            }
        }
        return new GuestPath(root, ConfigLines.Combine("/", word));
    }

    [GeneratedRegex(@"^\((hd|fd)([0-9]{1,4})(?:,([0-9]{1,4}))?(?:,([a-h]))?\)$", RegexOptions.CultureInvariant, matchTimeoutMilliseconds: 1000)]
    private static partial Regex LegacyDevice();

    /// <summary>"(hd0,0)" -> the GRUB2 name of that volume ("(hd0,msdos1)" or "(hd0,gpt1)"); see the type summary.</summary>
    internal static string ConvertDevice(string legacy, IGuestFiles files, List<string> warnings, string configPath, int line)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(warnings);
        Match m = LegacyDevice().Match(legacy);
        if (!m.Success)
        {
            warnings.Add($"{configPath}:{line}: device {Quote.Text(legacy)} is not a GRUB legacy disk name; kept as is");
            return legacy;
        }
        string disk = m.Groups[1].Value + m.Groups[2].Value;
        if (!m.Groups[3].Success) return $"({disk})";
        int part = int.Parse(m.Groups[3].Value, NumberStyles.None, CultureInfo.InvariantCulture) + 1;
        string bsd = m.Groups[4].Success ? $",bsd{m.Groups[4].Value[0] - 'a' + 1}" : "";
        foreach (string scheme in new[] { "msdos", "gpt", "" })
        {
            string candidate = $"({disk},{scheme}{part}{bsd})";
            if (files.Volumes.Any(v => v.GrubDevice == candidate)) return candidate;
        }
        return $"({disk},msdos{part}{bsd})";
    }

    private sealed class EntryBuilder(string title, string source, string? root)
    {
        public string? Root { get; set; } = root;
        public GuestPath? Kernel { get; set; }
        public string Args { get; set; } = "";
        public List<GuestPath> Initrds { get; } = [];
        public List<BootModule> Modules { get; } = [];

        public BootEntry Build(int index, List<string> warnings)
        {
            bool multiboot = Modules.Count > 0;
            if (multiboot && Initrds.Count > 0)
                warnings.Add($"{source}: initrd in a multiboot entry is ignored (modules carry the dom0 kernel and initrd)");
            return new BootEntry
            {
                Index = index,
                Title = title,
                MenuPath = [title],
                Kind = multiboot ? BootEntryKind.Multiboot : BootEntryKind.Linux,
                Kernel = Kernel,
                Initrds = multiboot ? [] : [.. Initrds],
                Args = Args,
                Modules = [.. Modules],
                Source = source,
            };
        }
    }
}
