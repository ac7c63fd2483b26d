using System.Globalization;
using DomBoot.Boot.GrubLegacy;

namespace DomBoot.Boot.Bls;

/// <summary>
/// One Boot Loader Specification Type #1 entry (uapi-group/specifications, specs/boot_loader_specification.md,
/// "Type #1 Boot Loader Entry Keys"): "key value" lines, '#' comments, value = rest of the line.
/// <c>Id</c> is the file name without ".conf" and without a boot-counting suffix "+LEFT[-DONE]".
/// </summary>
internal sealed record BlsEntry
{
    public required string FileName { get; init; }
    public required string Id { get; init; }
    public string? Title { get; init; }
    public string? Version { get; init; }
    public string? MachineId { get; init; }
    public string? SortKey { get; init; }
    public string? Linux { get; init; }
    public IReadOnlyList<string> Initrds { get; init; } = [];
    public string? Efi { get; init; }

    /// <summary>All <c>options</c> lines joined by one space, unexpanded.</summary>
    public string? Options { get; init; }
    public string? Devicetree { get; init; }
    public string? Architecture { get; init; }

    /// <summary>Keys this reader does not interpret (grub_users, grub_class, grub_arg, extra, ...), in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> OtherKeys { get; init; } = [];

    /// <summary>Boot counting: tries left, or null when the file name has no counter. 0 = "bad", sorted last.</summary>
    public int? TriesLeft { get; init; }
    public int? TriesDone { get; init; }

    /// <summary>Line of the <c>linux</c> (else <c>efi</c>, else 1) key, for BootEntry.Source.</summary>
    public int SourceLine { get; init; } = 1;

    public static BlsEntry Parse(string text, string fileName)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(fileName);
        List<string> lines = ConfigLines.Split(text, fileName);
        string? title = null, version = null, machineId = null, sortKey = null, linux = null, efi = null, devicetree = null, arch = null;
        var initrds = new List<string>();
        var options = new List<string>();
        var other = new List<KeyValuePair<string, string>>();
        int linuxLine = 0, efiLine = 0;
        for (int i = 0; i < lines.Count; i++)
        {
            string line = ConfigLines.TrimBlanks(lines[i]);
            if (line.Length == 0 || line[0] == '#') continue;
            (string key, string value) = ConfigLines.SplitKeyword(line);
            switch (key)
            {
                case "title": title = value; break;
                case "version": version = value; break;
                case "machine-id": machineId = value; break;
                case "sort-key": sortKey = value; break;
                case "linux": linux = value; linuxLine = i + 1; break;
                case "initrd":
                    // one initrd per line in the spec; GRUB's blscfg also accepts several on one line
                    initrds.AddRange(value.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries));
                    break;
                case "efi": efi = value; efiLine = i + 1; break;
                case "options": if (value.Length > 0) options.Add(value); break;
                case "devicetree": devicetree = value; break;
                case "architecture": arch = value; break;
                default: other.Add(new(key, value)); break;
            }
        }
        string baseName = fileName[(fileName.LastIndexOf('/') + 1)..];
        if (baseName.EndsWith(".conf", StringComparison.Ordinal)) baseName = baseName[..^".conf".Length];
        (string id, int? left, int? done) = SplitCounter(baseName);
        return new BlsEntry
        {
            FileName = fileName,
            Id = id,
            Title = title,
            Version = version,
            MachineId = machineId,
            SortKey = sortKey,
            Linux = linux,
            Initrds = initrds,
            Efi = efi,
            Options = options.Count == 0 ? null : string.Join(' ', options),
            Devicetree = devicetree,
            Architecture = arch,
            OtherKeys = other,
            TriesLeft = left,
            TriesDone = done,
            SourceLine = linuxLine > 0 ? linuxLine : efiLine > 0 ? efiLine : 1,
        };
    }

    /// <summary>"fedora-6.1+3-1" -> ("fedora-6.1", 3, 1); anything not of that form is left whole.</summary>
    private static (string Id, int? Left, int? Done) SplitCounter(string name)
    {
        int plus = name.LastIndexOf('+');
        if (plus <= 0) return (name, null, null);
        string counter = name[(plus + 1)..];
        string[] parts = counter.Split('-');
        if (parts.Length > 2 || parts.Any(p => p.Length is 0 or > 9 || !p.All(char.IsAsciiDigit))) return (name, null, null);
        int left = int.Parse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture);
        int? done = parts.Length == 2 ? int.Parse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture) : null;
        return (name[..plus], left, done);
    }
}
