using DomBoot.Formats.Errors;

namespace DomBoot.Engine.Planning;

/// <summary>The kernel cannot be booted as asked (a boot-protocol rule is broken). Raised before QEMU starts.</summary>
public sealed class BootValidationException : MalformedDataException
{
    public BootValidationException(string structure, long offset, string detail) : base(structure, offset, detail) { }

    public BootValidationException() : base("boot plan", -1, "invalid") { }

    public BootValidationException(string message) : base("boot plan", -1, message) { }

    public BootValidationException(string message, Exception innerException) : base(message, innerException) { }
}
