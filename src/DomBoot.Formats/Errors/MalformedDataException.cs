namespace DomBoot.Formats.Errors;

/// <summary>Input bytes or text that break their format's rules. Always names the structure and where.</summary>
public class MalformedDataException : Exception
{
    /// <summary>Absolute byte offset of the offending field, or -1 when the location is textual.</summary>
    public long Offset { get; }

    /// <summary>Spec name of the structure, e.g. "GPT entry 3" or "bzImage setup header".</summary>
    public string Structure { get; }

    public MalformedDataException(string structure, long offset, string detail)
        : base(offset >= 0 ? $"{structure} at offset 0x{offset:X}: {detail}" : $"{structure}: {detail}")
    {
        Structure = structure;
        Offset = offset;
    }

    protected MalformedDataException(string structure, long offset, string message, bool preformatted)
        : base(message)
    {
        _ = preformatted;
        Structure = structure;
        Offset = offset;
    }

    public MalformedDataException() : this("data", -1, "malformed") { }

    public MalformedDataException(string message) : this("data", -1, message) { }

    public MalformedDataException(string message, Exception innerException) : base(message, innerException)
    {
        Structure = "data";
        Offset = -1;
    }

    /// <summary>"field is actual; expected expected" in the house form.</summary>
    public static MalformedDataException Field(string structure, long offset, string field, object actual, string expected) =>
        new(structure, offset, $"{field} is {actual}; expected {expected}");
}

/// <summary>The input ends before a structure does.</summary>
public sealed class TruncatedDataException : MalformedDataException
{
    public TruncatedDataException(string structure, long offset, long needed, long available)
        : base(structure, offset, $"truncated: needs {needed} bytes, only {Math.Max(0, available)} available")
    {
    }

    public TruncatedDataException() : base("data", -1, "truncated") { }

    public TruncatedDataException(string message) : base("data", -1, message) { }

    public TruncatedDataException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>A syntax error in a text config; message form "file:line:column: detail".</summary>
public sealed class ConfigSyntaxException : MalformedDataException
{
    public string FileName { get; }
    public int Line { get; }
    public int Column { get; }

    public ConfigSyntaxException(string fileName, int line, int column, string detail)
        : base(fileName, -1, $"{fileName}:{line}:{column}: {detail}", preformatted: true)
    {
        FileName = fileName;
        Line = line;
        Column = column;
    }

    public ConfigSyntaxException() : this("config", 0, 0, "syntax error") { }

    public ConfigSyntaxException(string message) : this("config", 0, 0, message) { }

    public ConfigSyntaxException(string message, Exception innerException) : base(message, innerException)
    {
        FileName = "config";
    }
}

/// <summary>Well-formed input using a feature domboot deliberately does not implement.</summary>
public sealed class UnsupportedFeatureException : Exception
{
    public UnsupportedFeatureException(string message) : base(message) { }

    public UnsupportedFeatureException() : base("unsupported feature") { }

    public UnsupportedFeatureException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>A required external program or device is missing or unusable (qemu, /dev/kvm).</summary>
public sealed class UnavailableException : Exception
{
    public UnavailableException(string message) : base(message) { }

    public UnavailableException() : base("unavailable") { }

    public UnavailableException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>The request itself is wrong or ambiguous (exit 64), e.g. a disk with several filesystems and none named.</summary>
public sealed class InvalidRequestException : Exception
{
    public InvalidRequestException(string message) : base(message) { }

    public InvalidRequestException() : base("invalid request") { }

    public InvalidRequestException(string message, Exception innerException) : base(message, innerException) { }
}
