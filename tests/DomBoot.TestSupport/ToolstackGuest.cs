using System.Globalization;

namespace DomBoot.TestSupport;

/// <summary>
/// The guest the toolstack tests drive: the cached Debian cloud kernel with a busybox initramfs whose /init loads the
/// virtio, ACPI button, evdev and pvpanic modules, prints <see cref="UpPrefix"/> once, then heartbeats on ttyS0.
/// Console lines (each on its own line):
/// <c>GUEST-UP cmdline=&lt;/proc/cmdline&gt;</c>; <c>HEARTBEAT &lt;n&gt;</c> every 0.5 s from 1 (a shell variable, so it
/// continues across save/restore); <c>BLOCKDEVS &lt;sorted /sys/block names without loop*, ram*, zram*&gt;</c> (or
/// <c>BLOCKDEVS -</c>) once a second, after the odd heartbeats; <c>GUEST-POWERBUTTON</c> when busybox acpid sees the
/// ACPI power button (QMP system_powerdown), then <c>poweroff -f</c>; <c>GUEST-PANICKING</c> before the
/// <c>guest.panic_after=N</c> panic; <c>GUEST-REBOOTING</c> before the <c>guest.reboot_after=N</c> <c>reboot -f</c>;
/// <c>GUEST-MODULE-FAILED &lt;name&gt;</c> / <c>GUEST-ACPID-FAILED</c> only when set-up went wrong.
/// </summary>
public static class ToolstackGuest
{
    /// <summary>
    /// The kernel command line to boot with. panic=-1 makes a panic reboot at once when no pvpanic device stops the
    /// guest first (with -no-reboot QEMU then exits, reason guest-reset). With -device pvpanic (ISA, ACPI QEMU0001,
    /// driven by pvpanic-mmio.ko) the panic notifier runs before that timeout, so -action panic=pause gives
    /// GUEST_PANICKED {"action":"pause"} and status guest-panicked; no panic=0 is needed. quiet keeps kernel chatter
    /// off the console, but /init's lines and the panic report still appear.
    /// </summary>
    public const string BaseCmdline = "console=ttyS0 panic=-1 quiet";

    public const string UpPrefix = "GUEST-UP cmdline=";
    public const string HeartbeatPrefix = "HEARTBEAT ";
    public const string BlockDevsPrefix = "BLOCKDEVS ";
    public const string PowerButtonLine = "GUEST-POWERBUTTON";
    public const string PanickingLine = "GUEST-PANICKING";
    public const string RebootingLine = "GUEST-REBOOTING";
    public const string ModuleFailedPrefix = "GUEST-MODULE-FAILED ";

    /// <summary>Insertion order, from the modules' own depends= fields (virtio needs virtio_ring's virtio_break_device).</summary>
    public static IReadOnlyList<string> ModuleLoadOrder { get; } =
    [
        "virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci", "virtio_blk",
        "failover", "net_failover", "virtio_net", "button", "evdev", "pvpanic", "pvpanic-mmio",
    ];

    /// <summary>GPT disk identifier, partition UUID and ext4 UUID of <see cref="BootDisk"/>, pinned.</summary>
    public const string BootDiskId = "d0b0075e-0000-4000-8000-000000000001";
    public const string BootPartitionUuid = "d0b0075e-0000-4000-8000-000000000002";
    public const string BootFsUuid = "d0b0075e-0000-4000-8000-000000000003";

    private const int BootDiskMiB = 64;
    private const string InitramfsFileName = "toolstack-initrd.img";

    /// <summary>
    /// The guest's /init. The kernel opens /dev/console before running it, but the initramfs has no device nodes
    /// (cpio from a host folder cannot make them without root), so stdio is attached once devtmpfs is mounted.
    /// </summary>
    public const string InitScript = """
        #!/bin/busybox sh
        # domboot toolstack test guest: see tests/DomBoot.TestSupport/ToolstackGuest.cs
        /bin/busybox mkdir -p /proc /sys /dev /tmp /var/run /var/log
        /bin/busybox --install -s /bin
        export PATH=/bin
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        exec </dev/console >/dev/console 2>&1

        for m in @MODULES@; do
          if ! insmod "/lib/modules/$m.ko" 2>/dev/null; then
            # built in or already there is fine; anything else is reported
            [ -d "/sys/module/$(echo "$m" | tr - _)" ] || echo "GUEST-MODULE-FAILED $m"
          fi
        done

        # acpid opens /dev/input/event0, 1, ... until one is missing, then writes its pid file
        acpid -f -c /etc/acpi -a /etc/acpid.conf -M /etc/acpi.map -l /var/log/acpid.log -p /var/run/acpid.pid &
        i=0
        while [ ! -s /var/run/acpid.pid ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        [ -s /var/run/acpid.pid ] || echo "GUEST-ACPID-FAILED"

        # writes to /proc/sysrq-trigger work without it; kept so the keyboard/serial sysrq works too
        echo 1 > /proc/sys/kernel/sysrq
        panic_after=
        reboot_after=
        for w in $(cat /proc/cmdline); do
          case "$w" in
            guest.panic_after=*) panic_after=${w#*=} ;;
            guest.reboot_after=*) reboot_after=${w#*=} ;;
          esac
        done
        case "$panic_after" in *[!0-9]*) panic_after= ;; esac
        case "$reboot_after" in *[!0-9]*) reboot_after= ;; esac

        echo "GUEST-UP cmdline=$(cat /proc/cmdline)"
        n=0
        while :; do
          n=$((n + 1))
          echo "HEARTBEAT $n"
          if [ $((n % 2)) -eq 1 ]; then
            devs=
            for d in /sys/block/*; do
              b=${d##*/}
              case "$b" in loop*|ram*|zram*|'*') continue ;; esac
              devs="$devs $b"
            done
            [ -n "$devs" ] || devs=" -"
            echo "BLOCKDEVS${devs}"
          fi
          if [ -n "$panic_after" ] && [ "$n" -ge "$panic_after" ]; then
            echo "GUEST-PANICKING"
            echo c > /proc/sysrq-trigger
          fi
          if [ -n "$reboot_after" ] && [ "$n" -ge "$reboot_after" ]; then
            echo "GUEST-REBOOTING"
            reboot -f
          fi
          sleep 0.5
        done

        """;

    /// <summary>
    /// busybox acpid's map file: six fields, type name, type (hex), code name, code (decimal), value, and the event
    /// description (the rest of the line). KEY_POWER 116 value 1 comes from the "Power Button" input device
    /// (LNXPWRBN, button.ko) as /dev/input/event1; event0 is the AT keyboard.
    /// </summary>
    public const string AcpiMap = "EV_KEY 01 KEY_POWER 116 1 button/power PWRF 00000080\n";

    /// <summary>busybox acpid's action file: a key found in the description, and the path under -c DIR it runs.</summary>
    public const string AcpidConf = "PWRF powerbutton\n";

    /// <summary>/etc/acpi/powerbutton; acpid runs a plain file directly (a folder through run-parts).</summary>
    public const string PowerButtonScript = """
        #!/bin/sh
        echo GUEST-POWERBUTTON > /dev/console
        poweroff -f

        """;

    private static readonly Lock Gate = new();
    private static string? _initramfs;

    /// <summary>The kernel command line of <see cref="BootDisk"/>'s entry 0 ("first") or 1 ("second").</summary>
    public static string EntryCmdline(int entry) => entry switch
    {
        0 => BaseCmdline + " guest.entry=first",
        1 => BaseCmdline + " guest.entry=second",
        _ => throw new ArgumentOutOfRangeException(nameof(entry), entry, "the boot disk has entries 0 and 1"),
    };

    /// <summary>
    /// The gzip'd newc initramfs (cpio -o -H newc | gzip), built once per test process and copied into
    /// <paramref name="directory"/> as toolstack-initrd.img; returns that copy's path.
    /// </summary>
    public static string Initramfs(string directory)
    {
        var cached = CachedInitramfs();
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, InitramfsFileName);
        lock (Gate)
        {
            if (!File.Exists(path)) File.Copy(cached, path);
        }
        return path;
    }

    private static string CachedInitramfs()
    {
        lock (Gate)
        {
            if (_initramfs is not null && File.Exists(_initramfs)) return _initramfs;
            Tools.Require("cpio");
            Tools.Require("gzip");
            var dir = Path.Combine(Path.GetTempPath(), $"domboot-toolstack-guest-{Environment.ProcessId}");
            var tree = Path.Combine(dir, "tree");
            if (Directory.Exists(tree)) Directory.Delete(tree, recursive: true);
            foreach (var d in new[] { "bin", "lib/modules", "etc/acpi", "proc", "sys", "dev", "tmp" })
                Directory.CreateDirectory(Path.Combine(tree, d));

            if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("the toolstack guest is built with Unix tools");
            const UnixFileMode Exec = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
            void Write(string rel, string text, bool executable)
            {
                var p = Path.Combine(tree, rel);
                File.WriteAllText(p, text.ReplaceLineEndings("\n"));
                if (executable) File.SetUnixFileMode(p, Exec);
            }
            Write("init", InitScript.Replace("@MODULES@", string.Join(' ', ModuleLoadOrder), StringComparison.Ordinal), executable: true);
            Write("etc/acpi.map", AcpiMap, executable: false);
            Write("etc/acpid.conf", AcpidConf, executable: false);
            Write("etc/acpi/powerbutton", PowerButtonScript, executable: true);
            var busybox = Path.Combine(tree, "bin", "busybox");
            File.Copy(Cache.Busybox, busybox);
            File.SetUnixFileMode(busybox, Exec);
            var modules = Cache.Modules;
            foreach (var m in ModuleLoadOrder)
            {
                var ko = Path.Combine(modules, m + ".ko");
                if (!File.Exists(ko))
                    Assert.Fail($"{ko} is missing; run `{Tools.SetupCommand}` (it copies the cloud kernel's modules into {modules})");
                File.Copy(ko, Path.Combine(tree, "lib", "modules", m + ".ko"));
            }

            var output = Path.Combine(dir, "initrd.img");
            Tools.Shell($"set -o pipefail; cd '{tree}' && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet --reproducible | gzip -9n > '{output}.tmp'");
            File.Move(output + ".tmp", output, overwrite: true);
            Directory.Delete(tree, recursive: true);
            _initramfs = output;
            return output;
        }
    }

    /// <summary>
    /// A 64 MiB sparse raw GPT disk whose one ext4 partition holds /boot/vmlinuz-&lt;release&gt;,
    /// /boot/initrd.img-&lt;release&gt; (<see cref="Initramfs"/>) and /boot/grub/grub.cfg with two entries, "first" and
    /// "second" (same kernel and initrd, command lines <see cref="EntryCmdline"/>), defaulting to
    /// <paramref name="defaultEntry"/>.
    /// </summary>
    public static string BootDisk(string directory, string name, int defaultEntry)
    {
        CheckEntry(defaultEntry, nameof(defaultEntry));
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, name);
        BuildBootDisk(path, defaultEntry);
        return path;
    }

    /// <summary>
    /// Rewrites <paramref name="diskPath"/> (made by <see cref="BootDisk"/>) with another default: a new image is built
    /// next to it and renamed over it, so a QEMU that has the disk open keeps the old inode and the next boot reads
    /// the new file.
    /// </summary>
    public static void SetDefaultEntry(string diskPath, int entry)
    {
        CheckEntry(entry, nameof(entry));
        if (!File.Exists(diskPath)) throw new FileNotFoundException("no boot disk to change", diskPath);
        BuildBootDisk(diskPath, entry);
    }

    private static void CheckEntry(int entry, string parameter)
    {
        if (entry is not (0 or 1)) throw new ArgumentOutOfRangeException(parameter, entry, "the boot disk has entries 0 and 1");
    }

    /// <summary>The grub.cfg of <see cref="BootDisk"/>, in the shape update-grub writes.</summary>
    public static string GrubCfg(string release, int defaultEntry) => $$"""
        # domboot toolstack test guest
        set default="{{defaultEntry.ToString(CultureInfo.InvariantCulture)}}"
        set timeout=5
        insmod part_gpt
        insmod ext2
        search --no-floppy --fs-uuid --set=root {{BootFsUuid}}
        menuentry 'domboot test guest (first)' --class gnu-linux $menuentry_id_option 'guest-first' {
            linux /boot/vmlinuz-{{release}} {{EntryCmdline(0)}}
            initrd /boot/initrd.img-{{release}}
        }
        menuentry 'domboot test guest (second)' --class gnu-linux $menuentry_id_option 'guest-second' {
            linux /boot/vmlinuz-{{release}} {{EntryCmdline(1)}}
            initrd /boot/initrd.img-{{release}}
        }

        """;

    private static void BuildBootDisk(string path, int defaultEntry)
    {
        var release = Cache.KernelRelease;
        var initramfs = CachedInitramfs();
        var unique = Guid.NewGuid().ToString("N");
        var tree = $"{path}.tree-{unique}";
        var tmp = $"{path}.tmp-{unique}";
        try
        {
            Directory.CreateDirectory(Path.Combine(tree, "boot", "grub"));
            File.Copy(Cache.Kernel, Path.Combine(tree, "boot", "vmlinuz-" + release));
            File.Copy(initramfs, Path.Combine(tree, "boot", "initrd.img-" + release));
            File.WriteAllText(Path.Combine(tree, "boot", "grub", "grub.cfg"), GrubCfg(release, defaultEntry).ReplaceLineEndings("\n"));

            using (var f = new FileStream(tmp, FileMode.CreateNew)) f.SetLength((long)BootDiskMiB << 20);
            Tools.Run("sfdisk", ["--no-reread", "--no-tell-kernel", "-q", tmp],
                stdin: $"label: gpt\nlabel-id: {BootDiskId}\nstart=2048, type=linux, uuid={BootPartitionUuid}, name=guest\n");
            // the partition runs from 1 MiB to the backup GPT 33 sectors before the end; 62 MiB stays clear of it
            Tools.Run("mkfs.ext4", ["-q", "-F", "-U", BootFsUuid, "-L", "guest", "-E", "root_owner=0:0,offset=1048576",
                "-d", tree, tmp, $"{(BootDiskMiB - 2) * 1024}k"],
                env: new Dictionary<string, string> { ["E2FSPROGS_FAKE_TIME"] = "1700000000" });
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            if (Directory.Exists(tree)) Directory.Delete(tree, recursive: true);
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>An empty disk to hot-attach: sparse raw, or qcow2 made with qemu-img create.</summary>
    public static string ScratchDisk(string directory, string name, int mib, string format = "raw")
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(mib);
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, name);
        switch (format)
        {
            case "raw":
                using (var f = new FileStream(path, FileMode.Create)) f.SetLength((long)mib << 20);
                break;
            case "qcow2":
                Tools.Run("qemu-img", "create", "-q", "-f", "qcow2", path, $"{mib.ToString(CultureInfo.InvariantCulture)}M");
                break;
            default:
                throw new ArgumentException($"format is {format}; expected raw or qcow2", nameof(format));
        }
        return path;
    }
}
