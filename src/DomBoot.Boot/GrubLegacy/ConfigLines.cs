using System.Text;
using DomBoot.Formats.Errors;

namespace DomBoot.Boot.GrubLegacy;

/// <summary>
/// Line splitting and path joining shared by the line-oriented config readers (GRUB legacy, syslinux, BLS, fstab):
/// bounded line count and length, NUL refused, CRLF accepted.
/// </summary>
internal static class ConfigLines
{
    internal static class Limits
    {
        public const int MaxLines = 100_000;
        public const int MaxLineChars = 64 * 1024;
    }

    /// <summary>Lines of <paramref name="text"/> without terminators; a trailing '\r' is dropped (CRLF files).</summary>
    public static List<string> Split(string text, string fileName)
    {
        ArgumentNullException.ThrowIfNull(text);
        var lines = new List<string>();
        int start = 0;
        while (start < text.Length)
        {
            if (lines.Count >= Limits.MaxLines)
                throw new ConfigSyntaxException(fileName, lines.Count + 1, 1, $"more than {Limits.MaxLines} lines");
            int nl = text.IndexOf('\n', start);
            int end = nl < 0 ? text.Length : nl;
            int len = end - start;
            if (len > 0 && text[end - 1] == '\r') len--;
            if (len > Limits.MaxLineChars)
                throw new ConfigSyntaxException(fileName, lines.Count + 1, Limits.MaxLineChars + 1, $"line longer than {Limits.MaxLineChars} characters");
            string line = text.Substring(start, len);
            int nul = line.IndexOf('\0', StringComparison.Ordinal);
            if (nul >= 0)
                throw new ConfigSyntaxException(fileName, lines.Count + 1, nul + 1, "NUL byte in a text config");
            lines.Add(line);
            if (nl < 0) break;
            start = nl + 1;
        }
        return lines;
    }

    /// <summary>Guest file bytes as text: UTF-8 (invalid sequences become U+FFFD), BOM dropped.</summary>
    public static string Decode(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ReadOnlySpan<byte> span = bytes;
        if (span.StartsWith("\xEF\xBB\xBF"u8)) span = span[3..];
        return Encoding.UTF8.GetString(span);
    }

    /// <summary>Directory part of an absolute guest path ("/boot/grub/menu.lst" -> "/boot/grub"; "/x" -> "/").</summary>
    public static string DirectoryOf(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        int slash = path.LastIndexOf('/');
        return slash <= 0 ? "/" : path[..slash];
    }

    /// <summary>
    /// Joins <paramref name="path"/> to <paramref name="baseDir"/> unless it is absolute, then normalises: "//" and "."
    /// collapse, ".." stops at the root (the path stays inside the guest filesystem).
    /// </summary>
    public static string Combine(string baseDir, string path)
    {
        ArgumentNullException.ThrowIfNull(baseDir);
        ArgumentNullException.ThrowIfNull(path);
        string joined = path.StartsWith('/') ? path : baseDir + "/" + path;
        var parts = new List<string>();
        foreach (string part in joined.Split('/'))
        {
            if (part.Length == 0 || part == ".") continue;
            if (part == "..")
            {
                if (parts.Count > 0) parts.RemoveAt(parts.Count - 1);
                continue;
            }
            parts.Add(part);
        }
        return "/" + string.Join('/', parts);
    }

    /// <summary>Splits "keyword rest" at the first blank; rest has leading and trailing blanks removed.</summary>
    public static (string Keyword, string Value) SplitKeyword(string trimmedLine)
    {
        ArgumentNullException.ThrowIfNull(trimmedLine);
        int i = 0;
        while (i < trimmedLine.Length && !IsBlank(trimmedLine[i])) i++;
        return (trimmedLine[..i], trimmedLine[i..].Trim(' ', '\t', '\f', '\v'));
    }

    public static bool IsBlank(char c) => c is ' ' or '\t' or '\f' or '\v';

    public static string TrimBlanks(string s) => s.Trim(' ', '\t', '\f', '\v');
}
