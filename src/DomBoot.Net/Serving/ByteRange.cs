namespace DomBoot.Net.Serving;

/// <summary>What a Range header asks of a file of known length (RFC 9110 section 14).</summary>
internal enum RangeOutcome
{
    /// <summary>No Range header, an unknown unit, or several ranges: the whole file is sent with 200.</summary>
    Whole,
    /// <summary>One satisfiable range: 206 with <see cref="ByteRange"/>.</summary>
    Partial,
    /// <summary>A syntactically invalid or unsatisfiable bytes range: 416.</summary>
    Unsatisfiable,
}

/// <summary>One inclusive byte range, as in Content-Range.</summary>
internal readonly record struct ByteRange(long First, long Last)
{
    public long Length => Last - First + 1;

    /// <summary>
    /// Parses a Range header against a file of <paramref name="length"/> bytes. Only a single range is honoured:
    /// a header with several ranges (overlapping or not) is answered with the whole file (200), which RFC 9110
    /// permits and which keeps multipart/byteranges, and its amplification risk, out of the server.
    /// </summary>
    public static RangeOutcome Parse(string? header, long length, out ByteRange range)
    {
        range = default;
        if (string.IsNullOrEmpty(header)) return RangeOutcome.Whole;
        var h = header.AsSpan().Trim();
        int eq = h.IndexOf('=');
        if (eq < 0) return RangeOutcome.Unsatisfiable;
        if (!h[..eq].Trim().Equals("bytes", StringComparison.OrdinalIgnoreCase)) return RangeOutcome.Whole;
        var spec = h[(eq + 1)..].Trim();
        if (spec.Length == 0 || spec.Length > 256) return RangeOutcome.Unsatisfiable;
        if (spec.Contains(',')) return RangeOutcome.Whole;
        int dash = spec.IndexOf('-');
        if (dash < 0) return RangeOutcome.Unsatisfiable;
        var a = spec[..dash].Trim();
        var b = spec[(dash + 1)..].Trim();
        if (a.Length == 0)
        {
            // suffix-range: the last N bytes
            if (!TryDigits(b, out long n) || n == 0 || length == 0) return RangeOutcome.Unsatisfiable;
            long first = n >= length ? 0 : length - n;
            range = new ByteRange(first, length - 1);
            return RangeOutcome.Partial;
        }
        if (!TryDigits(a, out long start)) return RangeOutcome.Unsatisfiable;
        long last = length - 1;
        if (b.Length > 0)
        {
            if (!TryDigits(b, out long end) || end < start) return RangeOutcome.Unsatisfiable;
            if (end < last) last = end;
        }
        if (start >= length) return RangeOutcome.Unsatisfiable;
        range = new ByteRange(start, last);
        return RangeOutcome.Partial;
    }

    private static bool TryDigits(ReadOnlySpan<char> s, out long value)
    {
        value = 0;
        if (s.Length == 0 || s.Length > 18) return false;
        foreach (char c in s)
        {
            if (!char.IsAsciiDigit(c)) return false;
            value = value * 10 + (c - '0');
        }
        return true;
    }
}
