using System.Globalization;
using System.Text;
using DomBoot.Formats.Errors;

namespace DomBoot.Boot.Pygrub;

/// <summary>
/// The records pygrub writes for the toolstack (tools/pygrub/src/pygrub format_sxp/format_simple): "sxp" with
/// Python repr() quoting, "simple" (newline-separated) and "simple0" (NUL-separated, as xl reads it), byte for byte.
/// </summary>
public static class PygrubRecord
{
    public static readonly string[] Formats = ["sxp", "simple", "simple0"];

    public static byte[] Format(string format, string kernel, string? ramdisk, string? args)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        return format switch
        {
            "sxp" => Encoding.UTF8.GetBytes(Sxp(kernel, ramdisk, args)),
            "simple" => Simple(kernel, ramdisk, args, '\n'),
            "simple0" => Simple(kernel, ramdisk, args, '\0'),
            _ => throw new InvalidRequestException($"--output-format {Quote.Text(format)}; expected sxp, simple or simple0"),
        };
    }

    private static string Sxp(string kernel, string? ramdisk, string? args)
    {
        var s = new StringBuilder("linux (kernel ").Append(PythonRepr(kernel)).Append(')');
        if (!string.IsNullOrEmpty(ramdisk)) s.Append("(ramdisk ").Append(PythonRepr(ramdisk)).Append(')');
        if (!string.IsNullOrEmpty(args)) s.Append("(args ").Append(PythonRepr(args)).Append(')');
        return s.ToString();
    }

    private static byte[] Simple(string kernel, string? ramdisk, string? args, char sep)
    {
        foreach (var v in new[] { kernel, ramdisk, args })
            if (v is not null && v.Contains(sep, StringComparison.Ordinal))
                throw new MalformedDataException("bootloader record", -1,
                    $"value {Quote.Text(v)} contains the record separator {(sep == '\0' ? "NUL" : "newline")}; the simple format cannot represent it");
        var s = new StringBuilder();
        s.Append("kernel ").Append(kernel).Append(sep);
        if (!string.IsNullOrEmpty(ramdisk)) s.Append("ramdisk ").Append(ramdisk).Append(sep);
        if (!string.IsNullOrEmpty(args)) s.Append("args ").Append(args).Append(sep);
        s.Append(sep);
        return Encoding.UTF8.GetBytes(s.ToString());
    }

    /// <summary>Python 3 repr() of a str: single quotes unless the text has ' and no ", backslash escapes for control characters.</summary>
    public static string PythonRepr(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        char quote = value.Contains('\'', StringComparison.Ordinal) && !value.Contains('"', StringComparison.Ordinal) ? '"' : '\'';
        var s = new StringBuilder().Append(quote);
        foreach (var rune in value.EnumerateRunes())
        {
            int c = rune.Value;
            if (c == quote || c == '\\') s.Append('\\').Append((char)c);
            else if (c == '\t') s.Append("\\t");
            else if (c == '\n') s.Append("\\n");
            else if (c == '\r') s.Append("\\r");
            else if (c < 0x20 || c == 0x7F) s.Append("\\x").Append(c.ToString("x2", CultureInfo.InvariantCulture));
            else if (c is >= 0x80 and < 0xA0) s.Append("\\x").Append(c.ToString("x2", CultureInfo.InvariantCulture));
            else if (Rune.GetUnicodeCategory(rune) is UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned
                     or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator or UnicodeCategory.Control or UnicodeCategory.Format)
                s.Append(c <= 0xFFFF ? "\\u" + c.ToString("x4", CultureInfo.InvariantCulture) : "\\U" + c.ToString("x8", CultureInfo.InvariantCulture));
            else s.Append(rune.ToString());
        }
        return s.Append(quote).ToString();
    }
}
