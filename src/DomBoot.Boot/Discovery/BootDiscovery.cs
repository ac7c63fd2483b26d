using System.Text;
using DomBoot.Boot.Model;
using DomBoot.Formats.Errors;

namespace DomBoot.Boot.Discovery;

/// <summary>Limits on what the guest may make the bootloader read and do.</summary>
public sealed record BootloaderLimits
{
    public long MaxConfigBytes { get; init; } = 16L << 20;
    public long MaxKernelBytes { get; init; } = 1L << 30;
    public long MaxInitrdBytes { get; init; } = 1L << 30;
}

/// <summary>A menu found on a guest volume.</summary>
public sealed record DiscoveredMenu(BootMenu Menu, string Device);

/// <summary>
/// Finds the guest's boot configuration across every volume of every disk, in the order pygrub and GRUB look
/// (GRUB2, then BLS, syslinux/extlinux/isolinux, GRUB legacy, per volume), and with no config at all falls back to
/// the newest kernel by version order with its matching initrd (as virt-get-kernel does).
/// </summary>
public static class BootDiscovery
{
    public static readonly string[] Grub2Paths = ["/boot/grub/grub.cfg", "/grub/grub.cfg", "/boot/grub2/grub.cfg", "/grub2/grub.cfg"];
    public static readonly string[] BlsDirectories = ["/loader/entries", "/boot/loader/entries"];
    public static readonly string[] SyslinuxPaths =
    [
        "/boot/isolinux/isolinux.cfg", "/isolinux/isolinux.cfg", "/boot/extlinux/extlinux.conf", "/boot/extlinux.conf",
        "/extlinux/extlinux.conf", "/extlinux.conf", "/boot/syslinux/syslinux.cfg", "/syslinux/syslinux.cfg", "/syslinux.cfg",
    ];
    public static readonly string[] GrubLegacyPaths = ["/boot/grub/menu.lst", "/boot/grub/grub.conf", "/grub/menu.lst", "/grub/grub.conf"];

    /// <summary>Evaluates one config file's text (pygrub --isconfig); the format is chosen from the name, GRUB2 by default.</summary>
    public static BootMenu EvaluateConfigText(string text, string configPath, IGuestFiles files) => FormatOf(configPath) switch
    {
        "syslinux" => ConfigEvaluators.Syslinux(text, configPath, files),
        "grub-legacy" => ConfigEvaluators.GrubLegacy(text, configPath, files),
        _ => ConfigEvaluators.Grub2(text, configPath, files),
    };

    private static string FormatOf(string path)
    {
        var name = Path.GetFileName(path).ToLowerInvariant();
        return name is "menu.lst" or "grub.conf" ? "grub-legacy"
            : name.Contains("grub", StringComparison.Ordinal) ? "grub2"
            : name.EndsWith(".cfg", StringComparison.Ordinal) || name.EndsWith(".conf", StringComparison.Ordinal) && name.Contains("linux", StringComparison.Ordinal) ? "syslinux"
            : "grub2";
    }

    /// <summary>The volume a guest device name (xvda2, sda2, hda2, vda2, /dev/...) denotes, as the guest's kernel names it.</summary>
    public static GuestVolumeInfo? VolumeForGuestDevice(GuestDisks disks, string name)
    {
        ArgumentNullException.ThrowIfNull(disks);
        ArgumentNullException.ThrowIfNull(name);
        var dev = name.StartsWith("/dev/", StringComparison.Ordinal) ? name : "/dev/" + name;
        return Fstab.Fstab.FindVolume(new Fstab.FstabEntry(dev, "/", "auto", "defaults", 0, 0, "--root"), disks.Volumes, null);
    }

    /// <summary>
    /// domUloader's rule: with the guest's root device known, its /etc/fstab says which volume holds /boot; search
    /// that volume first, then the root, then the rest.
    /// </summary>
    public static IReadOnlyList<GuestVolume> SearchOrder(GuestDisks disks, string? rootDevice, BootloaderLimits limits, List<string> notes)
    {
        ArgumentNullException.ThrowIfNull(disks);
        ArgumentNullException.ThrowIfNull(notes);
        if (rootDevice is null) return disks.GuestVolumes;
        var root = VolumeForGuestDevice(disks, rootDevice)
            ?? throw new FileNotFoundException($"--root {rootDevice}: no such volume with a filesystem; volumes are {string.Join(", ", disks.Volumes.Select(v => v.LinuxName))}");
        var order = new List<GuestVolume>();
        var fstabPath = new GuestPath(root.GrubDevice, "/etc/fstab");
        if (disks.ReadFile(fstabPath, limits.MaxConfigBytes) is { } bytes)
        {
            var entries = Fstab.Fstab.Parse(System.Text.Encoding.UTF8.GetString(bytes), root.LinuxName + ":/etc/fstab");
            if (Fstab.Fstab.BootMountFor(entries) is { } mount && Fstab.Fstab.FindVolume(mount, disks.Volumes, null) is { } boot)
            {
                var bootVolume = disks.GuestVolumes.First(v => v.Info == boot);
                string sub = "";
                if (Fstab.Fstab.SubvolOf(mount.MntOps) is { } sv && (sv.Path is not null || sv.Id is not null))
                {
                    // btrfs: /boot (or / holding /boot) is a subvolume; read it as the guest mounts it.
                    bootVolume = disks.UseBtrfsSubvolume(bootVolume, sv.Path, sv.Id);
                    sub = sv.Path is { } p ? $" subvol={p}" : $" subvolid={sv.Id}";
                }
                notes.Add($"{root.LinuxName}:/etc/fstab mounts {mount.File} from {mount.Spec}{sub} = {boot.LinuxName}");
                order.Add(bootVolume);
            }
        }
        order.AddRange(disks.GuestVolumes.Where(v => v.Info == root && !order.Any(o => o.Info == v.Info)));
        order.AddRange(disks.GuestVolumes.Where(v => !order.Any(o => o.Info == v.Info)));
        return order;
    }

    public static DiscoveredMenu Discover(GuestDisks disks, BootloaderLimits limits, string? rootDevice = null)
    {
        ArgumentNullException.ThrowIfNull(disks);
        ArgumentNullException.ThrowIfNull(limits);
        var problems = new List<string>();
        var notes = new List<string>();
        var order = SearchOrder(disks, rootDevice, limits, notes);
        foreach (var vol in order)
        {
            var dev = vol.Info.GrubDevice;
            disks.SetDefaultDevice(dev);
            var candidates = new List<(string Path, Func<BootMenu> Evaluate)>();
            foreach (var p in Grub2Paths) candidates.Add((p, () => ConfigEvaluators.Grub2(ReadText(disks, dev, p, limits), p, disks)));
            foreach (var efi in EfiGrubConfigs(disks, dev)) candidates.Add((efi, () => ConfigEvaluators.Grub2(ReadText(disks, dev, efi, limits), efi, disks)));
            foreach (var d in BlsDirectories) candidates.Add((d, () => ConfigEvaluators.Bls(disks, new GuestPath(dev, d))));
            foreach (var p in SyslinuxPaths) candidates.Add((p, () => ConfigEvaluators.Syslinux(ReadText(disks, dev, p, limits), p, disks)));
            foreach (var p in GrubLegacyPaths) candidates.Add((p, () => ConfigEvaluators.GrubLegacy(ReadText(disks, dev, p, limits), p, disks)));
            foreach (var (path, evaluate) in candidates)
            {
                var gp = new GuestPath(dev, path);
                bool present = path.EndsWith("/entries", StringComparison.Ordinal) ? disks.ListDirectory(gp).Any(n => n.EndsWith(".conf", StringComparison.Ordinal)) : disks.FileExists(gp);
                if (!present) continue;
                disks.SetDefaultDevice(dev);
                var menu = evaluate();
                if (menu.Entries.Count > 0) return new DiscoveredMenu(notes.Count == 0 ? menu : menu with { Warnings = [.. notes, .. menu.Warnings] }, dev);
                problems.Add($"{dev}{path}: no boot entries");
            }
        }
        var newest = NewestKernel(disks, order);
        if (newest is not null) return newest;
        throw new FileNotFoundException("no boot configuration (grub.cfg, loader/entries, syslinux/extlinux, menu.lst) and no /boot/vmlinuz-* on any volume"
            + (problems.Count > 0 ? "; " + string.Join("; ", problems) : ""));
    }

    private static IEnumerable<string> EfiGrubConfigs(GuestDisks disks, string dev)
    {
        foreach (var efiRoot in new[] { "/EFI", "/efi", "/boot/efi/EFI" })
            foreach (var vendor in disks.ListDirectory(new GuestPath(dev, efiRoot)).Order(StringComparer.Ordinal))
                yield return $"{efiRoot}/{vendor}/grub.cfg";
    }

    internal static string ReadText(IGuestFiles files, string dev, string path, BootloaderLimits limits)
    {
        var bytes = files.ReadFile(new GuestPath(dev, path), limits.MaxConfigBytes)
            ?? throw new FileNotFoundException($"{dev}{path}: no such file");
        return Encoding.UTF8.GetString(bytes); // invalid UTF-8 becomes U+FFFD: inert text, never an error
    }

    /// <summary>No config: the highest-versioned /boot/vmlinuz-* (or /vmlinuz-*) and its initrd, as virt-get-kernel picks.</summary>
    public static DiscoveredMenu? NewestKernel(GuestDisks disks, IReadOnlyList<GuestVolume>? order = null)
    {
        ArgumentNullException.ThrowIfNull(disks);
        foreach (var vol in order ?? disks.GuestVolumes)
        {
            var dev = vol.Info.GrubDevice;
            foreach (var dir in new[] { "/boot", "" })
            {
                var names = disks.ListDirectory(new GuestPath(dev, dir.Length == 0 ? "/" : dir));
                var kernels = names.Where(n => n.StartsWith("vmlinuz-", StringComparison.Ordinal) && !n.EndsWith(".old", StringComparison.Ordinal))
                    .Where(n => disks.FileExists(new GuestPath(dev, dir + "/" + n)))
                    .OrderByDescending(n => n["vmlinuz-".Length..], VersionComparer.Instance).ToList();
                if (kernels.Count == 0) continue;
                var entries = new List<BootEntry>();
                foreach (var k in kernels)
                {
                    var version = k["vmlinuz-".Length..];
                    var initrd = new[] { $"initrd.img-{version}", $"initramfs-{version}.img", $"initrd-{version}", $"initrd-{version}.img" }
                        .FirstOrDefault(n => disks.FileExists(new GuestPath(dev, dir + "/" + n)));
                    var rootArg = RootArgument(disks, vol, dir);
                    entries.Add(new BootEntry
                    {
                        Index = entries.Count,
                        Title = $"Linux {version} (newest kernel on {vol.Info.LinuxName}; no boot config)",
                        Id = version,
                        MenuPath = [$"Linux {version}"],
                        Kernel = new GuestPath(dev, dir + "/" + k),
                        Initrds = initrd is null ? [] : [new GuestPath(dev, dir + "/" + initrd)],
                        Args = rootArg,
                        Source = $"{dev}{dir}/{k}",
                    });
                }
                var menu = new BootMenu
                {
                    ConfigFormat = "none",
                    ConfigPath = dev + (dir.Length == 0 ? "/" : dir),
                    Entries = entries,
                    DefaultIndex = 0,
                    DefaultReason = "no boot config: newest kernel by version order",
                };
                return new DiscoveredMenu(menu, dev);
            }
        }
        return null;
    }

    private static string RootArgument(GuestDisks disks, GuestVolume vol, string dir)
    {
        // /boot as a directory of this volume: this volume is the root; a separate /boot: ask the fstabs.
        if (dir == "/boot" && vol.Info.Uuid is { } u) return $"root=UUID={u} ro";
        foreach (var other in disks.GuestVolumes)
        {
            if (disks.FileExists(new GuestPath(other.Info.GrubDevice, "/etc/fstab")) && other.Info.Uuid is { } uu)
                return $"root=UUID={uu} ro";
        }
        return vol.Info.Uuid is { } uuid ? $"root=UUID={uuid} ro" : "ro";
    }
}

/// <summary>Orders version strings the way `sort -V` and the UAPI version-comparison rule do, for kernel names.</summary>
public sealed class VersionComparer : IComparer<string>
{
    public static readonly VersionComparer Instance = new();

    public int Compare(string? x, string? y)
    {
        x ??= ""; y ??= "";
        int i = 0, j = 0;
        while (i < x.Length && j < y.Length)
        {
            if (char.IsAsciiDigit(x[i]) && char.IsAsciiDigit(y[j]))
            {
                int si = i, sj = j;
                while (i < x.Length && char.IsAsciiDigit(x[i])) i++;
                while (j < y.Length && char.IsAsciiDigit(y[j])) j++;
                var a = x[si..i].TrimStart('0'); var b = y[sj..j].TrimStart('0');
                if (a.Length != b.Length) return a.Length.CompareTo(b.Length);
                int c = string.CompareOrdinal(a, b);
                if (c != 0) return c;
            }
            else
            {
                // '~' sorts before everything, letters after digits' end, as in sort -V.
                int c = Rank(x[i]).CompareTo(Rank(y[j]));
                if (c != 0) return c;
                i++; j++;
            }
        }
        return (x.Length - i).CompareTo(y.Length - j);
    }

    private static int Rank(char c) => c == '~' ? -1 : char.IsAsciiLetter(c) ? c : c + 256;
}
