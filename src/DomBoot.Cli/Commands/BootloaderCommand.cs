using System.CommandLine;
using DomBoot.Boot.Discovery;
using DomBoot.Boot.Model;
using DomBoot.Boot.Pygrub;

namespace DomBoot.Cli.Commands;

/// <summary>
/// `domboot bootloader [pygrub options] DISK`: a drop-in for Xen's pygrub. xl runs it as
/// `--output=F --output-format=simple0 --output-directory=D [--kernel= --ramdisk= --args=] DISK`.
/// </summary>
internal static class BootloaderCommand
{
    public static Command Build()
    {
        var disk = new Argument<string[]>("DISK") { Description = "Guest disk image(s); the first is hd0/xvda", Arity = ArgumentArity.OneOrMore };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Non-interactive: boot the default entry" };
        var interactive = new Option<bool>("--interactive", "-i") { Description = "Show the menu (only on a terminal)" };
        var list = new Option<bool>("--list-entries", "-l") { Description = "List the entries and exit" };
        var notReally = new Option<bool>("--not-really", "-n") { Description = "Check the files exist but copy nothing" };
        var output = new Option<string?>("--output") { Description = "Write the record to this existing file or FIFO (- = stdout)" };
        var format = new Option<string>("--output-format") { Description = "sxp, simple or simple0", DefaultValueFactory = _ => "sxp" };
        var outDir = new Option<string>("--output-directory") { Description = "Where kernel and ramdisk are copied (must exist)", DefaultValueFactory = _ => "/var/run/xen/pygrub" };
        var offset = new Option<long?>("--offset") { Description = "Filesystem at this byte offset of the disk; no partition probing" };
        var entry = new Option<string?>("--entry") { Description = "Entry by index, title, id, Submenu>Entry or 1>0 path" };
        var kernel = new Option<string?>("--kernel") { Description = "Boot this guest path, no config" };
        var ramdisk = new Option<string?>("--ramdisk") { Description = "Initrd guest path with --kernel" };
        var args = new Option<string?>("--args") { Description = "Appended to the entry's command line (the whole line with --kernel)" };
        var root = new Option<string?>("--root") { Description = "domUloader: the guest's root device (xvda2); its /etc/fstab says where /boot is" };
        var runas = new Option<string?>("--runas") { Description = "Parse the guest as this unprivileged user in a child process (needs -q or --entry)" };
        var isConfig = new Option<bool>("--isconfig") { Description = "DISK is a config file on the host: print what it boots" };
        var debug = new Option<bool>("--debug") { Description = "Accepted for pygrub compatibility (use --verbose)" };
        var maxKernel = new Option<long>("--max-kernel-size") { Description = "Largest kernel copied, bytes", DefaultValueFactory = _ => 1L << 30 };
        var maxInitrd = new Option<long>("--max-initrd-size") { Description = "Largest initrd copied, bytes", DefaultValueFactory = _ => 1L << 30 };
        var command = new Command("bootloader", "Find the kernel, initrd and command line the guest's own boot config chooses (pygrub compatible)");
        command.Arguments.Add(disk);
        foreach (var o in new Option[] { quiet, interactive, list, notReally, output, format, outDir, offset, entry, kernel, ramdisk, args, root, runas, isConfig, debug, maxKernel, maxInitrd })
            command.Options.Add(o);
        command.SetAction(parseResult =>
        {
            var disks = parseResult.GetValue(disk)!;
            var limits = new BootloaderLimits { MaxKernelBytes = parseResult.GetValue(maxKernel), MaxInitrdBytes = parseResult.GetValue(maxInitrd) };
            if (parseResult.GetValue(isConfig))
            {
                var text = File.ReadAllText(disks[0]);
                var menu = BootDiscovery.EvaluateConfigText(text, disks[0], new NoGuestFiles());
                if (menu.Entries.Count == 0)
                    throw new DomBoot.Formats.Errors.MalformedDataException(disks[0], -1, $"no boot entries as a {menu.ConfigFormat} config; expected at least one");
                var e = menu.Entries[Math.Clamp(menu.DefaultIndex, 0, menu.Entries.Count - 1)];
                Console.Out.Write($"  kernel: {e.Kernel?.Path}\n  initrd: {string.Join(" ", e.Initrds.Select(i => i.Path))}\n  args: {e.Args}\n");
                return 0;
            }
            if (parseResult.GetValue(list))
            {
                using var guest = GuestDisks.Open(disks, parseResult.GetValue(offset));
                Console.Out.Write(BootloaderRun.ListEntries(BootDiscovery.Discover(guest, limits, parseResult.GetValue(root)).Menu));
                return 0;
            }
            bool wantMenu = !parseResult.GetValue(quiet) && parseResult.GetValue(entry) is null && parseResult.GetValue(kernel) is null
                && !Console.IsInputRedirected && !Console.IsOutputRedirected;
            var options = new BootloaderOptions
            {
                Disks = disks,
                Entry = parseResult.GetValue(entry),
                Kernel = parseResult.GetValue(kernel),
                Ramdisk = parseResult.GetValue(ramdisk),
                Args = parseResult.GetValue(args),
                Offset = parseResult.GetValue(offset),
                Root = parseResult.GetValue(root),
                NotReally = parseResult.GetValue(notReally),
                OutputFormat = parseResult.GetValue(format)!,
                OutputDirectory = parseResult.GetValue(outDir)!,
                Limits = limits,
            };
            BootloaderResult result;
            if (parseResult.GetValue(runas) is { } user)
            {
                if (!parseResult.GetValue(quiet) && options.Entry is null && options.Kernel is null)
                    throw new UsageException("--runas needs -q or --entry (the menu cannot run in the child)");
                if (parseResult.GetValue(notReally)) throw new UsageException("--runas and --not-really cannot be combined");
                var pass = new List<string>();
                void Pass(string name, object? value) { if (value is not null) pass.Add($"{name}={Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)}"); }
                Pass("--entry", options.Entry);
                Pass("--kernel", options.Kernel);
                Pass("--ramdisk", options.Ramdisk);
                Pass("--args", options.Args);
                Pass("--offset", options.Offset);
                Pass("--root", options.Root);
                Pass("--max-kernel-size", limits.MaxKernelBytes);
                Pass("--max-initrd-size", limits.MaxInitrdBytes);
                result = Deprivileged.Run(user, options, pass);
            }
            else
            {
                result = BootloaderRun.Run(options, wantMenu ? TerminalMenu.Choose : null, CancellationToken.None);
            }
            try
            {
                WriteRecord(parseResult.GetValue(output), result.Record);
            }
            catch
            {
                if (result.Extracted is { } x) { File.Delete(x.KernelPath); if (x.RamdiskPath is not null) File.Delete(x.RamdiskPath); }
                throw;
            }
            return 0;
        });
        return command;
    }

    private static void WriteRecord(string? output, byte[] record)
    {
        if (output is null or "-")
        {
            using var stdout = Console.OpenStandardOutput();
            stdout.Write(record);
            return;
        }
        // Like pygrub: the file (xl's pre-created output or a FIFO) must exist; it is opened write-only.
        using var f = new FileStream(output, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        f.Write(record);
        if (f.CanSeek) f.SetLength(record.Length);
    }

    /// <summary>--isconfig has no disk: file tests see nothing.</summary>
    private sealed class NoGuestFiles : IGuestFiles
    {
        public string DefaultDevice => "(hd0)";
        public IReadOnlyList<GuestVolumeInfo> Volumes => [];
        public bool FileExists(GuestPath path) => false;
        public bool DirectoryExists(GuestPath path) => false;
        public long? FileSize(GuestPath path) => null;
        public byte[]? ReadFile(GuestPath path, long maxBytes) => null;
        public IReadOnlyList<string> ListDirectory(GuestPath path) => [];
    }
}
