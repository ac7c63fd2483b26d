using System.Globalization;
using System.Text;
using DomBoot.Boot.GrubLegacy;
using DomBoot.Boot.Model;
using DomBoot.Formats.Errors;

namespace DomBoot.Boot.Bls;

/// <summary>
/// A Boot Loader Specification menu: entries sorted as the spec's "Sorting" section says (systemd-boot's order),
/// default chosen by loader.conf's <c>default</c> glob (loader.conf(5)), else by grubenv's <c>saved_entry</c> naming an
/// entry id (Fedora's GRUB blscfg), else the first entry. <c>$var</c>/<c>${var}</c> in <c>options</c> expand from the
/// grubenv variables (unset = empty, as GRUB expands them) and the result is re-joined with single spaces, as GRUB's
/// word splitting does.
/// </summary>
internal static class BlsMenu
{
    public const string Format = "bls";

    internal static class Limits
    {
        public const int MaxEntries = 4096;
        public const long MaxEntryBytes = 1024 * 1024;   // blscfg skips larger snippets
        public const long MaxLoaderConfBytes = 64 * 1024;
    }

    public static BootMenu Build(IReadOnlyList<BlsEntry> entries, string? loaderConfText, IReadOnlyDictionary<string, string>? grubEnv,
        string configPath = "/loader/entries", IReadOnlyList<string>? warningsSoFar = null)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (entries.Count > Limits.MaxEntries)
            throw new MalformedDataException(configPath, -1, $"more than {Limits.MaxEntries} BLS entries");
        var warnings = new List<string>(warningsSoFar ?? []);
        grubEnv ??= new Dictionary<string, string>();

        string? defaultPattern = null;
        int? timeout = null;
        if (loaderConfText is not null)
        {
            string confName = ConfigLines.Combine(ConfigLines.DirectoryOf(configPath), "loader.conf");
            foreach (string raw in ConfigLines.Split(loaderConfText, confName))
            {
                string line = ConfigLines.TrimBlanks(raw);
                if (line.Length == 0 || line[0] == '#') continue;
                (string key, string value) = ConfigLines.SplitKeyword(line);
                if (key == "default") defaultPattern = value;
                else if (key == "timeout")
                {
                    if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int t)) timeout = t;
                    else if (value is "menu-force") timeout = null;
                    else if (value is "menu-hidden" or "menu-disabled") timeout = 0;
                    else warnings.Add($"{confName}: timeout {Quote.Text(value)} not understood; ignored");
                }
            }
        }

        List<BlsEntry> sorted = [.. entries];
        sorted.Sort(CompareEntries);   // List.Sort is unstable, but CompareEntries ends at distinct file ids
        var bootEntries = new List<BootEntry>(sorted.Count);
        foreach (BlsEntry e in sorted)
        {
            if (e.Linux is null)
                warnings.Add($"{e.FileName}: no linux key{(e.Efi is null ? "" : " (efi entries are not Linux kernels)")}");
            string title = e.Title ?? e.Id;
            bootEntries.Add(new BootEntry
            {
                Index = bootEntries.Count,
                Title = title,
                Id = e.Id,
                MenuPath = [title],
                Kernel = e.Linux is null ? null : new GuestPath(null, ConfigLines.Combine("/", e.Linux)),
                Initrds = [.. e.Initrds.Select(p => new GuestPath(null, ConfigLines.Combine("/", p)))],
                Args = e.Options is null ? "" : Expand(e.Options, grubEnv, e.FileName, warnings),
                Source = $"{e.FileName}:{e.SourceLine}",
            });
        }

        int defaultIndex = -1;
        string reason;
        if (bootEntries.Count == 0) reason = "no BLS entries";
        else if (defaultPattern is not null && defaultPattern != "@saved"
            && (defaultIndex = sorted.FindIndex(e => Glob.Matches(defaultPattern, e.Id) || Glob.Matches(defaultPattern, e.Id + ".conf"))) >= 0)
        {
            reason = $"loader.conf default {Quote.Text(defaultPattern)} -> {Quote.Text(sorted[defaultIndex].Id)}";
        }
        else if (grubEnv.TryGetValue("saved_entry", out string? saved) && (defaultIndex = sorted.FindIndex(e => e.Id == saved)) >= 0)
        {
            reason = $"grubenv saved_entry={Quote.Text(saved)}";
        }
        else
        {
            defaultIndex = 0;
            reason = defaultPattern is null ? "first entry in BLS sort order" : $"loader.conf default {Quote.Text(defaultPattern)} matches no entry -> first entry";
        }

        return new BootMenu
        {
            ConfigFormat = Format,
            ConfigPath = configPath,
            Entries = bootEntries,
            DefaultIndex = defaultIndex,
            DefaultReason = reason,
            TimeoutSeconds = timeout,
            Warnings = warnings,
        };
    }

    /// <summary>Reads <c>loaderDir/entries/*.conf</c> and <c>loaderDir/loader.conf</c> from the guest and builds the menu.</summary>
    public static BootMenu FromDirectory(IGuestFiles files, GuestPath loaderDir, IReadOnlyDictionary<string, string>? grubEnv = null)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(loaderDir);
        string entriesDir = ConfigLines.Combine(loaderDir.Path, "entries");
        var names = files.ListDirectory(new GuestPath(loaderDir.Device, entriesDir))
            .Where(n => n.EndsWith(".conf", StringComparison.Ordinal) && n.Length > ".conf".Length && !n.Contains('/', StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToList();
        if (names.Count > Limits.MaxEntries)
            throw new MalformedDataException(entriesDir, -1, $"more than {Limits.MaxEntries} BLS entries");
        var warnings = new List<string>();
        var entries = new List<BlsEntry>();
        foreach (string name in names)
        {
            string path = entriesDir + "/" + name;
            var gp = new GuestPath(loaderDir.Device, path);
            long? size = files.FileSize(gp);
            if (size is null) continue;
            if (size > Limits.MaxEntryBytes)
            {
                warnings.Add($"{path}: larger than {Limits.MaxEntryBytes} bytes; skipped as GRUB's blscfg does");
                continue;
            }
            byte[]? bytes = files.ReadFile(gp, Limits.MaxEntryBytes);
            if (bytes is null) continue;
            entries.Add(BlsEntry.Parse(ConfigLines.Decode(bytes), path));
        }
        byte[]? conf = files.ReadFile(new GuestPath(loaderDir.Device, ConfigLines.Combine(loaderDir.Path, "loader.conf")), Limits.MaxLoaderConfBytes);
        return Build(entries, conf is null ? null : ConfigLines.Decode(conf), grubEnv, entriesDir, warnings);
    }

    /// <summary>Spec "Sorting": bad entries last; with sort-key before without; sort-key, machine-id, version (newest
    /// first); finally the ids by version comparison, newest first.</summary>
    internal static int CompareEntries(BlsEntry a, BlsEntry b)
    {
        bool badA = a.TriesLeft == 0, badB = b.TriesLeft == 0;
        if (badA != badB) return badA ? 1 : -1;
        if (a.SortKey is not null && b.SortKey is not null)
        {
            int r = string.CompareOrdinal(a.SortKey, b.SortKey);
            if (r != 0) return r;
            r = string.CompareOrdinal(a.MachineId ?? "", b.MachineId ?? "");
            if (r != 0) return r;
            r = -UapiVersion.Compare(a.Version, b.Version);
            if (r != 0) return r;
        }
        else if (a.SortKey is not null || b.SortKey is not null)
        {
            return a.SortKey is not null ? -1 : 1;
        }
        int byId = -UapiVersion.Compare(a.Id, b.Id);
        return byId != 0 ? byId : string.CompareOrdinal(a.FileName, b.FileName);
    }

    private static string Expand(string options, IReadOnlyDictionary<string, string> env, string fileName, List<string> warnings)
    {
        var sb = new StringBuilder();
        int i = 0;
        while (i < options.Length)
        {
            char c = options[i];
            if (c != '$') { sb.Append(c); i++; continue; }
            string? name = null;
            int end = i + 1;
            if (end < options.Length && options[end] == '{')
            {
                int close = options.IndexOf('}', end + 1);
                if (close > 0) { name = options[(end + 1)..close]; end = close + 1; }
            }
            else
            {
                while (end < options.Length && (char.IsAsciiLetterOrDigit(options[end]) || options[end] == '_')) end++;
                if (end > i + 1) name = options[(i + 1)..end];
            }
            if (name is null) { sb.Append(c); i++; continue; }
            if (env.TryGetValue(name, out string? value)) sb.Append(value);
            else warnings.Add($"{fileName}: ${name} is not set; expands to nothing");
            i = end;
        }
        return string.Join(' ', sb.ToString().Split([' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries));
    }
}

/// <summary>fnmatch(3)-style glob without flags: '*', '?', bracket sets with ranges and '!'/'^' negation.</summary>
internal static class Glob
{
    public static bool Matches(string pattern, string text)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        ArgumentNullException.ThrowIfNull(text);
        int p = 0, t = 0, starP = -1, starT = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && pattern[p] == '*')
            {
                starP = p++;
                starT = t;
                continue;
            }
            if (p < pattern.Length && MatchOne(pattern, ref p, text[t]))
            {
                t++;
                continue;
            }
            if (starP < 0) return false;
            p = starP + 1;
            t = ++starT;
        }
        while (p < pattern.Length && pattern[p] == '*') p++;
        return p == pattern.Length;
    }

    /// <summary>Matches one pattern element at <paramref name="p"/> against <paramref name="c"/>; advances p on success.</summary>
    private static bool MatchOne(string pattern, ref int p, char c)
    {
        char pc = pattern[p];
        if (pc == '?') { p++; return true; }
        if (pc == '[')
        {
            int i = p + 1;
            bool negate = i < pattern.Length && pattern[i] is '!' or '^';
            if (negate) i++;
            bool matched = false;
            bool first = true;
            while (i < pattern.Length && (first || pattern[i] != ']'))
            {
                first = false;
                char lo = pattern[i];
                if (i + 2 < pattern.Length && pattern[i + 1] == '-' && pattern[i + 2] != ']')
                {
                    if (c >= lo && c <= pattern[i + 2]) matched = true;
                    i += 3;
                }
                else
                {
                    if (c == lo) matched = true;
                    i++;
                }
            }
            if (i >= pattern.Length) // no closing ']': a literal '['
            {
                if (c != '[') return false;
                p++;
                return true;
            }
            if (matched == negate) return false;
            p = i + 1;
            return true;
        }
        if (pc == '\\' && p + 1 < pattern.Length) pc = pattern[++p];
        if (pc != c) return false;
        p++;
        return true;
    }
}
