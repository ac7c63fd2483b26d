using System.Collections.Concurrent;
using System.Text;
using DomBoot.Formats.Errors;
using DomBoot.Formats.Kernel;

namespace DomBoot.Net.Serving;

/// <summary>
/// Generates the iPXE script for a bootable image in the served tree. A request for "NAME.ipxe" that is not a
/// real file is answered when one of these exists (checked in this order):
/// <list type="number">
/// <item>a directory NAME holding a kernel (file name vmlinuz*, bzImage*, linux*, kernel*, recognised by
/// <see cref="KernelInspector"/>; the first by ordinal name if several), its initrds (initrd*, initramfs*,
/// *.cpio*, ordinal order) and an optional cmdline.txt: <c>kernel URL CMDLINE / initrd URL... / boot</c>;</item>
/// <item>a packed image NAME.efi (a UKI with a .linux section): <c>chain URL</c>. A UKI is an EFI program, so
/// this script needs an EFI build of iPXE (e.g. QEMU's efi-*.rom under OVMF); legacy BIOS iPXE cannot run it —
/// serve the unpacked kernel and initrd directory for BIOS guests;</item>
/// <item>a kernel file NAME itself, with the initrds and cmdline.txt next to it.</item>
/// </list>
/// </summary>
internal sealed class IpxeScripts(long maxInspectedKernelBytes)
{
    /// <summary>Largest cmdline.txt read.</summary>
    public const int MaxCmdlineBytes = 4096;
    private const int MaxDirectoryEntries = 4096;

    private readonly ConcurrentDictionary<(string Path, DateTime Mtime, long Size), KernelKind?> _kinds = new();

    /// <summary>Returns the script for <paramref name="stemFull"/> (the real path of NAME), or null.</summary>
    public string? Generate(string rootReal, string stemFull, string baseUrl)
    {
        if (Directory.Exists(stemFull) && !IsLink(stemFull))
        {
            var files = ListFiles(stemFull);
            var kernel = files.Where(IsKernelName).FirstOrDefault(f => KindOf(f) is KernelKind.BzImage or KernelKind.Elf or KernelKind.Multiboot);
            return kernel is null ? null : KernelScript(rootReal, kernel, files, baseUrl);
        }
        var efi = stemFull + ".efi";
        if (File.Exists(efi) && !IsLink(efi) && KindOf(efi) == KernelKind.Uki)
            return "#!ipxe\nchain " + baseUrl + UrlPath(rootReal, efi) + "\n";
        if (File.Exists(stemFull) && !IsLink(stemFull) && IsKernelName(stemFull) && KindOf(stemFull) is KernelKind.BzImage or KernelKind.Elf or KernelKind.Multiboot)
            return KernelScript(rootReal, stemFull, ListFiles(Path.GetDirectoryName(stemFull)!), baseUrl);
        return null;
    }

    private static string KernelScript(string rootReal, string kernel, List<string> siblings, string baseUrl)
    {
        var sb = new StringBuilder("#!ipxe\n");
        sb.Append("kernel ").Append(baseUrl).Append(UrlPath(rootReal, kernel));
        var cmdline = ReadCmdline(Path.Combine(Path.GetDirectoryName(kernel)!, "cmdline.txt"));
        if (cmdline.Length > 0) sb.Append(' ').Append(cmdline);
        sb.Append('\n');
        foreach (var f in siblings.Where(IsInitrdName))
            sb.Append("initrd ").Append(baseUrl).Append(UrlPath(rootReal, f)).Append('\n');
        sb.Append("boot\n");
        return sb.ToString();
    }

    private static string ReadCmdline(string path)
    {
        if (!File.Exists(path) || IsLink(path)) return "";
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var buf = new byte[MaxCmdlineBytes];
        int n = fs.ReadAtLeast(buf, buf.Length, throwOnEndOfStream: false);
        var text = Encoding.UTF8.GetString(buf, 0, n);
        int nl = text.IndexOfAny(['\n', '\r']);
        if (nl >= 0) text = text[..nl];
        // A script line must stay one line of printable text.
        return new string(text.Trim().Where(c => c >= 0x20 && c != 0x7f).ToArray());
    }

    private KernelKind? KindOf(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists || info.Length > maxInspectedKernelBytes || info.Length < 512) return null;
        return _kinds.GetOrAdd((path, info.LastWriteTimeUtc, info.Length), static key =>
        {
            try { return KernelInspector.Inspect(key.Path).Kind; }
            catch (MalformedDataException) { return null; }
            catch (UnsupportedFeatureException) { return null; }
            catch (IOException) { return null; }
        });
    }

    private static List<string> ListFiles(string dir) =>
        Directory.EnumerateFiles(dir).Take(MaxDirectoryEntries).Where(f => !IsLink(f)).Order(StringComparer.Ordinal).ToList();

    private static bool IsLink(string path) => new FileInfo(path).LinkTarget is not null;

    private static bool IsKernelName(string path)
    {
        var n = Path.GetFileName(path);
        return n.StartsWith("vmlinuz", StringComparison.Ordinal) || n.StartsWith("bzImage", StringComparison.Ordinal)
            || n.StartsWith("linux", StringComparison.Ordinal) || n.StartsWith("kernel", StringComparison.Ordinal)
            || n.StartsWith("vmlinux", StringComparison.Ordinal);
    }

    private static bool IsInitrdName(string path)
    {
        var n = Path.GetFileName(path);
        return n.StartsWith("initrd", StringComparison.Ordinal) || n.StartsWith("initramfs", StringComparison.Ordinal)
            || n.Contains(".cpio", StringComparison.Ordinal);
    }

    /// <summary>The URL path of a file under the root, each segment percent-encoded.</summary>
    internal static string UrlPath(string rootReal, string full)
    {
        var rel = Path.GetRelativePath(rootReal, full);
        return "/" + string.Join('/', rel.Split('/').Select(Uri.EscapeDataString));
    }
}
