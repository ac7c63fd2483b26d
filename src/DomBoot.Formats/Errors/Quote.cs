using System.Text;

namespace DomBoot.Formats.Errors;

/// <summary>Echoes untrusted input into messages: quoted, escaped, capped at 64 bytes.</summary>
public static class Quote
{
    public const int MaxEchoBytes = 64;

    public static string Bytes(ReadOnlySpan<byte> input)
    {
        var sb = new StringBuilder("\"");
        int n = Math.Min(input.Length, MaxEchoBytes);
        for (int i = 0; i < n; i++)
        {
            byte b = input[i];
            if (b == (byte)'"' || b == (byte)'\\') sb.Append('\\').Append((char)b);
            else if (b >= 0x20 && b < 0x7F) sb.Append((char)b);
            else sb.Append("\\x").Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
        }
        sb.Append('"');
        if (input.Length > MaxEchoBytes) sb.Append("...");
        return sb.ToString();
    }

    public static string Text(string? input) => input is null ? "null" : Bytes(Encoding.UTF8.GetBytes(input.Length > 256 ? input[..256] : input));
}
