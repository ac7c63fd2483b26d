using DomBoot.Boot.Model;
using DomBoot.Boot.Syslinux;
using DomBoot.Boot.Tests.GrubLegacy;
using DomBoot.Formats.Errors;

namespace DomBoot.Boot.Tests.Syslinux;

public class SyslinuxConfigTests
{
    // Debian 12 netinst ISO layout (isolinux/isolinux.cfg -> menu.cfg -> stdmenu.cfg, txt.cfg), trimmed.
    private const string DebianIsolinux = """
        # D-I config version 2.0
        # search path for the c32 support libraries (libcom32, libutil etc.)
        path
        include menu.cfg
        default vesamenu.c32
        prompt 0
        timeout 0
        """;

    private const string DebianMenuCfg = """
        menu hshift 4
        menu width 70

        menu title Debian GNU/Linux installer menu (BIOS mode)
        include stdmenu.cfg
        include txt.cfg
        menu begin advanced
            menu label ^Advanced options
            menu title Advanced options
            include stdmenu.cfg
            label mainmenu
                menu label ^Back..
                menu exit
            include adtxt.cfg
        menu end
        """;

    private const string DebianTxtCfg = """
        default install
        label install
        	menu label ^Install
        	menu default
        	kernel /install.amd/vmlinuz
        	append vga=788 initrd=/install.amd/initrd.gz --- quiet
        """;

    private const string DebianAdTxtCfg = """
        label expert
        	menu label E^xpert install
        	kernel /install.amd/vmlinuz
        	append priority=low vga=788 initrd=/install.amd/initrd.gz ---
        include rqtxt.cfg
        label auto
        	menu label ^Automated install
        	kernel /install.amd/vmlinuz
        	append auto=true priority=critical vga=788 initrd=/install.amd/initrd.gz --- quiet
        """;

    private static FakeGuestFiles DebianIso() => new FakeGuestFiles()
        .Add("/isolinux/menu.cfg", DebianMenuCfg)
        .Add("/isolinux/stdmenu.cfg", "menu background splash.png\nmenu color title\t* #FFFFFFFF *\n")
        .Add("/isolinux/txt.cfg", DebianTxtCfg)
        .Add("/isolinux/adtxt.cfg", DebianAdTxtCfg)
        .Add("/isolinux/rqtxt.cfg", "label rescue\n\tmenu label ^Rescue mode\n\tkernel /install.amd/vmlinuz\n\tappend vga=788 initrd=/install.amd/initrd.gz rescue/enable=true --- quiet\n");

    [Fact]
    public void Evaluate_DebianIsolinuxFollowsIncludesAndMenuDefault()
    {
        FakeGuestFiles files = DebianIso();
        BootMenu menu = SyslinuxConfig.Evaluate(DebianIsolinux, "/isolinux/isolinux.cfg", files);
        Assert.Equal("syslinux", menu.ConfigFormat);
        Assert.Equal(["install", "mainmenu", "expert", "rescue", "auto"], menu.Entries.Select(e => e.Id));
        Assert.Equal(0, menu.DefaultIndex);
        Assert.Equal("MENU DEFAULT on LABEL \"install\"", menu.DefaultReason);
        Assert.Null(menu.TimeoutSeconds);
        BootEntry e = menu.Entries[0];
        Assert.Equal("Install", e.Title);
        Assert.Equal(new GuestPath(null, "/install.amd/vmlinuz"), e.Kernel);
        Assert.Equal([new GuestPath(null, "/install.amd/initrd.gz")], e.Initrds);
        Assert.Equal("vga=788 initrd=/install.amd/initrd.gz --- quiet", e.Args);
        Assert.Equal("/isolinux/txt.cfg:2", e.Source);
        Assert.Null(menu.Entries[1].Kernel);   // "menu exit" label: nothing to boot
        Assert.Equal("Rescue mode", menu.Entries[3].Title);
    }

    // Alpine's update-extlinux output (anchors 9.17): DEFAULT menu.c32, MENU DEFAULT, relative LINUX/INITRD.
    private const string AlpineExtlinux = """
        DEFAULT menu.c32
        PROMPT 0
        MENU TITLE Alpine/Linux Boot Menu
        MENU HIDDEN
        MENU AUTOBOOT Alpine will be booted automatically in # seconds.
        TIMEOUT 10
        LABEL virt
          MENU LABEL Linux virt
          LINUX vmlinuz-virt
          INITRD initramfs-virt
          APPEND root=UUID=6a1c2d4e-0000-4000-8000-000000000001 modules=sd-mod,usb-storage,ext4 quiet rootfstype=ext4
        LABEL lts
          MENU DEFAULT
          MENU LABEL Linux lts
          LINUX vmlinuz-lts
          INITRD intel-ucode.img,initramfs-lts
          APPEND root=UUID=6a1c2d4e-0000-4000-8000-000000000001 modules=sd-mod,usb-storage,ext4 quiet rootfstype=ext4 initrd=ignored.img
        MENU SEPARATOR
        """;

    [Fact]
    public void Evaluate_AlpineMenuDefaultWithRelativePathsAndSeveralInitrds()
    {
        BootMenu menu = SyslinuxConfig.Evaluate(AlpineExtlinux, "/boot/extlinux.conf", new FakeGuestFiles());
        Assert.Equal(1, menu.DefaultIndex);
        Assert.Equal(1, menu.TimeoutSeconds);
        BootEntry e = menu.Entries[1];
        Assert.Equal("Linux lts", e.Title);
        Assert.Equal(new GuestPath(null, "/boot/vmlinuz-lts"), e.Kernel);
        Assert.Equal([new GuestPath(null, "/boot/intel-ucode.img"), new GuestPath(null, "/boot/initramfs-lts")], e.Initrds);
        Assert.Equal("root=UUID=6a1c2d4e-0000-4000-8000-000000000001 modules=sd-mod,usb-storage,ext4 quiet rootfstype=ext4 initrd=ignored.img", e.Args);
    }

    [Fact]
    public void Evaluate_WithoutMenuDefaultLabelWinsAndMenuDefaultIgnored()
    {
        // No UI: MENU DEFAULT means nothing, DEFAULT names the label (pygrub does the same here).
        string text = "default Second\nlabel first\n  menu default\n  kernel /vmlinuz-1\nLABEL Second\n  KERNEL /vmlinuz-2\n  APPEND -\n";
        BootMenu menu = SyslinuxConfig.Evaluate(text, "/syslinux.cfg", new FakeGuestFiles());
        Assert.Equal(1, menu.DefaultIndex);
        Assert.Equal("", menu.Entries[1].Args);
        Assert.Equal("DEFAULT \"Second\" names LABEL 1", menu.DefaultReason);
    }

    [Fact]
    public void Evaluate_DefaultCommandLineWithGlobalAppend()
    {
        string text = "APPEND console=ttyS0\nDEFAULT vmlinuz initrd=initrd.gz root=/dev/sda1\nTIMEOUT 25\nLABEL other\nKERNEL other\n";
        BootMenu menu = SyslinuxConfig.Evaluate(text, "/boot/syslinux/syslinux.cfg", new FakeGuestFiles());
        Assert.Equal(1, menu.DefaultIndex);
        Assert.Equal(3, menu.TimeoutSeconds);
        BootEntry e = menu.Entries[1];
        Assert.Null(e.Id);
        Assert.Equal(new GuestPath(null, "/boot/syslinux/vmlinuz"), e.Kernel);
        Assert.Equal([new GuestPath(null, "/boot/syslinux/initrd.gz")], e.Initrds);
        Assert.Equal("console=ttyS0 initrd=initrd.gz root=/dev/sda1", e.Args);
        Assert.Equal("console=ttyS0", menu.Entries[0].Args);   // global APPEND for a label without its own
    }

    [Fact]
    public void Evaluate_MbootC32IsMultibootWithModules()
    {
        string text = """
            ui menu.c32
            label xen
              menu label Xen 4.17 / Alpine
              menu default
              kernel mboot.c32
              append xen.gz dom0_mem=1024M,max:1024M --- vmlinuz-lts root=/dev/xvda3 console=hvc0 --- initramfs-lts
            """;
        BootMenu menu = SyslinuxConfig.Evaluate(text, "/boot/extlinux.conf", new FakeGuestFiles());
        BootEntry e = menu.Entries[menu.DefaultIndex];
        Assert.Equal(BootEntryKind.Multiboot, e.Kind);
        Assert.Equal(new GuestPath(null, "/boot/xen.gz"), e.Kernel);
        Assert.Equal("dom0_mem=1024M,max:1024M", e.Args);
        Assert.Equal(
            [
                new BootModule(new GuestPath(null, "/boot/vmlinuz-lts"), "root=/dev/xvda3 console=hvc0"),
                new BootModule(new GuestPath(null, "/boot/initramfs-lts"), ""),
            ],
            e.Modules);
        Assert.Empty(e.Initrds);
    }

    [Fact]
    public void Evaluate_TextBlocksAreNotDirectivesAndMissingIncludeWarns()
    {
        string text = "default a\ntext help\nlabel evil\nkernel /evil\nendtext\ninclude /nope.cfg\nlabel a\nkernel /a\n";
        BootMenu menu = SyslinuxConfig.Evaluate(text, "/syslinux.cfg", new FakeGuestFiles());
        BootEntry e = Assert.Single(menu.Entries);
        Assert.Equal("a", e.Id);
        Assert.Contains(menu.Warnings, w => w.Contains("INCLUDE \"/nope.cfg\" not found", StringComparison.Ordinal));
    }

    [Fact]
    public void Evaluate_Com32EntriesHaveNoKernel()
    {
        BootMenu menu = SyslinuxConfig.Evaluate("default hdt\nlabel hdt\ncom32 hdt.c32\nlabel local\nlocalboot 0\n", "/syslinux.cfg", new FakeGuestFiles());
        Assert.Equal(0, menu.DefaultIndex);
        Assert.All(menu.Entries, e => Assert.Null(e.Kernel));
    }

    [Fact]
    public void Evaluate_RejectsIncludeLoop()
    {
        FakeGuestFiles files = new FakeGuestFiles().Add("/syslinux/a.cfg", "label x\nkernel /x\ninclude b.cfg\n").Add("/syslinux/b.cfg", "include a.cfg\n");
        var ex = Assert.Throws<ConfigSyntaxException>(() => SyslinuxConfig.Evaluate("include a.cfg\n", "/syslinux/syslinux.cfg", files));
        Assert.Equal("/syslinux/b.cfg", ex.FileName);
        Assert.Equal(1, ex.Line);
    }

    [Fact]
    public void Evaluate_RejectsIncludeDepthBomb()
    {
        var files = new FakeGuestFiles();
        for (int i = 0; i < 40; i++) files.Add($"/s/{i}.cfg", $"include {i + 1}.cfg\n");
        var ex = Assert.Throws<ConfigSyntaxException>(() => SyslinuxConfig.Evaluate("include 0.cfg\n", "/s/syslinux.cfg", files));
        Assert.Contains("nested deeper than 16", ex.Message, StringComparison.Ordinal);
        Assert.True(files.Reads.Count <= 17);
    }

    [Theory]
    [InlineData("label a\nkernel /a\0\n", 2)]
    [InlineData("label a\nappend \0\n", 2)]
    public void Evaluate_RejectsNul(string text, int line)
    {
        var ex = Assert.Throws<ConfigSyntaxException>(() => SyslinuxConfig.Evaluate(text, "/syslinux.cfg", new FakeGuestFiles()));
        Assert.Equal(line, ex.Line);
    }

    [Fact]
    public void Evaluate_RejectsNulInIncludedFile()
    {
        FakeGuestFiles files = new FakeGuestFiles().Add("/inc.cfg", "label a\n\0\n");
        var ex = Assert.Throws<ConfigSyntaxException>(() => SyslinuxConfig.Evaluate("include inc.cfg\n", "/syslinux.cfg", files));
        Assert.Equal("/inc.cfg", ex.FileName);
        Assert.Equal(2, ex.Line);
    }

    [Fact]
    public void Evaluate_MutationSweepOnlyAllowedExceptions()
    {
        var rng = new Random(1234);
        char[] alphabet = ['\n', ' ', ',', '/', '-', 'a', '#', '\0', '\t', '^', '.'];
        for (int n = 0; n < 2000; n++)
        {
            char[] chars = AlpineExtlinux.ToCharArray();
            for (int k = 0; k < 5; k++) chars[rng.Next(chars.Length)] = alphabet[rng.Next(alphabet.Length)];
            try
            {
                BootMenu menu = SyslinuxConfig.Evaluate(new string(chars), "/boot/extlinux.conf", new FakeGuestFiles());
                Assert.True(menu.DefaultIndex < menu.Entries.Count);
            }
            catch (MalformedDataException)
            {
            }
        }
    }
}
