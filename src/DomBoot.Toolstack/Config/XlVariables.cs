using DomBoot.Formats.Errors;

namespace DomBoot.Toolstack.Config;

/// <summary>
/// `-D name=value` definitions as xc_dom_create.py (2004) took them: one flag may carry several, separated by ':'
/// (Feb 2004) or ';' (Jun 2004), e.g. `-D vmid=3:ip=10.0.0.3`. Every value is a string; later definitions win.
/// A value therefore cannot contain ':' or ';'. Errors name the flag as "-D #N" with line 1 and the column.
/// </summary>
internal static class XlVariables
{
    internal static class Limits
    {
        public const int MaxVariables = 256;
        public const int MaxNameChars = 64;
        public const int MaxValueChars = 4096;
    }

    public static IReadOnlyDictionary<string, string> ParseDefines(IEnumerable<string> defines)
    {
        ArgumentNullException.ThrowIfNull(defines);
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        int flag = 0;
        foreach (var define in defines)
        {
            flag++;
            string file = $"-D #{flag}";
            int start = 0;
            while (start <= define.Length)
            {
                int end = define.IndexOfAny([':', ';'], start);
                if (end < 0) end = define.Length;
                string piece = define[start..end];
                if (piece.Length > 0) Define(result, piece, file, start + 1);
                start = end + 1;
            }
        }
        return result;
    }

    private static void Define(Dictionary<string, string> result, string piece, string file, int column)
    {
        int eq = piece.IndexOf('=', StringComparison.Ordinal);
        if (eq < 0) throw new ConfigSyntaxException(file, 1, column, $"expected name=value; found {Quote.Text(piece)}");
        string name = piece[..eq];
        if (name.Length == 0 || name.Length > Limits.MaxNameChars || char.IsAsciiDigit(name[0]) || !name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
            throw new ConfigSyntaxException(file, 1, column, $"invalid variable name {Quote.Text(name)}; expected letters, digits and '_', not starting with a digit");
        string value = piece[(eq + 1)..];
        if (value.Length > Limits.MaxValueChars) throw new ConfigSyntaxException(file, 1, column + eq + 1, $"value is longer than {Limits.MaxValueChars} characters");
        if (!result.ContainsKey(name) && result.Count >= Limits.MaxVariables)
            throw new ConfigSyntaxException(file, 1, column, $"more than {Limits.MaxVariables} variables");
        result[name] = value;
    }
}
