using System.Runtime.InteropServices;
using System.Text;

namespace DomBoot.Net.Serving;

/// <summary>
/// Turns a raw HTTP request target into a path relative to the served root, refusing anything that could name a
/// file outside it. The raw target is decoded exactly once; an encoded '%' (double encoding), an encoded '/',
/// a backslash, NUL or another control byte, an empty, "." or ".." segment are all refused, so
/// "/../", "/%2e%2e/", "/%252e%252e/", "/..%2f" and "\.." never reach the file system.
/// </summary>
internal static class RequestPath
{
    /// <summary>Longest accepted decoded path, in bytes.</summary>
    public const int MaxPathBytes = 4096;

    /// <summary>Returns the relative path ("a/b/c", or "" for the root), or null when the target is refused.</summary>
    public static string? Parse(string rawTarget)
    {
        if (rawTarget.Length == 0 || rawTarget[0] != '/' || rawTarget.Length > MaxPathBytes * 3) return null;
        int q = rawTarget.IndexOfAny(['?', '#']);
        var raw = q >= 0 ? rawTarget.AsSpan(0, q) : rawTarget.AsSpan();
        var bytes = new List<byte>(raw.Length);
        for (int i = 0; i < raw.Length; i++)
        {
            char c = raw[i];
            if (c == '%')
            {
                if (i + 2 >= raw.Length || !IsHex(raw[i + 1]) || !IsHex(raw[i + 2])) return null;
                byte b = (byte)(HexValue(raw[i + 1]) << 4 | HexValue(raw[i + 2]));
                // An encoded separator or an encoded '%' (double encoding) is never legitimate here.
                if (b == (byte)'/' || b == (byte)'%' || b == (byte)'\\') return null;
                bytes.Add(b);
                i += 2;
            }
            else if (c > 0x7e || c < 0x21) return null;
            else bytes.Add((byte)c);
        }
        if (bytes.Count > MaxPathBytes) return null;
        string decoded;
        try { decoded = new UTF8Encoding(false, true).GetString(CollectionsMarshal.AsSpan(bytes)); }
        catch (DecoderFallbackException) { return null; }
        foreach (char c in decoded)
            if (c < 0x20 || c == 0x7f || c == '\\') return null;
        var segments = decoded[1..].Split('/');
        // A single trailing slash names a directory; any other empty segment ("//") is refused.
        int count = segments.Length;
        if (count > 1 && segments[^1].Length == 0) count--;
        if (count == 1 && segments[0].Length == 0) return "";
        for (int i = 0; i < count; i++)
        {
            var s = segments[i];
            if (s.Length == 0 || s == "." || s == "..") return null;
        }
        return string.Join('/', segments, 0, count);
    }

    private static bool IsHex(char c) => char.IsAsciiHexDigit(c);

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}
