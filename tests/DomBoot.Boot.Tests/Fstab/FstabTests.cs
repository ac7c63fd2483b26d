using DomBoot.Boot.Fstab;
using DomBoot.Boot.Model;
using DomBoot.Formats.Errors;
using FstabReader = DomBoot.Boot.Fstab.Fstab;

namespace DomBoot.Boot.Tests.Fstab;

public class FstabTests
{
    private static readonly GuestVolumeInfo Boot = new("(hd0,msdos1)", "vda1", "ext3", "3e6be9de-8139-11d1-9106-a43f08d823a6", "/boot", "0a1b2c3d-01", null);
    private static readonly GuestVolumeInfo Root = new("(hd0,msdos2)", "vda2", "ext4", "5e1c7f2a-0000-4000-8000-00000000000a", "root", "0a1b2c3d-02", null);
    private static readonly GuestVolumeInfo Esp = new("(hd1,gpt1)", "vdb1", "vfat", "ABCD-1234", "ESP", "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "EFI System");
    private static readonly GuestVolumeInfo[] Volumes = [Boot, Root, Esp];

    // CentOS 5 as anaconda writes it: LVM root, LABEL=/boot.
    private const string CentOs5 = """
        /dev/VolGroup00/LogVol00 /                       ext3    defaults        1 1
        LABEL=/boot             /boot                   ext3    defaults        1 2
        tmpfs                   /dev/shm                tmpfs   defaults        0 0
        devpts                  /dev/pts                devpts  gid=5,mode=620  0 0
        sysfs                   /sys                    sysfs   defaults        0 0
        proc                    /proc                   proc    defaults        0 0
        /dev/VolGroup00/LogVol01 swap                    swap    defaults        0 0
        """;

    [Fact]
    public void Parse_CentOs5FindsBootByLabel()
    {
        IReadOnlyList<FstabEntry> entries = FstabReader.Parse(CentOs5, "/etc/fstab");
        Assert.Equal(7, entries.Count);
        Assert.Equal(new FstabEntry("LABEL=/boot", "/boot", "ext3", "defaults", 1, 2, "/etc/fstab:2"), entries[1]);
        FstabEntry? boot = FstabReader.BootMountFor(entries);
        Assert.Same(entries[1], boot);
        Assert.Same(Boot, FstabReader.FindVolume(boot!, Volumes, null));
        Assert.Null(FstabReader.FindVolume(entries[0], Volumes, null));   // LVM: not a plain volume
        Assert.Equal("/vmlinuz-2.6.18", FstabReader.PathOnVolume(boot!, "/boot/vmlinuz-2.6.18"));
    }

    [Fact]
    public void Parse_OpenSuseBtrfsBootIsOnRootSubvolume()
    {
        string text = """
            UUID=5e1c7f2a-0000-4000-8000-00000000000a  /                       btrfs  defaults                      0  0
            UUID=5E1C7F2A-0000-4000-8000-00000000000A  /var                    btrfs  subvol=/@/var                 0  0
            UUID=5e1c7f2a-0000-4000-8000-00000000000a  /boot/grub2/x86_64-efi  btrfs  subvol=/@/boot/grub2/x86_64-efi,subvolid=263  0  0
            UUID=ABCD-1234                             /boot/efi               vfat   utf8                          0  2
            """;
        IReadOnlyList<FstabEntry> entries = FstabReader.Parse(text, "/etc/fstab");
        FstabEntry boot = FstabReader.BootMountFor(entries)!;
        Assert.Equal("/", boot.File);
        Assert.Same(Root, FstabReader.FindVolume(boot, Volumes, null));
        Assert.Same(Root, FstabReader.FindVolume(entries[1], Volumes, null));   // UUIDs compare case-insensitively
        Assert.Null(FstabReader.SubvolOf(boot.MntOps));
        Assert.Equal(new BtrfsSubvolume("/@/var", null), FstabReader.SubvolOf(entries[1].MntOps));
        Assert.Equal(new BtrfsSubvolume("/@/boot/grub2/x86_64-efi", 263UL), FstabReader.SubvolOf(entries[2].MntOps));
        Assert.Equal("/boot/vmlinuz", FstabReader.PathOnVolume(boot, "/boot/vmlinuz"));
    }

    [Theory]
    [InlineData("PARTUUID=0A1B2C3D-02", "(hd0,msdos2)")]
    [InlineData("PARTLABEL=\"EFI System\"", "(hd1,gpt1)")]
    [InlineData("UUID=\"3e6be9de-8139-11d1-9106-a43f08d823a6\"", "(hd0,msdos1)")]
    [InlineData("/dev/disk/by-uuid/ABCD-1234", "(hd1,gpt1)")]
    [InlineData("/dev/disk/by-label/\\x2fboot", "(hd0,msdos1)")]
    [InlineData("/dev/disk/by-partlabel/EFI\\x20System", "(hd1,gpt1)")]
    [InlineData("/dev/disk/by-partuuid/0a1b2c3d-01", "(hd0,msdos1)")]
    [InlineData("/dev/xvda2", "(hd0,msdos2)")]
    [InlineData("/dev/sda1", "(hd0,msdos1)")]
    [InlineData("/dev/hdb1", "(hd1,gpt1)")]
    [InlineData("/dev/vdb1", "(hd1,gpt1)")]
    [InlineData("/dev/xvdc1", null)]
    [InlineData("/dev/mapper/vg-root", null)]
    [InlineData("/dev/nvme0n1p1", null)]
    [InlineData("LABEL=nosuch", null)]
    [InlineData("tmpfs", null)]
    public void FindVolume_ResolvesSpecForms(string spec, string? grubDevice)
    {
        var entry = new FstabEntry(spec, "/boot", "auto", "defaults", 0, 0, "t:1");
        Assert.Equal(grubDevice, FstabReader.FindVolume(entry, Volumes, _ => null)?.GrubDevice);
    }

    [Fact]
    public void FindVolume_GuestDeviceNamesGoThroughTheMapFirst()
    {
        // Guest attached disk 2 as xvda: its xvda1 is our (hd1,gpt1).
        var entry = new FstabEntry("/dev/xvda1", "/boot", "ext4", "defaults", 0, 0, "t:1");
        Assert.Same(Esp, FstabReader.FindVolume(entry, Volumes, n => n == "xvda1" ? "(hd1,gpt1)" : null));
    }

    [Fact]
    public void Parse_OctalEscapesAndDefaults()
    {
        IReadOnlyList<FstabEntry> entries = FstabReader.Parse("LABEL=My\\040Disk /mnt/my\\040disk\\011x ext4\n# c\n\n  /dev/sda3 /srv xfs\r\n", "/etc/fstab");
        Assert.Equal(new FstabEntry("LABEL=My Disk", "/mnt/my disk\tx", "ext4", "defaults", 0, 0, "/etc/fstab:1"), entries[0]);
        Assert.Equal(new FstabEntry("/dev/sda3", "/srv", "xfs", "defaults", 0, 0, "/etc/fstab:4"), entries[1]);
    }

    [Fact]
    public void BootMountFor_NoRootOrBootIsNull()
    {
        Assert.Null(FstabReader.BootMountFor(FstabReader.Parse("/dev/sda1 /home ext4 defaults 0 0\n/dev/sda2 none swap sw 0 0\n", "/etc/fstab")));
        FstabEntry b = FstabReader.BootMountFor(FstabReader.Parse("/dev/sda1 /boot/ ext4 defaults\n/dev/sda2 / ext4 defaults\n", "/etc/fstab"))!;
        Assert.Equal("/dev/sda1", b.Spec);
    }

    public static TheoryData<string, int> MalformedTables => new()
    {
        { "/dev/sda1 /\n", 1 },
        { "/dev/sda1 / ext4 defaults 0 0 extra\n", 1 },
        { "# ok\n/dev/sda1 / ext4 defaults x 0\n", 2 },
        { "/dev/sda1 / ext4 defaults 0 99999999999\n", 1 },
        { "/dev/sda1 / ext4\0 defaults 0 0\n", 1 },
        { "/dev/sda1 /a\\000b ext4\n", 1 },
        { "\n\n" + new string('x', 70_000), 3 },
        { string.Concat(Enumerable.Repeat("#\n", 100_001)), 100_001 },
    };

    [Theory]
    [MemberData(nameof(MalformedTables))]
    public void Parse_RejectsMalformed(string text, int line)
    {
        var ex = Assert.Throws<ConfigSyntaxException>(() => FstabReader.Parse(text, "/etc/fstab"));
        Assert.Equal(line, ex.Line);
    }
}

public class FstabSweepTests
{
    [Fact]
    public void Parse_MutationSweepOnlyAllowedExceptions()
    {
        const string seed = "UUID=\"a b\" /boot\\040x ext4 subvol=/@/boot,subvolid=5 1 2\nLABEL=r / btrfs defaults 0 0\n/dev/xvda2 /srv xfs defaults\n";
        var rng = new Random(1234);
        char[] alphabet = ['\n', ' ', '\\', '0', '7', '9', '=', '"', '/', '\0', '#', 'x'];
        GuestVolumeInfo[] volumes = [new("(hd0,msdos1)", "vda1", "ext4", "a b", "r", null, null)];
        for (int n = 0; n < 3000; n++)
        {
            char[] chars = seed.ToCharArray();
            for (int k = 0; k < 4; k++) chars[rng.Next(chars.Length)] = alphabet[rng.Next(alphabet.Length)];
            try
            {
                foreach (FstabEntry e in FstabReader.Parse(new string(chars), "/etc/fstab"))
                {
                    _ = FstabReader.FindVolume(e, volumes, _ => null);
                    _ = FstabReader.SubvolOf(e.MntOps);
                }
            }
            catch (MalformedDataException)
            {
            }
        }
    }
}

public class DomuLoaderSpecTests
{
    [Theory]
    [InlineData("xvda2:/boot/vmlinuz-xen,/boot/initrd-xen", "xvda2", "/boot/vmlinuz-xen", "/boot/initrd-xen")]
    [InlineData("/dev/hda2:/boot/vmlinuz", "hda2", "/boot/vmlinuz", null)]
    [InlineData("/vmlinuz,/initrd.img", null, "/vmlinuz", "/initrd.img")]
    [InlineData("/boot/vmlinuz", null, "/boot/vmlinuz", null)]
    public void Parse_Accepts(string text, string? device, string kernel, string? initrd) =>
        Assert.Equal(new DomuLoaderSpec(device, kernel, initrd), DomuLoaderSpec.Parse(text));

    [Theory]
    [InlineData("")]
    [InlineData("xvda2:")]
    [InlineData(":/boot/vmlinuz")]
    [InlineData("xvda2:boot/vmlinuz")]
    [InlineData("xvda2:/boot/vmlinuz,")]
    [InlineData("xvda2:/boot/vmlinuz,initrd")]
    [InlineData("xvda2:/a,/b,/c")]
    [InlineData("../x:/boot/vmlinuz")]
    [InlineData("xvda2:/boot/vmlinuz\n/etc/shadow")]
    [InlineData("xvda2:/boot/vm linuz")]
    [InlineData("/")]
    public void Parse_RejectsMalformed(string text) =>
        Assert.Throws<InvalidRequestException>(() => DomuLoaderSpec.Parse(text));

    [Fact]
    public void Parse_RejectsHugeEntry() =>
        Assert.Throws<InvalidRequestException>(() => DomuLoaderSpec.Parse("/" + new string('a', 5000)));
}
