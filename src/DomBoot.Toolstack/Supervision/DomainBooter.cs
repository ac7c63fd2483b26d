using System.Diagnostics;
using System.Globalization;
using System.Text;
using DomBoot.Engine.Accel;
using DomBoot.Engine.Planning;
using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Config;

namespace DomBoot.Toolstack.Supervision;

/// <summary>What one boot of a domain runs: the QEMU argv and what it was made from.</summary>
internal sealed record DomainBoot(IReadOnlyList<string> QemuArgv, string Kernel, string Cmdline, string? Entry, BootPlan? Plan);

/// <summary>Where a domain's sockets and logs are.</summary>
internal sealed record DomainPaths(string Folder, string Log, string ConsoleLog)
{
    public string QmpSocket => Path.Combine(Folder, "qmp.sock");
    public string ControlSocket => Path.Combine(Folder, "control.sock");
    public string ConsoleSocket => Path.Combine(Folder, "console.sock");
    public string BootFolder => Path.Combine(Folder, "boot");
}

/// <summary>
/// From a domain's config to the QEMU argv of its next boot. Re-run on every restart, so a kernel the guest
/// installed (a new GRUB default) is what boots next: kernel= is a direct boot (a URL goes through the HTTP cache),
/// bootloader="domboot" (or "pygrub") reads the guest's disks with the built-in bootloader, any other bootloader=
/// is a program called the way xl calls pygrub, netboot= boots QEMU's iPXE, type="hvm" boots the disk through
/// SeaBIOS.
/// </summary>
internal static class DomainBooter
{
    public static readonly TimeSpan ExternalBootloaderTimeout = TimeSpan.FromSeconds(60);

    public static DomainBoot Prepare(XlConfig config, DomainPlan plan, DomainPaths paths, string uuid, BootOptions options, Func<string, string> resolveRemote, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(resolveRemote);
        if (Directory.Exists(paths.BootFolder)) Directory.Delete(paths.BootFolder, recursive: true);
        Directory.CreateDirectory(paths.BootFolder);
        var runtime = new RuntimePaths(paths.BootFolder);
        var accel = AcceleratorDetector.Choose(AcceleratorRequest.Auto, HostVirtualization.Probe());
        var template = new BootRequest { KernelPath = "", MemoryMiB = plan.MemoryMiB, Vcpus = plan.Vcpus, Name = plan.Name, Accelerator = AcceleratorRequest.Auto };

        BootPlan? boot;
        string kernel, cmdline;
        string? entry = null;
        switch (plan.BootSource)
        {
            case DomainBootSource.Kernel:
            {
                var request = template with
                {
                    KernelPath = resolveRemote(config.Kernel!),
                    Initrds = config.Ramdisk is null ? [] : [resolveRemote(config.Ramdisk)],
                    Cmdline = config.Cmdline,
                };
                boot = DirectBoot.Plan(request, runtime);
                kernel = config.Kernel!;
                cmdline = boot.Cmdline;
                break;
            }
            case DomainBootSource.Bootloader:
            {
                var (request, title) = RunBootloader(config, plan, paths, template, runtime, cancellationToken);
                boot = DirectBoot.Plan(request, runtime);
                kernel = request.KernelPath;
                cmdline = boot.Cmdline;
                entry = title;
                break;
            }
            case DomainBootSource.Netboot:
            {
                var (address, url) = SplitNetboot(config.Netboot!);
                boot = BootPlanner.PlanNetboot(template with { Netboot = url, NetbootAddress = address }, accel, runtime);
                kernel = url;
                cmdline = "";
                break;
            }
            default:
                boot = null;
                kernel = "firmware";
                cmdline = "";
                break;
        }
        if (config.Type == XlDomainType.Pvh && boot is not null && boot.Method != BootMethod.Pvh)
            throw new InvalidRequestException($"{config.FileName}: type=\"pvh\" needs an ELF kernel with a PVH entry note; {kernel} is a {boot.KernelKind}");

        var argv = boot is null ? FirmwareArgv(plan, accel) : boot.QemuArgv.ToList();
        Domainize(argv, boot, plan, paths, uuid, options);
        return new DomainBoot(argv, kernel, cmdline, entry, boot);
    }

    /// <summary>How QEMU starts: paused (create -p), or waiting for a saved state (restore).</summary>
    public sealed record BootOptions(bool Paused = false, bool Incoming = false);

    /// <summary>cstrap's "ip=ADDR:MASK:GW URL" or just "URL".</summary>
    public static (string? Address, string Url) SplitNetboot(string value)
    {
        var parts = value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 2 && parts[0].StartsWith("ip=", StringComparison.Ordinal)) return (parts[0], parts[1]);
        if (parts.Length == 1) return (null, parts[0]);
        throw new InvalidRequestException($"netboot {Quote.Text(value)}: expected \"URL\" or \"ip=ADDR:MASK:GW URL\"");
    }

    /// <summary>SeaBIOS boots the first disk (type="hvm" without kernel/bootloader/netboot).</summary>
    private static List<string> FirmwareArgv(DomainPlan plan, AcceleratorChoice accel) =>
    [
        DomBoot.Engine.Planning.QemuCommandLine.Binary,
        "-machine", "pc,accel=" + accel.QemuName,
        "-cpu", accel.CpuModel,
        "-m", plan.MemoryMiB.ToString(CultureInfo.InvariantCulture),
        "-smp", plan.Vcpus.ToString(CultureInfo.InvariantCulture),
        "-nodefaults", "-no-user-config",
        "-display", "none",
        "-chardev", "stdio,id=console0,signal=off",
        "-serial", "chardev:console0",
        "-qmp", "unix:placeholder,server=on,wait=off",
        "-no-reboot",
        "-boot", "order=c",
    ];

    /// <summary>
    /// Turns a one-shot argv into a domain's: the console on a socket with a log file, QMP in the domain folder,
    /// name and uuid, pvpanic with panic=pause (the supervisor applies on_crash), the config's disks and NICs.
    /// </summary>
    private static void Domainize(List<string> argv, BootPlan? boot, DomainPlan plan, DomainPaths paths, string uuid, BootOptions options)
    {
        for (int i = 0; i + 1 < argv.Count; i++)
        {
            if (argv[i] == "-chardev" && argv[i + 1].StartsWith("stdio,id=console0", StringComparison.Ordinal))
                argv[i + 1] = $"socket,id=console0,path={Escape(paths.ConsoleSocket)},server=on,wait=off,logfile={Escape(paths.ConsoleLog)},logappend=on";
            else if (argv[i] == "-qmp")
                argv[i + 1] = $"unix:{Escape(paths.QmpSocket)},server=on,wait=off";
        }
        argv.AddRange(["-name", $"{plan.Name},debug-threads=on", "-uuid", uuid, "-device", "pvpanic", "-action", "panic=pause"]);
        if (plan.OnPoweroff == XlAction.Preserve) argv.AddRange(["-action", "shutdown=pause"]);
        if (options.Paused) argv.Add("-S");
        if (options.Incoming) argv.AddRange(["-incoming", "defer"]);

        var devices = plan.DeviceArgs.ToList();
        if (boot?.Method == BootMethod.Netboot && plan.Nics.Count > 0)
        {
            // The netboot NIC (iPXE ROM, DHCP boot file) is the domain's first NIC: it gets NIC 0's forwards.
            int n = argv.FindIndex(a => a.StartsWith("user,id=n0,", StringComparison.Ordinal));
            if (n >= 0)
            {
                var sb = new StringBuilder(argv[n]);
                foreach (var f in plan.Nics[0].Forwards)
                    sb.Append(CultureInfo.InvariantCulture, $",hostfwd={(f.Protocol == XlForwardProtocol.Tcp ? "tcp" : "udp")}:127.0.0.1:{f.HostPort}-:{f.GuestPort}");
                argv[n] = sb.ToString();
            }
            int nic0 = devices.FindIndex(a => a.StartsWith("user,id=net0", StringComparison.Ordinal));
            if (nic0 > 0) devices.RemoveRange(nic0 - 1, 4);
        }
        argv.AddRange(devices);
    }

    private static string Escape(string s) => s.Replace(",", ",,", StringComparison.Ordinal);

    /// <summary>pygrub-style bootloader_args: --entry=E, --args=A (extra command line), --root=... passed through to external programs.</summary>
    private static (BootRequest Request, string? Title) RunBootloader(XlConfig config, DomainPlan plan, DomainPaths paths, BootRequest template, RuntimePaths runtime, CancellationToken cancellationToken)
    {
        var disks = plan.Drives.Where(d => d.Disk.Target.Length > 0).Select(d => d.Disk.Target).ToList();
        string program = config.Bootloader!;
        if (program is "domboot" or "pygrub")
        {
            string? entry = null, extra = null;
            foreach (var a in config.BootloaderArgs)
            {
                if (a.StartsWith("--entry=", StringComparison.Ordinal)) entry = a["--entry=".Length..];
                else if (a.StartsWith("--args=", StringComparison.Ordinal)) extra = a["--args=".Length..];
                else if (a is "-q" or "--quiet" or "-n" or "--not-really") { }
                else throw new InvalidRequestException($"{config.FileName}: bootloader_args {Quote.Text(a)}: the built-in bootloader takes --entry=ENTRY and --args=TEXT");
            }
            string? add = string.Join(' ', new[] { config.Cmdline, extra ?? "" }.Where(s => s.Length > 0));
            var chosen = DiskBoot.Prepare(disks, entry, add.Length == 0 ? null : add, template, runtime, cancellationToken);
            return (chosen.Request, chosen.Entry.Title);
        }
        return (RunExternalBootloader(program, config, disks, paths, template, cancellationToken), null);
    }

    /// <summary>
    /// libxl's protocol: PROGRAM [--args=CMDLINE] --output=FILE --output-format=simple0 --output-directory=DIR
    /// [bootloader_args...] DISK; FILE then holds "kernel PATH\0ramdisk PATH\0args TEXT\0". The files must lie in DIR.
    /// The program runs without a terminal (libxl gives it a pty for a menu): Xen's pygrub needs bootloader_args -q.
    /// </summary>
    private static BootRequest RunExternalBootloader(string program, XlConfig config, List<string> disks, DomainPaths paths, BootRequest template, CancellationToken cancellationToken)
    {
        if (!Path.IsPathRooted(program)) throw new InvalidRequestException($"{config.FileName}: bootloader {Quote.Text(program)}: expected \"domboot\", \"pygrub\" or an absolute path");
        if (!File.Exists(program)) throw new FileNotFoundException($"{program}: no such file", program);
        if (disks.Count == 0) throw new InvalidRequestException($"{config.FileName}: bootloader= needs a disk");
        string output = Path.Combine(paths.BootFolder, "bootloader.out");
        // libxl hands over a FIFO it created; pygrub opens it without O_CREAT, so the file must exist.
        File.WriteAllBytes(output, []);
        var psi = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        if (config.Cmdline.Length > 0) psi.ArgumentList.Add("--args=" + config.Cmdline);
        psi.ArgumentList.Add("--output=" + output);
        psi.ArgumentList.Add("--output-format=simple0");
        psi.ArgumentList.Add("--output-directory=" + paths.BootFolder);
        foreach (var a in config.BootloaderArgs) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add(disks[0]);
        using var p = Process.Start(psi) ?? throw new UnavailableException($"could not start {program}");
        p.StandardInput.Close();
        var stderr = p.StandardError.ReadToEndAsync(cancellationToken);
        _ = p.StandardOutput.ReadToEndAsync(cancellationToken);
        if (!p.WaitForExit(ExternalBootloaderTimeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"bootloader {program} did not finish within {ExternalBootloaderTimeout.TotalSeconds:0} s");
        }
        if (p.ExitCode != 0)
        {
            string err = stderr.GetAwaiter().GetResult().Trim().Split('\n').LastOrDefault() ?? "";
            throw new InvalidRequestException($"bootloader {program} failed with status {p.ExitCode}: {Quote.Text(err)}");
        }
        var info = new FileInfo(output);
        if (!info.Exists || info.Length > 64 * 1024) throw new MalformedDataException(output, -1, "bootloader output is missing or larger than 64 KiB");
        string? kernel = null, ramdisk = null, args = "";
        foreach (var record in File.ReadAllText(output).Split('\0', StringSplitOptions.RemoveEmptyEntries))
        {
            int sp = record.IndexOf(' ', StringComparison.Ordinal);
            string key = sp < 0 ? record : record[..sp], value = sp < 0 ? "" : record[(sp + 1)..];
            switch (key)
            {
                case "kernel": kernel = Inside(value, paths.BootFolder, output); break;
                case "ramdisk": ramdisk = Inside(value, paths.BootFolder, output); break;
                case "args": args = value; break;
            }
        }
        if (kernel is null) throw new MalformedDataException(output, -1, "bootloader output has no kernel record");
        return template with { KernelPath = kernel, Initrds = ramdisk is null ? [] : [ramdisk], Cmdline = args };
    }

    private static string Inside(string path, string folder, string output)
    {
        var full = Path.GetFullPath(path);
        if (!full.StartsWith(Path.GetFullPath(folder) + "/", StringComparison.Ordinal))
            throw new MalformedDataException(output, -1, $"bootloader named {Quote.Text(path)}; expected a file inside {folder}");
        return full;
    }
}
