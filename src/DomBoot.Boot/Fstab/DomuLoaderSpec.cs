using DomBoot.Formats.Errors;

namespace DomBoot.Boot.Fstab;

/// <summary>
/// SUSE domUloader's explicit entry, <c>--entry=[dev:]/kernel[,/initrd]</c> (anchors section 5), e.g.
/// "xvda2:/boot/vmlinuz-xen,/boot/initrd-xen". Device is the guest's name for the partition ("xvda2", a leading
/// "/dev/" is dropped) or null; both paths must be absolute guest paths.
/// </summary>
internal sealed record DomuLoaderSpec(string? Device, string Kernel, string? Initrd)
{
    internal static class Limits
    {
        public const int MaxLength = 4096;
    }

    /// <exception cref="InvalidRequestException">The entry is empty, too long or not of the form above.</exception>
    public static DomuLoaderSpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0) throw new InvalidRequestException("domUloader entry is empty; expected [dev:]/kernel[,/initrd]");
        if (text.Length > Limits.MaxLength) throw new InvalidRequestException($"domUloader entry is longer than {Limits.MaxLength} characters");
        if (text.Any(char.IsControl) || text.Contains(' ', StringComparison.Ordinal))
            throw new InvalidRequestException($"domUloader entry {Quote.Text(text)} contains blanks or control characters");
        string? device = null;
        string rest = text;
        int colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            device = text[..colon];
            rest = text[(colon + 1)..];
            if (device.StartsWith("/dev/", StringComparison.Ordinal)) device = device["/dev/".Length..];
            if (device.Length == 0 || device.Contains('/', StringComparison.Ordinal) || !device.All(char.IsAsciiLetterOrDigit))
                throw new InvalidRequestException($"domUloader entry {Quote.Text(text)}: device {Quote.Text(device)} is not a device name such as xvda2");
        }
        string[] parts = rest.Split(',');
        if (parts.Length > 2)
            throw new InvalidRequestException($"domUloader entry {Quote.Text(text)}: more than one ',' (expected /kernel[,/initrd])");
        string kernel = parts[0];
        string? initrd = parts.Length == 2 ? parts[1] : null;
        if (!kernel.StartsWith('/') || kernel.Length == 1)
            throw new InvalidRequestException($"domUloader entry {Quote.Text(text)}: kernel {Quote.Text(kernel)} is not an absolute path");
        if (initrd is not null && (!initrd.StartsWith('/') || initrd.Length == 1))
            throw new InvalidRequestException($"domUloader entry {Quote.Text(text)}: initrd {Quote.Text(initrd)} is not an absolute path");
        return new DomuLoaderSpec(device, kernel, initrd);
    }
}
