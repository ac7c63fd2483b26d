using System.Globalization;
using DomBoot.Formats.Errors;

namespace DomBoot.Toolstack.Config;

/// <summary>Where the domain's first code comes from.</summary>
internal enum DomainBootSource { Kernel, Bootloader, Netboot, Firmware }

/// <summary>One block device as QEMU will see it.</summary>
internal sealed record PlannedDrive(XlDiskSpec Disk, string DriveOption, string DeviceOption)
{
    /// <summary>"uname,dev,mode" as xc_dom_create's dry run printed block devices.</summary>
    public string Summary => $"{(Disk.Target.Length == 0 ? "(empty)" : Disk.Target)},{Disk.Vdev},{(Disk.Writable ? "w" : "r")}{(Disk.IsCdrom ? ",cdrom" : "")}";
}

/// <summary>One NIC: QEMU user-mode networking with its forwards.</summary>
internal sealed record PlannedNic(string NetdevId, string Mac, string Model, IReadOnlyList<XlPortForward> Forwards, IReadOnlyList<string> IpAddresses);

/// <summary>What a domain will get, before anything is started (the `create -n` dry run).</summary>
internal sealed record DomainPlan
{
    public required int DomainId { get; init; }
    public required string Name { get; init; }
    public required XlDomainType Type { get; init; }
    public required DomainBootSource BootSource { get; init; }

    /// <summary>The kernel path, the bootloader program ("domboot" = built-in), the netboot URL, or "firmware".</summary>
    public required string Image { get; init; }
    public string? Ramdisk { get; init; }
    public required int MemoryMiB { get; init; }
    public required int Vcpus { get; init; }
    public XlCpuPinning? Cpus { get; init; }
    public required string Cmdline { get; init; }
    public IReadOnlyList<string> BootloaderArgs { get; init; } = [];
    public required IReadOnlyList<string> IpAddresses { get; init; }
    public required IReadOnlyList<XlPortForward> Forwards { get; init; }
    public required IReadOnlyList<PlannedDrive> Drives { get; init; }
    public required IReadOnlyList<PlannedNic> Nics { get; init; }
    public required XlAction OnPoweroff { get; init; }
    public required XlAction OnReboot { get; init; }
    public required XlAction OnCrash { get; init; }

    /// <summary>
    /// The QEMU arguments this plan adds to a boot argv: -name, -m, -smp, the kernel part for a direct boot of a
    /// named kernel (-kernel/-initrd/-append; DirectBoot refines it once the kernel file is inspected), the
    /// drives and the NICs.
    /// </summary>
    public required IReadOnlyList<string> QemuArgs { get; init; }

    /// <summary>Only the drives and NICs of <see cref="QemuArgs"/> (the supervisor adds them to the boot's own argv).</summary>
    public required IReadOnlyList<string> DeviceArgs { get; init; }
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>
/// From a parsed config and a domain id to the plan. Pure: no file is opened and nothing is started.
/// Port convention: host 127.0.0.1:(2200 + id) -> guest port 22 on the first NIC ("ssh -p 22NN" reaches domain
/// NN), plus every vif forward. With no vif the domain still gets one user-mode NIC. A MAC not given is
/// 00:16:3e:II:HH:LL (Xen's OUI; II = NIC index, HHLL = domain id), so plans are reproducible.
/// </summary>
internal static class DomainPlanner
{
    public const int SshPortBase = 2200;
    public const int MaxDomainId = 65535 - SshPortBase;

    public static DomainPlan Plan(XlConfig config, int domainId)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (domainId is < 0 or > MaxDomainId) throw new ArgumentOutOfRangeException(nameof(domainId), domainId, $"expected 0 to {MaxDomainId}");
        MalformedDataException Bad(string detail) => new(config.FileName, -1, detail);

        string name = config.Name ?? throw Bad("no name= given; every domain needs a unique name");
        var warnings = new List<string>(config.Warnings);

        DomainBootSource source;
        string image;
        if (config.Kernel is not null)
        {
            if (config.Bootloader is not null) warnings.Add($"{config.FileName}: bootloader= ignored because kernel= is given");
            source = DomainBootSource.Kernel;
            image = config.Kernel;
        }
        else if (config.Bootloader is not null)
        {
            source = DomainBootSource.Bootloader;
            image = config.Bootloader;
        }
        else if (config.Netboot is not null)
        {
            source = DomainBootSource.Netboot;
            image = config.Netboot;
        }
        else if (config.Type == XlDomainType.Hvm)
        {
            source = DomainBootSource.Firmware;
            image = "firmware";
        }
        else throw Bad($"type {TypeName(config.Type)} needs kernel=, bootloader= or netboot=; neither kernel nor bootloader specified");
        if (source == DomainBootSource.Bootloader && config.Disks.Count == 0)
            throw Bad("bootloader= needs a disk= to read the kernel from");
        if (config.Ramdisk is not null && source != DomainBootSource.Kernel)
            warnings.Add($"{config.FileName}: ramdisk= is only used with kernel=");

        var vdevs = new HashSet<string>(StringComparer.Ordinal);
        foreach (var d in config.Disks)
        {
            if (!vdevs.Add(d.Vdev)) throw Bad($"vdev {d.Vdev} is used by two disks");
        }
        var drives = config.Disks.Select(d => new PlannedDrive(d, DriveOption(d), DeviceOption(d))).ToList();

        var nics = new List<PlannedNic>();
        var hostPorts = new HashSet<(XlForwardProtocol, int)>();
        var vifs = config.Vifs.Count > 0 ? config.Vifs : [new XlVifSpec(null, [], [], null)];
        for (int i = 0; i < vifs.Count; i++)
        {
            var vif = vifs[i];
            var forwards = new List<XlPortForward>();
            if (i == 0) forwards.Add(new XlPortForward(XlForwardProtocol.Tcp, SshPortBase + domainId, 22));
            forwards.AddRange(vif.Forwards);
            foreach (var f in forwards)
            {
                if (!hostPorts.Add((f.Protocol, f.HostPort)))
                    throw Bad($"host port {f} is forwarded twice (port {SshPortBase + domainId} is domain {domainId}'s ssh port)");
            }
            string mac = vif.Mac ?? string.Create(CultureInfo.InvariantCulture, $"00:16:3e:{i:x2}:{domainId >> 8 & 0xFF:x2}:{domainId & 0xFF:x2}");
            nics.Add(new PlannedNic($"net{i}", mac, vif.Model ?? "virtio-net-pci", forwards, vif.IpAddresses));
        }

        var args = new List<string>
        {
            "-name", name,
            "-m", config.MemoryMiB.ToString(CultureInfo.InvariantCulture),
            "-smp", config.Vcpus.ToString(CultureInfo.InvariantCulture),
        };
        if (source == DomainBootSource.Kernel)
        {
            args.Add("-kernel"); args.Add(config.Kernel!);
            if (config.Ramdisk is not null) { args.Add("-initrd"); args.Add(config.Ramdisk); }
            if (config.Cmdline.Length > 0) { args.Add("-append"); args.Add(config.Cmdline); }
        }
        var devices = new List<string>();
        foreach (var d in drives) { devices.Add("-drive"); devices.Add(d.DriveOption); devices.Add("-device"); devices.Add(d.DeviceOption); }
        foreach (var n in nics)
        {
            devices.Add("-netdev");
            devices.Add(NetdevOption(n));
            devices.Add("-device");
            devices.Add($"{n.Model},netdev={n.NetdevId},mac={n.Mac},id={n.NetdevId}-nic");
        }
        args.AddRange(devices);

        return new DomainPlan
        {
            DomainId = domainId,
            Name = name,
            Type = config.Type,
            BootSource = source,
            Image = image,
            Ramdisk = source == DomainBootSource.Kernel ? config.Ramdisk : null,
            MemoryMiB = config.MemoryMiB,
            Vcpus = config.Vcpus,
            Cpus = config.Cpus,
            Cmdline = config.Cmdline,
            BootloaderArgs = config.BootloaderArgs,
            IpAddresses = nics.SelectMany(n => n.IpAddresses).ToList(),
            Forwards = nics.SelectMany(n => n.Forwards).ToList(),
            Drives = drives,
            Nics = nics,
            OnPoweroff = config.OnPoweroff,
            OnReboot = config.OnReboot,
            OnCrash = config.OnCrash,
            QemuArgs = args,
            DeviceArgs = devices,
            Warnings = warnings,
        };
    }

    internal static string TypeName(XlDomainType t) => t switch { XlDomainType.Pvh => "pvh", XlDomainType.Hvm => "hvm", _ => "pv" };

    /// <summary>"user,id=net0,hostfwd=tcp:127.0.0.1:2201-:22,...": QEMU user-mode networking with the NIC's forwards.</summary>
    internal static string NetdevOption(PlannedNic n) =>
        $"user,id={n.NetdevId}" + string.Concat(n.Forwards.Select(f =>
            string.Create(CultureInfo.InvariantCulture, $",hostfwd={(f.Protocol == XlForwardProtocol.Tcp ? "tcp" : "udp")}:127.0.0.1:{f.HostPort}-:{f.GuestPort}")));

    /// <summary>
    /// The -drive half of a disk: the backend only (if=none, id=drive-VDEV), so the front end is a -device with
    /// id=VDEV that block-detach can unplug. ',' in a path is doubled as QEMU's option parser requires.
    /// </summary>
    internal static string DriveOption(XlDiskSpec d)
    {
        string format = d.Format == XlDiskFormat.Qcow2 ? "qcow2" : "raw";
        string file = d.Target.Replace(",", ",,", StringComparison.Ordinal);
        if (d.IsCdrom)
            return d.Target.Length == 0 ? $"if=none,media=cdrom,id=drive-{d.Vdev}" : $"file={file},format={format},if=none,media=cdrom,readonly=on,id=drive-{d.Vdev}";
        return $"file={file},format={format},if=none,id=drive-{d.Vdev}" + (d.Writable ? "" : ",readonly=on");
    }

    /// <summary>The -device half: virtio-blk for disks; an IDE CD-ROM for cdroms (virtio-blk has no removable media).</summary>
    internal static string DeviceOption(XlDiskSpec d) =>
        d.IsCdrom ? $"ide-cd,drive=drive-{d.Vdev},id={d.Vdev}" : $"virtio-blk-pci,drive=drive-{d.Vdev},id={d.Vdev}";
}
