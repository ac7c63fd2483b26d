using DomBoot.Formats.Errors;

namespace DomBoot.Boot.Grub2;

/// <summary>GRUB's environment: variables, which of them are exported, and where each value came from (for DefaultReason).</summary>
internal sealed class Grub2Scope
{
    private readonly Dictionary<string, string> _vars;
    private readonly Dictionary<string, string> _origins;
    private readonly HashSet<string> _exported;
    private readonly int _maxValue;
    private long _totalChars;

    /// <summary>Every menu entry runs in a copy of the environment: bound what each copy costs.</summary>
    public const int MaxVariableCount = 4096;

    public Grub2Scope(int maxValue)
    {
        _vars = new Dictionary<string, string>(StringComparer.Ordinal);
        _origins = new Dictionary<string, string>(StringComparer.Ordinal);
        _exported = new HashSet<string>(StringComparer.Ordinal);
        _maxValue = maxValue;
    }

    private Grub2Scope(Grub2Scope other, bool exportedOnly)
    {
        _maxValue = other._maxValue;
        _vars = new Dictionary<string, string>(StringComparer.Ordinal);
        _origins = new Dictionary<string, string>(StringComparer.Ordinal);
        _exported = new HashSet<string>(other._exported, StringComparer.Ordinal);
        foreach (var (k, v) in other._vars)
        {
            if (exportedOnly && !other._exported.Contains(k)) continue;
            _vars[k] = v;
            _totalChars += v.Length;
            if (other._origins.TryGetValue(k, out var o)) _origins[k] = o;
        }
        Positional = other.Positional;
    }

    public IReadOnlyList<string> Positional { get; set; } = [];

    /// <summary>All variables and exports (menu entry bodies run in a new scope that sees everything).</summary>
    public Grub2Scope Clone() => new(this, exportedOnly: false);

    /// <summary>grub_env_context_open: only exported variables cross into configfile and submenu contexts.</summary>
    public Grub2Scope NewContext() => new(this, exportedOnly: true);

    public string? Get(string name) => _vars.TryGetValue(name, out var v) ? v : null;

    public string? Origin(string name) => _origins.TryGetValue(name, out var o) ? o : null;

    public void Set(string name, string value, string? origin)
    {
        if (value.Length > _maxValue)
            throw new MalformedDataException("GRUB variable " + Quote.Text(name), -1, $"value of {value.Length} characters exceeds the limit of {_maxValue}");
        long old = _vars.TryGetValue(name, out var prev) ? prev.Length : 0;
        long total = checked(_totalChars - old + value.Length);
        if (total > 16L * _maxValue)
            throw new MalformedDataException("GRUB environment", -1, $"variables total {total} characters, over the limit of {16L * _maxValue}");
        if (prev is null && _vars.Count >= MaxVariableCount)
            throw new MalformedDataException("GRUB environment", -1, $"more than {MaxVariableCount} variables");
        _totalChars = total;
        // GRUB's root hook accepts "(hd0,1)" and stores "hd0,1".
        if (name == "root" && value.Length >= 2 && value[0] == '(' && value[^1] == ')') value = value[1..^1];
        _vars[name] = value;
        if (origin is null) _origins.Remove(name);
        else _origins[name] = origin;
    }

    public void Unset(string name)
    {
        if (_vars.Remove(name, out var prev)) _totalChars -= prev.Length;
        _origins.Remove(name);
    }

    public void Export(string name) => _exported.Add(name);
}
