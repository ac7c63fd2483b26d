using System.Globalization;
using System.Text;
using DomBoot.Formats.Errors;

namespace DomBoot.Toolstack.Config;

/// <summary>A 1-based line and column (in UTF-16 characters) inside one config text.</summary>
internal readonly record struct XlPosition(int Line, int Column);

/// <summary>A value of the xl.cfg grammar: an atom (string or number, both kept as text) or a list.</summary>
internal abstract record XlValue(string FileName, XlPosition Position);

/// <summary>A string ('...', "..." or ${var}) or a NUMBER token, kept as text as libxlu does.</summary>
internal sealed record XlAtom(string Text, bool IsNumber, string FileName, XlPosition Position) : XlValue(FileName, Position);

internal sealed record XlList(IReadOnlyList<XlValue> Items, string FileName, XlPosition Position) : XlValue(FileName, Position);

/// <summary>One key's current value; the last assignment wins, `+=` concatenates (libxlu_cfg.c).</summary>
internal sealed record XlSetting(string Key, XlValue Value);

/// <summary>
/// The xl.cfg grammar (xen tools/libs/util/libxlu_cfg_l.l and libxlu_cfg_y.y; xl.cfg(5) "SYNTAX"): statements
/// `key = value` or `key += value` ended by a newline or ';'; values are '...' or "..." strings with C escapes,
/// NUMBER tokens, or [ lists ] that may nest, span lines, hold comments and end with a trailing comma.
/// domboot additions, for the 2004 xc_dom_create variables: `${name}` inside a string is replaced by the
/// variable's value (`$$` and `\$` give a literal '$'; a '$' not followed by '{' is literal), and a bare
/// `${name}` is accepted where a value is expected (it is a string). A comment on the last line needs no newline.
/// </summary>
internal sealed class XlSyntax
{
    internal static class Limits
    {
        public const int MaxTextChars = 1 << 20;
        public const int MaxKeys = 256;
        public const int MaxListItems = 1024;
        public const int MaxListDepth = 8;
        public const int MaxStringChars = 64 * 1024;
        public const int MaxKeyChars = 64;
    }

    private readonly string _text;
    private readonly string _file;
    private readonly IReadOnlyDictionary<string, string> _variables;
    private int _pos;
    private int _line = 1;
    private int _lineStart;

    private XlSyntax(string text, string file, IReadOnlyDictionary<string, string> variables)
    {
        _text = text;
        _file = file;
        _variables = variables;
    }

    /// <summary>Parses <paramref name="text"/> on top of <paramref name="settings"/> (so later text overrides earlier).</summary>
    public static void Parse(string text, string fileName, IReadOnlyDictionary<string, string> variables, XlSettingsBuilder settings)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(settings);
        if (text.Length > Limits.MaxTextChars)
            throw new ConfigSyntaxException(fileName, 1, 1, $"config is {text.Length} characters; expected at most {Limits.MaxTextChars}");
        new XlSyntax(text, fileName, variables).ParseFile(settings);
    }

    private XlPosition Here => new(_line, _pos - _lineStart + 1);

    private ConfigSyntaxException Error(XlPosition at, string detail) => new(_file, at.Line, at.Column, detail);

    private bool AtEnd => _pos >= _text.Length;

    private char Peek => _text[_pos];

    private void ParseFile(XlSettingsBuilder settings)
    {
        while (true)
        {
            SkipBlanks();
            if (AtEnd) return;
            char c = Peek;
            if (c == '\n' || c == ';' || c == '#') { SkipTerminator(); continue; }
            var keyPos = Here;
            if (!IsKeyStart(c))
            {
                if (char.IsAsciiLetterUpper(c)) throw Error(keyPos, $"keys are lower case; found {Describe(c)}");
                throw Error(keyPos, $"unexpected {Describe(c)}; expected a key");
            }
            string key = ReadKey();
            SkipBlanks();
            bool append = false;
            var opPos = Here;
            if (!AtEnd && Peek == '+' && _pos + 1 < _text.Length && _text[_pos + 1] == '=') { append = true; Advance(2); }
            else if (!AtEnd && Peek == '=') Advance(1);
            else throw Error(opPos, $"expected '=' after key \"{key}\"; found {DescribeHere()}");
            SkipBlanks();
            var value = ParseValue(0);
            settings.Assign(key, value, append, keyPos, _file);
            SkipBlanks();
            if (AtEnd) return;
            c = Peek;
            if (c == '\n' || c == ';' || c == '#') { SkipTerminator(); continue; }
            throw Error(Here, $"unexpected {Describe(c)} after the value of \"{key}\"; expected a newline or ';'");
        }
    }

    private void SkipTerminator()
    {
        if (Peek == '#') { SkipComment(); return; }
        if (Peek == '\n') NewLine();
        else Advance(1);
    }

    private void SkipComment()
    {
        while (!AtEnd && Peek != '\n') _pos++;
        if (!AtEnd) NewLine();
    }

    private void NewLine()
    {
        _pos++;
        _line++;
        _lineStart = _pos;
    }

    private void Advance(int n) => _pos += n;

    private void SkipBlanks()
    {
        while (!AtEnd && (Peek == ' ' || Peek == '\t' || Peek == '\r')) _pos++;
    }

    /// <summary>Inside brackets newlines and comments are whitespace.</summary>
    private void SkipBlanksAndNewlines()
    {
        while (!AtEnd)
        {
            char c = Peek;
            if (c == ' ' || c == '\t' || c == '\r') _pos++;
            else if (c == '\n') NewLine();
            else if (c == '#') SkipComment();
            else return;
        }
    }

    private static bool IsKeyStart(char c) => c is >= 'a' and <= 'z';

    private static bool IsKeyChar(char c) => c is >= 'a' and <= 'z' or >= '0' and <= '9' or '_' or '.';

    private string ReadKey()
    {
        var start = Here;
        int begin = _pos;
        while (!AtEnd && IsKeyChar(Peek)) _pos++;
        if (!AtEnd && char.IsAsciiLetterUpper(Peek)) throw Error(Here, $"keys are lower case; found {Describe(Peek)}");
        if (_pos - begin > Limits.MaxKeyChars) throw Error(start, $"key is {_pos - begin} characters long; expected at most {Limits.MaxKeyChars}");
        return _text[begin.._pos];
    }

    private XlValue ParseValue(int depth)
    {
        var at = Here;
        if (AtEnd) throw Error(at, "expected a value (a quoted string, a number or a list); found end of file");
        char c = Peek;
        if (c == '\'' || c == '"') return new XlAtom(ReadString(c), false, _file, at);
        if (char.IsAsciiDigit(c)) return ReadNumber();
        if (c == '$' && _pos + 1 < _text.Length && _text[_pos + 1] == '{')
        {
            var sb = new StringBuilder();
            ExpandVariable(sb);
            return new XlAtom(sb.ToString(), false, _file, at);
        }
        if (c == '[') return ParseList(depth + 1);
        throw Error(at, $"expected a value (a quoted string, a number or a list); found {DescribeHere()}");
    }

    private XlList ParseList(int depth)
    {
        var at = Here;
        if (depth > Limits.MaxListDepth) throw Error(at, $"lists nested deeper than {Limits.MaxListDepth}");
        Advance(1);
        var items = new List<XlValue>();
        SkipBlanksAndNewlines();
        if (!AtEnd && Peek == ']') { Advance(1); return new XlList(items, _file, at); }
        while (true)
        {
            SkipBlanksAndNewlines();
            if (items.Count >= Limits.MaxListItems) throw Error(Here, $"list has more than {Limits.MaxListItems} items");
            items.Add(ParseValue(depth));
            SkipBlanksAndNewlines();
            if (AtEnd) throw Error(at, "unterminated list: '[' has no matching ']'");
            if (Peek == ']') { Advance(1); return new XlList(items, _file, at); }
            if (Peek != ',') throw Error(Here, $"expected ',' or ']' in list; found {DescribeHere()}");
            Advance(1);
            SkipBlanksAndNewlines();
            if (AtEnd) throw Error(at, "unterminated list: '[' has no matching ']'");
            if (Peek == ']') { Advance(1); return new XlList(items, _file, at); }
        }
    }

    private XlAtom ReadNumber()
    {
        // NUMBER = [0-9][0-9a-fx]* (libxlu_cfg_l.l); the value is checked when a key wants a number.
        var at = Here;
        int begin = _pos;
        while (!AtEnd && (char.IsAsciiDigit(Peek) || Peek is >= 'a' and <= 'f' or 'x')) _pos++;
        if (_pos - begin > Limits.MaxKeyChars) throw Error(at, "number is too long");
        return new XlAtom(_text[begin.._pos], true, _file, at);
    }

    private string ReadString(char quote)
    {
        var open = Here;
        Advance(1);
        var sb = new StringBuilder();
        while (true)
        {
            if (AtEnd || Peek == '\n') throw Error(open, $"unterminated string: {quote} has no closing {quote} on this line");
            char c = Peek;
            if (c == quote) { Advance(1); return sb.ToString(); }
            if (c == '\\') ReadEscape(sb);
            else if (c == '$') ReadDollar(sb);
            else { sb.Append(c); _pos++; }
            if (sb.Length > Limits.MaxStringChars)
                throw Error(open, $"string is longer than {Limits.MaxStringChars} characters");
        }
    }

    private void ReadEscape(StringBuilder sb)
    {
        var at = Here;
        if (_pos + 1 >= _text.Length || _text[_pos + 1] == '\n') throw Error(at, "backslash at end of line; line continuation is not supported");
        char e = _text[_pos + 1];
        Advance(2);
        switch (e)
        {
            case '\\': sb.Append('\\'); return;
            case '\'': sb.Append('\''); return;
            case '"': sb.Append('"'); return;
            case '$': sb.Append('$'); return;
            case 'a': sb.Append('\a'); return;
            case 'b': sb.Append('\b'); return;
            case 'f': sb.Append('\f'); return;
            case 'n': sb.Append('\n'); return;
            case 'r': sb.Append('\r'); return;
            case 't': sb.Append('\t'); return;
            case 'v': sb.Append('\v'); return;
            case 'x':
            {
                int begin = _pos;
                while (!AtEnd && _pos - begin < 2 && char.IsAsciiHexDigit(Peek)) _pos++;
                if (_pos == begin) throw Error(at, "\\x needs hexadecimal digits");
                sb.Append((char)int.Parse(_text.AsSpan(begin, _pos - begin), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture));
                return;
            }
            default:
                if (e is >= '0' and <= '7')
                {
                    int value = e - '0';
                    for (int i = 0; i < 2 && !AtEnd && Peek is >= '0' and <= '7'; i++) { value = (value * 8) + (Peek - '0'); _pos++; }
                    if (value > 0xFF) throw Error(at, "octal escape is above \\377");
                    sb.Append((char)value);
                    return;
                }
                throw Error(at, $"invalid escape \\{Describe(e).Trim('\'')} in string");
        }
    }

    private void ReadDollar(StringBuilder sb)
    {
        if (_pos + 1 < _text.Length && _text[_pos + 1] == '$') { sb.Append('$'); Advance(2); return; }
        if (_pos + 1 < _text.Length && _text[_pos + 1] == '{') { ExpandVariable(sb); return; }
        sb.Append('$');
        _pos++;
    }

    /// <summary>At "${": appends the variable's value.</summary>
    private void ExpandVariable(StringBuilder sb)
    {
        var at = Here;
        Advance(2);
        int begin = _pos;
        while (!AtEnd && (char.IsAsciiLetterOrDigit(Peek) || Peek == '_')) _pos++;
        if (AtEnd || Peek != '}' || _pos == begin || _pos - begin > Limits.MaxKeyChars)
            throw Error(at, "malformed variable reference; expected ${name} with a name of letters, digits and '_'");
        string name = _text[begin.._pos];
        _pos++;
        if (!_variables.TryGetValue(name, out var value)) throw Error(at, $"undefined variable \"{name}\"");
        if (sb.Length + value.Length > Limits.MaxStringChars) throw Error(at, $"string is longer than {Limits.MaxStringChars} characters");
        sb.Append(value);
    }

    private string DescribeHere() => AtEnd ? "end of file" : Describe(Peek);

    internal static string Describe(char c) => c switch
    {
        '\n' => "end of line",
        >= ' ' and < (char)0x7F => $"'{c}'",
        _ => $"U+{(int)c:X4}",
    };
}

/// <summary>Accumulates settings in assignment order; the last assignment of a key wins.</summary>
internal sealed class XlSettingsBuilder
{
    private readonly Dictionary<string, XlSetting> _settings = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];

    public XlSettingsBuilder() { }

    public XlSettingsBuilder(IEnumerable<XlSetting> existing)
    {
        ArgumentNullException.ThrowIfNull(existing);
        foreach (var s in existing) { _settings[s.Key] = s; _order.Add(s.Key); }
    }

    public void Assign(string key, XlValue value, bool append, XlPosition keyPosition, string fileName)
    {
        if (append && _settings.TryGetValue(key, out var previous))
        {
            value = (previous.Value, value) switch
            {
                (XlAtom { IsNumber: true }, _) or (_, XlAtom { IsNumber: true }) =>
                    throw new ConfigSyntaxException(fileName, keyPosition.Line, keyPosition.Column, $"can't use += with numbers (key \"{key}\")"),
                (XlAtom a, XlAtom b) when a.Text.Length + b.Text.Length <= XlSyntax.Limits.MaxStringChars => a with { Text = a.Text + b.Text },
                (XlAtom, XlAtom) => throw new ConfigSyntaxException(fileName, keyPosition.Line, keyPosition.Column, $"string is longer than {XlSyntax.Limits.MaxStringChars} characters"),
                (XlList a, XlList b) when a.Items.Count + b.Items.Count <= XlSyntax.Limits.MaxListItems => a with { Items = [.. a.Items, .. b.Items] },
                (XlList, XlList) => throw new ConfigSyntaxException(fileName, keyPosition.Line, keyPosition.Column, $"list has more than {XlSyntax.Limits.MaxListItems} items"),
                _ => throw new ConfigSyntaxException(fileName, keyPosition.Line, keyPosition.Column, $"can't add [list] to \"string\" or vice versa (key \"{key}\")"),
            };
        }
        if (!_settings.ContainsKey(key))
        {
            if (_order.Count >= XlSyntax.Limits.MaxKeys)
                throw new ConfigSyntaxException(fileName, keyPosition.Line, keyPosition.Column, $"more than {XlSyntax.Limits.MaxKeys} distinct keys");
            _order.Add(key);
        }
        _settings[key] = new XlSetting(key, value);
    }

    public IReadOnlyList<XlSetting> Build() => _order.Select(k => _settings[k]).ToList();
}
