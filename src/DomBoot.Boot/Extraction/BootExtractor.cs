using System.Security.Cryptography;
using DomBoot.Boot.Discovery;
using DomBoot.Boot.Model;
using DomBoot.Formats.Errors;
using DomBoot.Formats.Kernel;

namespace DomBoot.Boot.Extraction;

/// <summary>What was copied out of the guest.</summary>
public sealed record ExtractedBoot(string KernelPath, string? RamdiskPath, string Args, KernelImage Kernel, IReadOnlyList<(string Path, string Args)> Modules);

/// <summary>
/// Copies the chosen kernel and initrd(s) out of the guest into an output directory, as pygrub does: files
/// created 0600 under unique names (boot_kernel.XXXXXXXX, boot_ramdisk.XXXXXXXX), several initrds concatenated
/// into one ramdisk (4-byte aligned), sizes capped, and the kernel checked by the kernel inspector. On any failure
/// every file it created is removed.
/// </summary>
public static class BootExtractor
{
    private const string NameChars = "abcdefghijklmnopqrstuvwxyz0123456789_";

    /// <summary>For a Multiboot (Xen) entry under the pygrub protocol, the domU kernel is module 0 and its initrd module 1.</summary>
    public static ExtractedBoot Extract(GuestDisks disks, BootEntry entry, string outputDirectory, BootloaderLimits limits, bool multibootAsLinux, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(disks);
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(limits);
        if (!Directory.Exists(outputDirectory)) throw new DirectoryNotFoundException($"{outputDirectory}: output directory does not exist");
        var created = new List<string>();
        try
        {
            GuestPath kernelSource;
            IReadOnlyList<GuestPath> initrds;
            string args;
            var modules = new List<(string, string)>();
            if (entry.Kind == BootEntryKind.Multiboot && multibootAsLinux)
            {
                if (entry.Modules.Count == 0) throw new MalformedDataException(entry.Source, -1, "Multiboot entry has no modules; expected the guest kernel as module 0");
                kernelSource = entry.Modules[0].File;
                initrds = [.. entry.Modules.Skip(1).Select(m => m.File)];
                args = StripPlaceholder(entry.Modules[0].Args);
            }
            else
            {
                kernelSource = entry.Kernel ?? throw new MalformedDataException(entry.Source, -1, "entry has no kernel");
                initrds = entry.Initrds;
                args = entry.Args;
            }

            var kernelPath = CreateUnique(outputDirectory, "boot_kernel.", created);
            using (var f = Open(kernelPath)) disks.CopyFile(kernelSource, f, limits.MaxKernelBytes, cancellationToken);
            var kernel = KernelInspector.Inspect(kernelPath);

            string? ramdiskPath = null;
            if (initrds.Count > 0)
            {
                ramdiskPath = CreateUnique(outputDirectory, "boot_ramdisk.", created);
                using var f = Open(ramdiskPath);
                long budget = limits.MaxInitrdBytes;
                foreach (var i in initrds)
                {
                    while (f.Length % 4 != 0) f.WriteByte(0);
                    long before = f.Length;
                    disks.CopyFile(i, f, budget, cancellationToken);
                    budget -= f.Length - before;
                }
            }
            if (entry.Kind == BootEntryKind.Multiboot && !multibootAsLinux)
            {
                foreach (var m in entry.Modules)
                {
                    var p = CreateUnique(outputDirectory, "boot_module.", created);
                    using (var f = Open(p)) disks.CopyFile(m.File, f, limits.MaxKernelBytes, cancellationToken);
                    modules.Add((p, m.Args));
                }
            }
            return new ExtractedBoot(kernelPath, ramdiskPath, args, kernel, modules);
        }
        catch
        {
            foreach (var c in created) File.Delete(c);
            throw;
        }
    }

    /// <summary>GRUB's 20_linux_xen passes "placeholder" as module 0's first word; it is not part of the command line.</summary>
    private static string StripPlaceholder(string args) =>
        args.StartsWith("placeholder ", StringComparison.Ordinal) ? args["placeholder ".Length..] : args == "placeholder" ? "" : args;

    private static FileStream Open(string path) => new(path, FileMode.Open, FileAccess.Write, FileShare.None, 1 << 16);

    /// <summary>mkstemp: a new 0600 file with 8 random characters after the prefix.</summary>
    public static string CreateUnique(string dir, string prefix, List<string> created)
    {
        for (int attempt = 0; attempt < 100; attempt++)
        {
            var suffix = new string(Enumerable.Range(0, 8).Select(_ => NameChars[RandomNumberGenerator.GetInt32(NameChars.Length)]).ToArray());
            var path = Path.Combine(Path.GetFullPath(dir), prefix + suffix);
            try
            {
                var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
                if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                using (new FileStream(path, options)) { }
                created.Add(path);
                return path;
            }
            catch (IOException) when (File.Exists(path)) { }
        }
        throw new IOException($"{dir}: could not create a unique {prefix}XXXXXXXX file");
    }
}
