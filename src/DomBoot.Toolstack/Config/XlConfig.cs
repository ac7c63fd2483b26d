using System.Globalization;
using DomBoot.Formats.Errors;

namespace DomBoot.Toolstack.Config;

/// <summary>xl.cfg `type=`: pv (the default, direct boot), pvh (ELF/PVH direct boot), hvm (firmware boot from disk).</summary>
internal enum XlDomainType { Pv, Pvh, Hvm }

/// <summary>on_poweroff / on_reboot / on_crash actions domboot implements (xl.cfg(5) "EVENT ACTIONS").</summary>
internal enum XlAction { Destroy, Restart, Preserve }

/// <summary>
/// `cpus=`: hard affinity. <see cref="AllVcpus"/> applies to every vCPU ("0-3,5,^1", "all,^7"); otherwise
/// <see cref="PerVcpu"/>[i] is vCPU i's set (the list form).
/// </summary>
internal sealed record XlCpuPinning(IReadOnlyList<int>? AllVcpus, IReadOnlyList<IReadOnlyList<int>> PerVcpu)
{
    public const int MaxCpu = 4095;

    public override string ToString() =>
        AllVcpus is not null ? Ranges(AllVcpus) : string.Join(" / ", PerVcpu.Select(Ranges));

    private static string Ranges(IReadOnlyList<int> cpus) => cpus.Count == 0 ? "none" : string.Join(',', cpus);
}

/// <summary>
/// A domain configuration in xl.cfg syntax (xl.cfg(5)), with the 2004 xc_dom_create variables. Built from
/// settings: the last assignment of a key wins, and overrides (xl's `key=value` arguments) parse with the same
/// grammar on top of the file. Type errors in known keys are errors here (xl only warns and ignores the key).
/// </summary>
internal sealed record XlConfig
{
    internal static class Limits
    {
        public const int MaxMemoryMiB = 1 << 20;
        public const int MaxVcpus = 255;
        public const int MaxDisks = 64;
        public const int MaxVifs = 16;
        public const int MaxBootloaderArgs = 64;
    }

    private static readonly string[] KnownKeys =
    [
        "name", "type", "builder", "kernel", "ramdisk", "cmdline", "extra", "root", "bootloader", "bootloader_args",
        "memory", "vcpus", "cpus", "disk", "vif", "on_poweroff", "on_reboot", "on_crash", "netboot",
    ];

    public required string FileName { get; init; }
    public string? Name { get; init; }
    public XlDomainType Type { get; init; } = XlDomainType.Pv;
    public string? Kernel { get; init; }
    public string? Ramdisk { get; init; }

    /// <summary>The composed command line: cmdline=, else "root=ROOT EXTRA" (tools/xl/xl_parse.c).</summary>
    public string Cmdline { get; init; } = "";
    public string? Bootloader { get; init; }
    public IReadOnlyList<string> BootloaderArgs { get; init; } = [];
    public int MemoryMiB { get; init; } = 512;
    public int Vcpus { get; init; } = 1;
    public XlCpuPinning? Cpus { get; init; }
    public IReadOnlyList<XlDiskSpec> Disks { get; init; } = [];
    public IReadOnlyList<XlVifSpec> Vifs { get; init; } = [];
    public XlAction OnPoweroff { get; init; } = XlAction.Destroy;
    public XlAction OnReboot { get; init; } = XlAction.Restart;
    public XlAction OnCrash { get; init; } = XlAction.Destroy;
    public string? Netboot { get; init; }

    /// <summary>Keys xl.cfg knows but domboot does not use, or nobody knows: listed, not fatal (like xl).</summary>
    public IReadOnlyList<string> UnknownKeys { get; init; } = [];
    public IReadOnlyList<string> Warnings { get; init; } = [];

    internal IReadOnlyList<XlSetting> Settings { get; init; } = [];
    internal IReadOnlyDictionary<string, string> Variables { get; init; } = new Dictionary<string, string>();

    /// <summary>Parses a config file's text. <paramref name="variables"/> are the `-D` definitions for `${name}`.</summary>
    public static XlConfig Parse(string text, string fileName, IReadOnlyDictionary<string, string> variables)
    {
        ArgumentNullException.ThrowIfNull(variables);
        var builder = new XlSettingsBuilder();
        XlSyntax.Parse(text, fileName, variables, builder);
        return FromSettings(fileName, builder.Build(), variables);
    }

    /// <summary>
    /// xl's `key=value` arguments after the file: each parsed with the same grammar (';' separates several in one
    /// argument), on top of the file's settings. Errors name the argument as "override #N".
    /// </summary>
    public XlConfig ApplyOverrides(IEnumerable<string> overrides)
    {
        ArgumentNullException.ThrowIfNull(overrides);
        var builder = new XlSettingsBuilder(Settings);
        int n = 0;
        foreach (var o in overrides) XlSyntax.Parse(o, $"override #{++n}", Variables, builder);
        return n == 0 ? this : FromSettings(FileName, builder.Build(), Variables);
    }

    private static XlConfig FromSettings(string fileName, IReadOnlyList<XlSetting> settings, IReadOnlyDictionary<string, string> variables)
    {
        var map = settings.ToDictionary(s => s.Key, s => s.Value, StringComparer.Ordinal);
        var warnings = new List<string>();
        var unknown = settings.Select(s => s.Key).Where(k => !KnownKeys.Contains(k)).ToList();
        foreach (var k in unknown) warnings.Add($"{fileName}: unknown key \"{k}\" ignored");

        string? Str(string key) => map.TryGetValue(key, out var v) ? Single(key, v).Text : null;

        var type = XlDomainType.Pv;
        if (map.TryGetValue("type", out var typeValue))
        {
            var a = Single("type", typeValue);
            type = a.Text switch
            {
                "pv" => XlDomainType.Pv,
                "pvh" => XlDomainType.Pvh,
                "hvm" => XlDomainType.Hvm,
                _ => throw Bad(a, $"type is {Quote.Text(a.Text)}; expected pv, pvh or hvm"),
            };
        }
        else if (map.TryGetValue("builder", out var builderValue))
        {
            // The deprecated form of type= (xl.cfg(5) "builder").
            var a = Single("builder", builderValue);
            type = a.Text switch
            {
                "generic" => XlDomainType.Pv,
                "hvm" => XlDomainType.Hvm,
                _ => throw Bad(a, $"builder is {Quote.Text(a.Text)}; expected generic or hvm"),
            };
        }

        string? cmdline = Str("cmdline"), root = Str("root"), extra = Str("extra");
        string composed;
        if (cmdline is not null)
        {
            if (root is not null || extra is not null) warnings.Add($"{fileName}: ignoring root= and extra= in favour of cmdline=");
            composed = cmdline;
        }
        else if (root is not null) composed = extra is not null ? $"root={root} {extra}" : $"root={root}";
        else composed = extra ?? "";

        var bootloaderArgs = new List<string>();
        if (map.TryGetValue("bootloader_args", out var bla))
        {
            if (bla is XlList l) bootloaderArgs.AddRange(l.Items.Select(i => Single("bootloader_args", i).Text));
            else bootloaderArgs.AddRange(Single("bootloader_args", bla).Text.Split(' ', StringSplitOptions.RemoveEmptyEntries));
            if (bootloaderArgs.Count > Limits.MaxBootloaderArgs) throw Bad(bla, $"bootloader_args has more than {Limits.MaxBootloaderArgs} arguments");
        }

        string? netboot = Str("netboot");
        if (netboot is not null && !(netboot.StartsWith("http://", StringComparison.Ordinal) || netboot.StartsWith("https://", StringComparison.Ordinal)))
            throw Bad(map["netboot"], $"netboot is {Quote.Text(netboot)}; expected an http:// or https:// URL");

        return new XlConfig
        {
            FileName = fileName,
            Name = ValidName(map, Str("name")),
            Type = type,
            Kernel = Str("kernel"),
            Ramdisk = Str("ramdisk"),
            Cmdline = composed,
            Bootloader = Str("bootloader"),
            BootloaderArgs = bootloaderArgs,
            MemoryMiB = map.TryGetValue("memory", out var mem) ? Number("memory", mem, 1, Limits.MaxMemoryMiB) : 512,
            Vcpus = map.TryGetValue("vcpus", out var vc) ? Number("vcpus", vc, 1, Limits.MaxVcpus) : 1,
            Cpus = map.TryGetValue("cpus", out var cpus) ? ParseCpus(cpus) : null,
            Disks = map.TryGetValue("disk", out var disks) ? ListOf("disk", disks, Limits.MaxDisks, a => XlDiskSpec.Parse(a.Text, a.FileName, a.Position)) : [],
            Vifs = map.TryGetValue("vif", out var vifs) ? ListOf("vif", vifs, Limits.MaxVifs, a => XlVifSpec.Parse(a.Text, a.FileName, a.Position)) : [],
            OnPoweroff = Action(map, "on_poweroff", XlAction.Destroy),
            OnReboot = Action(map, "on_reboot", XlAction.Restart),
            OnCrash = Action(map, "on_crash", XlAction.Destroy),
            Netboot = netboot,
            UnknownKeys = unknown,
            Warnings = warnings,
            Settings = settings,
            Variables = variables,
        };
    }

    private static ConfigSyntaxException Bad(XlValue at, string detail) => new(at.FileName, at.Position.Line, at.Position.Column, detail);

    private static XlAtom Single(string key, XlValue value) =>
        value as XlAtom ?? throw Bad(value, $"parameter `{key}' is a list but should be a single value");

    private static string? ValidName(Dictionary<string, XlValue> map, string? name)
    {
        if (name is null) return null;
        if (name.Length is 0 or > 64 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') || name[0] == '.' || name[0] == '-')
            throw Bad(map["name"], $"name is {Quote.Text(name)}; expected 1-64 letters, digits, '-', '_' or '.', not starting with '.' or '-'");
        return name;
    }

    /// <summary>strtol(..., 0) as xl: 0x hex, leading 0 octal, else decimal; quoted numbers work too.</summary>
    private static int Number(string key, XlValue value, int min, int max)
    {
        var a = Single(key, value);
        string t = a.Text.Trim();
        long n = 0;
        bool ok;
        if (t.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            ok = t.Length is > 2 and <= 18 && long.TryParse(t.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out n) && n >= 0;
        else if (t.Length > 1 && t[0] == '0')
        {
            ok = t.Length <= 22 && t.All(c => c is >= '0' and <= '7');

            if (ok) foreach (char c in t) n = (n * 8) + (c - '0');
        }
        else ok = t.Length is > 0 and <= 18 && t.All(char.IsAsciiDigit) && long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out n);
        if (!ok) throw Bad(a, $"parameter `{key}' is not a valid number: {Quote.Text(a.Text)}");
        if (n < min || n > max) throw Bad(a, $"{key} is {n}; expected {min} to {max}");
        return (int)n;
    }

    private static List<T> ListOf<T>(string key, XlValue value, int max, Func<XlAtom, T> parse)
    {
        if (value is not XlList list) throw Bad(value, $"parameter `{key}' is a single value but should be a list");
        if (list.Items.Count > max) throw Bad(value, $"{key} has {list.Items.Count} entries; expected at most {max}");
        return list.Items.Select(i => parse(Single(key, i))).ToList();
    }

    private static XlAction Action(Dictionary<string, XlValue> map, string key, XlAction fallback)
    {
        if (!map.TryGetValue(key, out var v)) return fallback;
        var a = Single(key, v);
        return a.Text switch
        {
            "destroy" => XlAction.Destroy,
            "restart" => XlAction.Restart,
            "preserve" => XlAction.Preserve,
            "rename-restart" or "coredump-destroy" or "coredump-restart" or "soft-reset" =>
                throw Bad(a, $"{key} action {a.Text} is not supported by domboot; expected destroy, restart or preserve"),
            _ => throw Bad(a, $"{key} is {Quote.Text(a.Text)}; expected destroy, restart or preserve"),
        };
    }

    private static XlCpuPinning ParseCpus(XlValue value)
    {
        if (value is XlList list)
        {
            if (list.Items.Count > Limits.MaxVcpus) throw Bad(value, $"cpus has {list.Items.Count} entries; expected at most {Limits.MaxVcpus}");
            return new XlCpuPinning(null, list.Items.Select(i => CpuSet(Single("cpus", i))).ToList());
        }
        return new XlCpuPinning(CpuSet(Single("cpus", value)), []);
    }

    /// <summary>"0-3,5,^1", "all,^7" (xl.cfg(5) "cpus"); NUMA node forms are not supported.</summary>
    private static List<int> CpuSet(XlAtom a)
    {
        var set = new SortedSet<int>();
        foreach (var raw in a.Text.Split(','))
        {
            string part = raw.Trim();
            bool exclude = part.StartsWith('^');
            if (exclude) part = part[1..];
            int lo, hi;
            if (part == "all") { lo = 0; hi = XlCpuPinning.MaxCpu; }
            else
            {
                int dash = part.IndexOf('-', StringComparison.Ordinal);
                int? l = Cpu(dash < 0 ? part : part[..dash]), h = dash < 0 ? l : Cpu(part[(dash + 1)..]);
                if (l is null || h is null || h < l)
                    throw Bad(a, $"cpus is {Quote.Text(a.Text)}; expected CPU numbers and ranges like \"0-3,5,^1\" or \"all\" (0 to {XlCpuPinning.MaxCpu})");
                lo = l.Value;
                hi = h.Value;
            }
            for (int c = lo; c <= hi; c++) { if (exclude) set.Remove(c); else set.Add(c); }
        }
        return [.. set];
    }

    private static int? Cpu(string s) =>
        s.Length is > 0 and <= 4 && s.All(char.IsAsciiDigit) && int.Parse(s, CultureInfo.InvariantCulture) is var n && n <= XlCpuPinning.MaxCpu ? n : null;
}
