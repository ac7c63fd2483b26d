using System.Text;
using DomBoot.Formats.Errors;

namespace DomBoot.Boot.Grub2;

/// <summary>How a piece of a word was written: bare text, quoted text, a bare or quoted variable reference.</summary>
internal enum Grub2PartKind { Bare, Quoted, Var, QuotedVar }

internal readonly record struct Grub2Part(Grub2PartKind Kind, string Text);

/// <summary>One shell word as GRUB's lexer (grub-core/script/yylex.l) splits it, before expansion.</summary>
internal sealed record Grub2Word(IReadOnlyList<Grub2Part> Parts, int Line, int Column)
{
    /// <summary>The word's text when it is a single bare literal (reserved words, "function" names).</summary>
    public string? BareText => Parts.Count == 1 && Parts[0].Kind == Grub2PartKind.Bare ? Parts[0].Text : null;
}

internal abstract record Grub2Node(int Line);

internal sealed record Grub2Simple(IReadOnlyList<Grub2Word> Words, int Line) : Grub2Node(Line);

/// <summary>A command followed by a { } block: menuentry and submenu (others are parsed and ignored).</summary>
internal sealed record Grub2BlockCommand(IReadOnlyList<Grub2Word> Words, IReadOnlyList<Grub2Node> Body, int Line) : Grub2Node(Line);

internal sealed record Grub2If(IReadOnlyList<(IReadOnlyList<Grub2Node> Condition, IReadOnlyList<Grub2Node> Body)> Branches, IReadOnlyList<Grub2Node>? Else, int Line) : Grub2Node(Line);

internal sealed record Grub2Function(string Name, IReadOnlyList<Grub2Node> Body, int Line) : Grub2Node(Line);

internal sealed record Grub2Group(IReadOnlyList<Grub2Node> Body, int Line) : Grub2Node(Line);

internal sealed record Grub2For(string Name, IReadOnlyList<Grub2Word> Items, IReadOnlyList<Grub2Node> Body, int Line) : Grub2Node(Line);

internal sealed record Grub2While(bool Until, IReadOnlyList<Grub2Node> Condition, IReadOnlyList<Grub2Node> Body, int Line) : Grub2Node(Line);

/// <summary>A parsed GRUB script file.</summary>
internal sealed record Grub2Script(string FileName, IReadOnlyList<Grub2Node> Commands);

internal enum Grub2TokenKind { Word, Separator, LeftBrace, RightBrace, End }

internal readonly record struct Grub2Token(Grub2TokenKind Kind, Grub2Word? Word, int Line, int Column);

/// <summary>
/// Lexer for GRUB's script grammar (grub-core/script/yylex.l): words of bare text, '...' and "..." strings,
/// backslash escapes, $var/${var}; `;` and newline separate commands; `#` starts a comment; { } delimit blocks.
/// </summary>
internal sealed class Grub2Lexer
{
    private readonly string _text;
    private readonly string _file;
    private int _pos;
    private int _line = 1;
    private int _col = 1;

    public Grub2Lexer(string text, string file)
    {
        _text = text;
        _file = file;
    }

    public bool SawNul { get; private set; }

    public List<Grub2Token> Tokenize()
    {
        var tokens = new List<Grub2Token>();
        while (true)
        {
            SkipBlanks();
            if (_pos >= _text.Length)
            {
                tokens.Add(new Grub2Token(Grub2TokenKind.End, null, _line, _col));
                return tokens;
            }
            char c = _text[_pos];
            int line = _line, col = _col;
            if (c == '\n' || c == ';')
            {
                Advance();
                tokens.Add(new Grub2Token(Grub2TokenKind.Separator, null, line, col));
            }
            else if (c == '#')
            {
                while (_pos < _text.Length && _text[_pos] != '\n') Advance();
            }
            else if (c == '}')
            {
                Advance();
                tokens.Add(new Grub2Token(Grub2TokenKind.RightBrace, null, line, col));
            }
            else if (c == '{' && (_pos + 1 >= _text.Length || IsDelimiter(_text[_pos + 1])))
            {
                Advance();
                tokens.Add(new Grub2Token(Grub2TokenKind.LeftBrace, null, line, col));
            }
            else
            {
                tokens.Add(new Grub2Token(Grub2TokenKind.Word, ReadWord(), line, col));
            }
        }
    }

    private static bool IsBlank(char c) => c is ' ' or '\t' or '\r' or '\f' or '\v';

    private static bool IsDelimiter(char c) => IsBlank(c) || c is '\n' or ';' or '\0';

    private void Advance()
    {
        if (_text[_pos] == '\n')
        {
            _line++;
            _col = 1;
        }
        else
        {
            _col++;
        }
        _pos++;
    }

    private void SkipBlanks()
    {
        while (_pos < _text.Length)
        {
            char c = _text[_pos];
            if (IsBlank(c))
            {
                Advance();
            }
            else if (c == '\\' && _pos + 1 < _text.Length && _text[_pos + 1] == '\n')
            {
                Advance();
                Advance();
            }
            else if (c == '\0')
            {
                // GRUB reads lines as C strings: a NUL ends the line's text.
                SawNul = true;
                while (_pos < _text.Length && _text[_pos] != '\n') Advance();
            }
            else
            {
                return;
            }
        }
    }

    private ConfigSyntaxException Error(int line, int col, string detail) => new(_file, line, col, detail);

    private Grub2Word ReadWord()
    {
        int startLine = _line, startCol = _col;
        var parts = new List<Grub2Part>();
        var bare = new StringBuilder();
        var quoted = new StringBuilder();

        void FlushBare()
        {
            if (bare.Length > 0) parts.Add(new Grub2Part(Grub2PartKind.Bare, bare.ToString()));
            bare.Clear();
        }

        void FlushQuoted()
        {
            if (quoted.Length > 0) parts.Add(new Grub2Part(Grub2PartKind.Quoted, quoted.ToString()));
            quoted.Clear();
        }

        bool emptyQuoted = false;
        while (_pos < _text.Length)
        {
            char c = _text[_pos];
            if (IsDelimiter(c)) break;
            if (c == '\\')
            {
                if (_pos + 1 >= _text.Length)
                {
                    Advance();
                    break;
                }
                Advance();
                if (_text[_pos] == '\n')
                {
                    Advance();
                    continue;
                }
                FlushBare();
                quoted.Append(_text[_pos]);
                Advance();
                FlushQuoted();
            }
            else if (c == '\'')
            {
                FlushBare();
                int ql = _line, qc = _col;
                Advance();
                int start = _pos;
                while (_pos < _text.Length && _text[_pos] != '\'') Advance();
                if (_pos >= _text.Length) throw Error(ql, qc, "unterminated single quote");
                quoted.Append(_text, start, _pos - start);
                if (_pos == start) emptyQuoted = true;
                Advance();
                FlushQuoted();
            }
            else if (c == '"')
            {
                FlushBare();
                int ql = _line, qc = _col;
                Advance();
                bool any = false;
                while (true)
                {
                    if (_pos >= _text.Length) throw Error(ql, qc, "unterminated double quote");
                    char d = _text[_pos];
                    if (d == '"')
                    {
                        Advance();
                        break;
                    }
                    if (d == '\\' && _pos + 1 < _text.Length && _text[_pos + 1] is '$' or '\\' or '"' or '\n')
                    {
                        Advance();
                        if (_text[_pos] != '\n') quoted.Append(_text[_pos]);
                        Advance();
                        any = true;
                    }
                    else if (d == '$' && TryReadVariable(out string? name))
                    {
                        FlushQuoted();
                        parts.Add(new Grub2Part(Grub2PartKind.QuotedVar, name!));
                        any = true;
                    }
                    else
                    {
                        if (d == '\0') SawNul = true;
                        quoted.Append(d);
                        Advance();
                        any = true;
                    }
                }
                if (!any) emptyQuoted = true;
                FlushQuoted();
            }
            else if (c == '$' && TryReadVariable(out string? varName))
            {
                FlushBare();
                parts.Add(new Grub2Part(Grub2PartKind.Var, varName!));
            }
            else
            {
                bare.Append(c);
                Advance();
            }
        }
        FlushBare();
        if (parts.Count == 0 && emptyQuoted) parts.Add(new Grub2Part(Grub2PartKind.Quoted, ""));
        return new Grub2Word(parts, startLine, startCol);
    }

    private static bool IsNameStart(char c) => c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or '_';

    private static bool IsNameChar(char c) => IsNameStart(c) || c is >= '0' and <= '9';

    /// <summary>At a '$': reads $NAME, ${NAME}, $N, $?, $#, $@, $*. False (nothing consumed) for a lone '$'.</summary>
    private bool TryReadVariable(out string? name)
    {
        name = null;
        if (_pos + 1 >= _text.Length) return false;
        char n = _text[_pos + 1];
        if (n == '{')
        {
            int vl = _line, vc = _col;
            int close = _text.IndexOf('}', _pos + 2);
            int newline = _text.IndexOf('\n', _pos + 2);
            if (close < 0 || (newline >= 0 && newline < close)) throw Error(vl, vc, "unterminated variable reference ${");
            string inner = _text.Substring(_pos + 2, close - _pos - 2);
            if (!IsValidName(inner)) throw Error(vl, vc, $"invalid variable name {Quote.Text(inner)}");
            while (_pos <= close) Advance();
            name = inner;
            return true;
        }
        if (n is '?' or '#' or '@' or '*')
        {
            Advance();
            Advance();
            name = n.ToString();
            return true;
        }
        if (n is >= '0' and <= '9')
        {
            Advance();
            int start = _pos;
            while (_pos < _text.Length && _text[_pos] is >= '0' and <= '9') Advance();
            name = _text[start.._pos];
            return true;
        }
        if (IsNameStart(n))
        {
            Advance();
            int start = _pos;
            while (_pos < _text.Length && IsNameChar(_text[_pos])) Advance();
            name = _text[start.._pos];
            return true;
        }
        return false;
    }

    private static bool IsValidName(string s)
    {
        if (s.Length == 0) return false;
        if (s is "?" or "#" or "@" or "*") return true;
        if (s.All(ch => ch is >= '0' and <= '9')) return true;
        return IsNameStart(s[0]) && s.All(IsNameChar);
    }
}

/// <summary>Parser for GRUB's script grammar (grub-core/script/parser.y): commands, if/elif/else/fi, function, menuentry blocks.</summary>
internal sealed class Grub2Parser
{
    private readonly List<Grub2Token> _tokens;
    private readonly string _file;
    private int _i;
    private int _depth;

    /// <summary>Deepest nesting of blocks and if/for/while; the parser and evaluator recurse per level.</summary>
    public const int MaxNesting = 100;

    private Grub2Parser(List<Grub2Token> tokens, string file)
    {
        _tokens = tokens;
        _file = file;
    }

    public static Grub2Script Parse(string text, string file, out bool sawNul)
    {
        var lexer = new Grub2Lexer(text, file);
        var tokens = lexer.Tokenize();
        sawNul = lexer.SawNul;
        var parser = new Grub2Parser(tokens, file);
        var list = parser.ParseList(new HashSet<string>());
        var t = parser.Peek();
        if (t.Kind == Grub2TokenKind.RightBrace) throw new ConfigSyntaxException(file, t.Line, t.Column, "unexpected }");
        if (t.Kind == Grub2TokenKind.Word) throw new ConfigSyntaxException(file, t.Line, t.Column, $"unexpected {Quote.Text(t.Word!.BareText)}");
        return new Grub2Script(file, list);
    }

    private Grub2Token Peek() => _tokens[_i];

    private Grub2Token Next() => _tokens[_i++];

    private static string? Reserved(Grub2Token t) => t.Kind == Grub2TokenKind.Word ? t.Word!.BareText : null;

    private static readonly HashSet<string> Terminators = ["then", "elif", "else", "fi", "do", "done"];

    private void SkipSeparators()
    {
        while (Peek().Kind == Grub2TokenKind.Separator) _i++;
    }

    /// <summary>Commands until End, '}' or one of <paramref name="stop"/> at command position.</summary>
    private List<Grub2Node> ParseList(HashSet<string> stop)
    {
        var list = new List<Grub2Node>();
        while (true)
        {
            SkipSeparators();
            var t = Peek();
            if (t.Kind is Grub2TokenKind.End or Grub2TokenKind.RightBrace) return list;
            string? r = Reserved(t);
            if (r is not null && stop.Contains(r)) return list;
            if (r is not null && Terminators.Contains(r)) throw new ConfigSyntaxException(_file, t.Line, t.Column, $"unexpected {r}");
            list.Add(ParseCommand());
        }
    }

    private ConfigSyntaxException Error(Grub2Token t, string detail) => new(_file, t.Line, t.Column, detail);

    private Grub2Token Expect(string word, Grub2Token opener, string construct)
    {
        var t = Peek();
        if (Reserved(t) != word) throw Error(opener, $"unterminated {construct} (missing {word})");
        return Next();
    }

    private Grub2Node ParseCommand()
    {
        var first = Peek();
        if (++_depth > MaxNesting) throw Error(first, $"nesting deeper than {MaxNesting}");
        try
        {
            return ParseCommandCore(first);
        }
        finally
        {
            _depth--;
        }
    }

    private Grub2Node ParseCommandCore(Grub2Token first)
    {
        switch (Reserved(first))
        {
            case "if":
                return ParseIf();
            case "function":
                return ParseFunction();
            case "for":
                return ParseFor();
            case "while":
            case "until":
                {
                    Next();
                    var cond = ParseList(new HashSet<string> { "do" });
                    Expect("do", first, Reserved(first)!);
                    var body = ParseList(new HashSet<string> { "done" });
                    Expect("done", first, Reserved(first)!);
                    return new Grub2While(Reserved(first) == "until", cond, body, first.Line);
                }
            default:
                break;
        }
        if (first.Kind == Grub2TokenKind.LeftBrace)
        {
            Next();
            var body = ParseBlockBody(first);
            return new Grub2Group(body, first.Line);
        }
        var words = new List<Grub2Word>();
        while (Peek().Kind == Grub2TokenKind.Word) words.Add(Next().Word!);
        if (Peek().Kind == Grub2TokenKind.LeftBrace)
        {
            var open = Next();
            var body = ParseBlockBody(open);
            return new Grub2BlockCommand(words, body, first.Line);
        }
        return new Grub2Simple(words, first.Line);
    }

    private List<Grub2Node> ParseBlockBody(Grub2Token open)
    {
        var body = ParseList(new HashSet<string>());
        if (Peek().Kind != Grub2TokenKind.RightBrace) throw Error(open, "unterminated block (missing })");
        Next();
        return body;
    }

    private Grub2If ParseIf()
    {
        var ifToken = Next();
        var branches = new List<(IReadOnlyList<Grub2Node>, IReadOnlyList<Grub2Node>)>();
        List<Grub2Node>? elseBody = null;
        var stopThen = new HashSet<string> { "then" };
        var stopBody = new HashSet<string> { "elif", "else", "fi" };
        while (true)
        {
            var cond = ParseList(stopThen);
            Expect("then", ifToken, "if");
            var body = ParseList(stopBody);
            branches.Add((cond, body));
            var t = Peek();
            string? r = Reserved(t);
            if (r == "elif")
            {
                Next();
                continue;
            }
            if (r == "else")
            {
                Next();
                elseBody = ParseList(new HashSet<string> { "fi" });
            }
            Expect("fi", ifToken, "if");
            return new Grub2If(branches, elseBody, ifToken.Line);
        }
    }

    private Grub2Function ParseFunction()
    {
        var fn = Next();
        var nameToken = Peek();
        string? name = Reserved(nameToken);
        if (name is null) throw Error(fn, "function without a name");
        Next();
        SkipSeparators();
        if (Peek().Kind != Grub2TokenKind.LeftBrace) throw Error(fn, "function body must start with {");
        var open = Next();
        return new Grub2Function(name, ParseBlockBody(open), fn.Line);
    }

    private Grub2For ParseFor()
    {
        var f = Next();
        string? name = Reserved(Peek());
        if (name is null) throw Error(f, "for without a variable name");
        Next();
        if (Reserved(Peek()) != "in") throw Error(f, "for without in");
        Next();
        var items = new List<Grub2Word>();
        while (Peek().Kind == Grub2TokenKind.Word) items.Add(Next().Word!);
        SkipSeparators();
        Expect("do", f, "for");
        var body = ParseList(new HashSet<string> { "done" });
        Expect("done", f, "for");
        return new Grub2For(name, items, body, f.Line);
    }
}
