namespace DomBoot.Boot.Bls;

/// <summary>
/// Version comparison of the UAPI Version Format Specification (uapi-group/specifications,
/// specs/version_format_specification.md; systemd's strverscmp_improved). Characters outside [A-Za-z0-9~^.-] are
/// skipped; '~' sorts before everything (even the end), then the end, then '-', '^', '.'; numbers compare by value
/// and sort after letters; letters compare by strcmp of the run.
/// </summary>
internal static class UapiVersion
{
    public static int Compare(string? a, string? b)
    {
        a ??= "";
        b ??= "";
        int i = 0, j = 0;
        while (true)
        {
            while (i < a.Length && !IsValid(a[i])) i++;
            while (j < b.Length && !IsValid(b[j])) j++;
            char ca = i < a.Length ? a[i] : '\0';
            char cb = j < b.Length ? b[j] : '\0';

            if (ca == '~' || cb == '~')
            {
                if (ca != '~') return 1;
                if (cb != '~') return -1;
                i++; j++;
                continue;
            }
            if (ca == '\0' || cb == '\0') return ca.CompareTo(cb) switch { < 0 => -1, > 0 => 1, _ => 0 };
            foreach (char sep in "-^.")
            {
                if (ca == sep || cb == sep)
                {
                    if (ca != sep) return 1;
                    if (cb != sep) return -1;
                    goto Next;
                }
            }
            if (char.IsAsciiDigit(ca) || char.IsAsciiDigit(cb))
            {
                if (!char.IsAsciiDigit(ca)) return -1;
                if (!char.IsAsciiDigit(cb)) return 1;
                while (i < a.Length && a[i] == '0') i++;
                while (j < b.Length && b[j] == '0') j++;
                int ea = i, eb = j;
                while (ea < a.Length && char.IsAsciiDigit(a[ea])) ea++;
                while (eb < b.Length && char.IsAsciiDigit(b[eb])) eb++;
                int la = ea - i, lb = eb - j;
                if (la != lb) return la < lb ? -1 : 1;
                int r = string.CompareOrdinal(a, i, b, j, la);
                if (r != 0) return r < 0 ? -1 : 1;
                i = ea; j = eb;
                continue;
            }
            {
                int ea = i, eb = j;
                while (ea < a.Length && char.IsAsciiLetter(a[ea])) ea++;
                while (eb < b.Length && char.IsAsciiLetter(b[eb])) eb++;
                int la = ea - i, lb = eb - j;
                int r = string.CompareOrdinal(a, i, b, j, Math.Min(la, lb));
                if (r != 0) return r < 0 ? -1 : 1;
                if (la != lb) return la < lb ? -1 : 1;
                i = ea; j = eb;
                continue;
            }
        Next:
            i++; j++;
        }
    }

    private static bool IsValid(char c) => char.IsAsciiLetterOrDigit(c) || c is '~' or '-' or '^' or '.';
}
