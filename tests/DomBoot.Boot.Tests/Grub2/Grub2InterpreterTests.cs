using DomBoot.Boot.Grub2;
using DomBoot.Boot.Model;
using DomBoot.Formats.Errors;

namespace DomBoot.Boot.Tests.Grub2;

public sealed class Grub2InterpreterTests
{
    private const string Cfg = "/boot/grub/grub.cfg";
    private const string Uuid = Grub2Samples.RootUuid;

    private static BootMenu Eval(string text, FakeGuestFiles? files = null, Grub2Options? options = null, string path = Cfg) =>
        Grub2Interpreter.Evaluate(text, path, files ?? Grub2Samples.DebianDisk(), options);

    private static BootEntry Default(BootMenu m) => m.Entries[m.DefaultIndex];

    // ---- Debian 12 ----

    [Fact]
    public void Evaluate_Debian12_DefaultZeroIsTopEntry()
    {
        var m = Eval(Grub2Samples.Debian12("0"));
        Assert.Equal("grub2", m.ConfigFormat);
        Assert.Equal(0, m.DefaultIndex);
        Assert.Equal(5, m.TimeoutSeconds);
        var e = Default(m);
        Assert.Equal("Debian GNU/Linux", e.Title);
        Assert.Equal("gnulinux-simple-" + Uuid, e.Id);
        Assert.Equal(BootEntryKind.Linux, e.Kind);
        Assert.Equal(new GuestPath("(hd0,gpt2)", "/boot/vmlinuz-6.1.0-18-amd64"), e.Kernel);
        Assert.Equal([new GuestPath("(hd0,gpt2)", "/boot/initrd.img-6.1.0-18-amd64")], e.Initrds);
        Assert.Equal($"root=UUID={Uuid} ro quiet", e.Args);
        Assert.Equal(Cfg + ":120", e.Source);
        Assert.Equal(["Debian GNU/Linux"], e.MenuPath);
    }

    [Fact]
    public void Evaluate_Debian12_FlattensSubmenusInOrder()
    {
        var m = Eval(Grub2Samples.Debian12("0"));
        Assert.Equal(
            ["Debian GNU/Linux", "Debian GNU/Linux, with Linux 6.1.0-18-amd64", "Debian GNU/Linux, with Linux 6.1.0-18-amd64 (recovery mode)",
             "Debian GNU/Linux, with Linux 6.1.0-17-amd64", "Debian GNU/Linux, with Xen hypervisor",
             "Debian GNU/Linux, with Xen 4.17-amd64 and Linux 6.1.0-18-amd64"],
            m.Entries.Select(e => e.Title));
        Assert.Equal(Enumerable.Range(0, 6), m.Entries.Select(e => e.Index));
        Assert.Equal(["Advanced options for Debian GNU/Linux (with Xen hypervisor)", "Xen hypervisor, version 4.17-amd64", "Debian GNU/Linux, with Xen 4.17-amd64 and Linux 6.1.0-18-amd64"], m.Entries[5].MenuPath);
        Assert.Equal("root=UUID=" + Uuid + " ro single", m.Entries[2].Args);
        Assert.DoesNotContain(m.Entries, e => e.Title == "UEFI Firmware Settings");
    }

    [Fact]
    public void Evaluate_Debian12_XenEntryIsMultibootWithModules()
    {
        var m = Eval(Grub2Samples.Debian12("2"));
        var e = Default(m);
        Assert.Equal("Debian GNU/Linux, with Xen hypervisor", e.Title);
        Assert.Equal(BootEntryKind.Multiboot, e.Kind);
        Assert.Equal(new GuestPath("(hd0,gpt2)", "/boot/xen-4.17-amd64.gz"), e.Kernel);
        Assert.Equal("placeholder dom0_mem=1024M", e.Args);
        Assert.Empty(e.Initrds);
        Assert.Equal(2, e.Modules.Count);
        Assert.Equal(new BootModule(new GuestPath("(hd0,gpt2)", "/boot/vmlinuz-6.1.0-18-amd64"), $"placeholder root=UUID={Uuid} ro quiet"), e.Modules[0]);
        Assert.Equal(new BootModule(new GuestPath("(hd0,gpt2)", "/boot/initrd.img-6.1.0-18-amd64"), ""), e.Modules[1]);
    }

    [Fact]
    public void Evaluate_EfiPlatform_AddsFirmwareEntryAndXenOptions()
    {
        var m = Eval(Grub2Samples.Debian12("2"), options: new Grub2Options { Platform = "efi" });
        Assert.Equal("placeholder dom0_mem=1024M no-real-mode edd=off", Default(m).Args);
        Assert.Contains(m.Entries, e => e.Title == "UEFI Firmware Settings" && e.Kernel is null);
    }

    // ---- every default form ----

    public static TheoryData<string, int> DefaultForms => new()
    {
        { "0", 0 },
        { "1", 1 },                 // top-level item 1 = the submenu -> its entry 0
        { "2", 4 },                 // numbers count top-level items (submenu = one), not the flat list
        { "3", 5 },
        { "1>0", 1 },
        { "1>1", 2 },
        { "1>2", 3 },
        { "3>0>0", 5 },
        { "Debian GNU/Linux, with Xen hypervisor", 4 },
        { "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-17-amd64", 3 },
        { "gnulinux-advanced-" + Uuid + ">gnulinux-6.1.0-18-amd64-recovery-" + Uuid, 2 },
        { "xen-gnulinux-simple-" + Uuid, 4 },
        { "Advanced options for Debian GNU/Linux>1", 2 },
        { "0x2", 4 },
        { "010", 0 },               // octal 8: out of range -> 0
        { "2 Debian GNU/Linux", 4 }, // grub_strtoul ignores what follows the number
        { "no such entry", 0 },
        { "17", 0 },
        { "1>9", 1 },
        { "", 0 },
    };

    [Theory]
    [MemberData(nameof(DefaultForms))]
    public void Evaluate_SelectsDefaultAsGrub(string spec, int expected)
    {
        var m = Eval(Grub2Samples.Debian12(spec));
        Assert.Equal(expected, m.DefaultIndex);
        Assert.Contains("default", m.DefaultReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_SavedEntryFromGrubenv()
    {
        var env = FakeGuestFiles.GrubEnv("saved_entry=Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-17-amd64");
        var m = Eval(Grub2Samples.Debian12("${saved_entry}"), Grub2Samples.DebianDisk(env));
        Assert.Equal(3, m.DefaultIndex);
        Assert.Contains("$saved_entry", m.DefaultReason, StringComparison.Ordinal);
        Assert.Contains("grubenv (hd0,gpt2)/boot/grub/grubenv", m.DefaultReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_NextEntryWinsOverSavedEntry()
    {
        var env = FakeGuestFiles.GrubEnv("saved_entry=0", "next_entry=xen-gnulinux-simple-" + Uuid);
        var m = Eval(Grub2Samples.Debian12("${saved_entry}"), Grub2Samples.DebianDisk(env));
        Assert.Equal(4, m.DefaultIndex);
        Assert.Contains("$next_entry", m.DefaultReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_SavedEntryMissingFallsBackToZero()
    {
        var m = Eval(Grub2Samples.Debian12("${saved_entry}"));
        Assert.Equal(0, m.DefaultIndex);
    }

    [Fact]
    public void Evaluate_LiteralSavedIsATitleLookupInGrub2()
    {
        // GRUB 2 has no `saved` keyword at run time (grub-mkconfig turns GRUB_DEFAULT=saved into ${saved_entry}).
        var m = Eval("set default=saved\nmenuentry a { linux /a }\nmenuentry saved { linux /s }\n");
        Assert.Equal(1, m.DefaultIndex);
    }

    [Fact]
    public void Evaluate_FallbackList()
    {
        var m = Eval(Grub2Samples.Debian12("0") + "\nset fallback=\"1>2 xen-gnulinux-simple-" + Uuid + " nothing\"\n");
        Assert.Equal([3, 4], m.FallbackIndexes);
        Assert.Contains(m.Warnings, w => w.Contains("fallback", StringComparison.Ordinal));
    }

    [Fact]
    public void Evaluate_EscapedGreaterThanInTitle()
    {
        var m = Eval("set default='a>>b>x'\nmenuentry 'z' { linux /z }\nsubmenu 'a>b' { menuentry y { linux /y }\nmenuentry x { linux /x } }\n");
        Assert.Equal("x", Default(m).Title);
    }

    [Fact]
    public void Evaluate_SubmenuOwnDefault()
    {
        var m = Eval("set default=1\nmenuentry z { linux /z }\nsubmenu s { set default=1\nmenuentry y { linux /y }\nmenuentry x { linux /x } }\n");
        Assert.Equal("x", Default(m).Title);
    }

    [Fact]
    public void Evaluate_EmptyMenu()
    {
        var m = Eval("set timeout=3\n");
        Assert.Empty(m.Entries);
        Assert.Equal(-1, m.DefaultIndex);
        Assert.Equal(3, m.TimeoutSeconds);
    }

    // ---- Fedora / RHEL BLS ----

    [Fact]
    public void Evaluate_Blscfg_SortsNewestFirstAndExpandsKernelopts()
    {
        var m = Eval(Grub2Samples.FedoraBls, Grub2Samples.FedoraDisk(null), path: "/grub2/grub.cfg");
        Assert.Equal(
            ["5.14.0-362.24.1.el9_3.x86_64", "5.14.0-362.8.1.el9_3.x86_64", "5.14.0-70.13.1.el9_0.x86_64", "0-rescue-" + Grub2Samples.MachineId],
            m.Entries.Select(e => e.Kernel!.Path["/vmlinuz-".Length..]));
        Assert.Equal(0, m.DefaultIndex);
        var e = m.Entries[0];
        Assert.Equal(Grub2Samples.MachineId + "-5.14.0-362.24.1.el9_3.x86_64", e.Id);
        Assert.Equal("root=/dev/mapper/rhel-root ro rd.lvm.lv=rhel/root console=hvc0 boot_success=0", e.Args);
        Assert.Equal([new GuestPath("(hd0,gpt2)", "/initramfs-5.14.0-362.24.1.el9_3.x86_64.img")], e.Initrds);
        Assert.Equal(new GuestPath("(hd0,gpt2)", "/vmlinuz-5.14.0-362.24.1.el9_3.x86_64"), e.Kernel);
        Assert.StartsWith("(hd0,gpt2)/loader/entries/", e.Source, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_Blscfg_SavedEntryIsFileId()
    {
        string id = Grub2Samples.MachineId + "-5.14.0-70.13.1.el9_0.x86_64";
        var m = Eval(Grub2Samples.FedoraBls, Grub2Samples.FedoraDisk(id), path: "/grub2/grub.cfg");
        Assert.Equal(id, Default(m).Id);
        Assert.Equal(2, m.DefaultIndex);
    }

    [Fact]
    public void Evaluate_Blscfg_FallbackKerneloptsWithoutGrubenv()
    {
        var files = Grub2Samples.FedoraDisk(null);
        files.Add("(hd0,gpt2)", "/grub2/grubenv", "not an env block");
        var m = Eval(Grub2Samples.FedoraBls, files, path: "/grub2/grub.cfg");
        Assert.Equal("root=/dev/mapper/rhel-root ro crashkernel=auto resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap rhgb quiet", m.Entries[0].Args);
        Assert.Contains(m.Warnings, w => w.Contains("GRUB Environment Block", StringComparison.Ordinal));
    }

    [Fact]
    public void Evaluate_Blscfg_BootOnRootFs()
    {
        var files = new FakeGuestFiles("(hd0,msdos1)")
            .Volume("(hd0,msdos1)", "vda1", "u1")
            .Add("(hd0,msdos1)", "/boot/loader/entries/abc-6.5.6-300.fc39.x86_64.conf", "title Fedora Linux (6.5.6-300.fc39.x86_64) 39\nversion 6.5.6-300.fc39.x86_64\nlinux /vmlinuz-6.5.6-300.fc39.x86_64\ninitrd /initramfs-6.5.6-300.fc39.x86_64.img\noptions root=UUID=u1 ro\n")
            .Add("(hd0,msdos1)", "/boot/vmlinuz-6.5.6-300.fc39.x86_64", "k");
        var m = Eval("blscfg\n", files, path: "/boot/grub2/grub.cfg");
        var e = Assert.Single(m.Entries);
        Assert.Equal(new GuestPath("(hd0,msdos1)", "/boot/vmlinuz-6.5.6-300.fc39.x86_64"), e.Kernel);
        Assert.Equal("root=UUID=u1 ro", e.Args);
    }

    // ---- pygrub's known failures (anchors section 9) ----

    [Fact]
    public void Evaluate_SetValueContainingEquals()
    {
        var m = Eval("set kernelopts=\"root=/dev/mapper/rhel-root ro a=b=c\"\nmenuentry x { linux /vmlinuz $kernelopts }\n");
        Assert.Equal("root=/dev/mapper/rhel-root ro a=b=c", Default(m).Args);
    }

    [Fact]
    public void Evaluate_RootDevicePrefixAndVariables()
    {
        var m = Eval("""
            set vt_handoff=vt.handoff=7
            menuentry 'Ubuntu' {
              search --no-floppy --fs-uuid --set=root ABCD-1234
              linux ($root)/vmlinuz root=/dev/sda2 ro quiet splash $vt_handoff ${extra_cmdline}
              initrd (hd0,msdos5)/intel-ucode.img /initramfs-linux.img
            }
            """);
        var e = Default(m);
        Assert.Equal(new GuestPath("(hd0,gpt1)", "/vmlinuz"), e.Kernel);
        Assert.Equal("root=/dev/sda2 ro quiet splash vt.handoff=7", e.Args);
        Assert.Equal([new GuestPath("(hd0,msdos5)", "/intel-ucode.img"), new GuestPath("(hd0,gpt1)", "/initramfs-linux.img")], e.Initrds);
    }

    [Fact]
    public void Evaluate_IfAppliesOnlyTheTakenBranch()
    {
        var m = Eval("""
            if [ "$grub_platform" = efi ]; then
              set default=1
            elif [ -f /boot/marker ]; then
              set default=2
            else
              set default=0
            fi
            menuentry a { linux /a }
            menuentry b { linux /b }
            menuentry c { linux /c }
            """, Grub2Samples.DebianDisk().Add("(hd0,gpt2)", "/boot/marker", "x"));
        Assert.Equal("c", Default(m).Title);
    }

    [Fact]
    public void Evaluate_DefaultEntryWithoutLinuxStillListed()
    {
        var m = Eval("menuentry 'fw' { fwsetup }\nmenuentry 'chain' { chainloader +1 }\nmenuentry l { linux /l }\n");
        Assert.Null(m.Entries[0].Kernel);
        Assert.Null(m.Entries[1].Kernel);
        Assert.Equal(0, m.DefaultIndex);
    }

    [Fact]
    public void Evaluate_UnquotedTitleAndCrLf()
    {
        var m = Eval("menuentry Plain-Title --id p {\r\n  linux /vmlinuz ro\r\n}\r\n");
        Assert.Equal("Plain-Title", Default(m).Title);
        Assert.Equal("ro", Default(m).Args);
    }

    [Fact]
    public void Evaluate_BraceOnNextLineIsNotAnEntry()
    {
        var m = Eval("menuentry 'x'\n{\n  linux /x\n}\n");
        Assert.Empty(m.Entries);
        Assert.Contains(m.Warnings, w => w.Contains("without a { } block", StringComparison.Ordinal));
    }

    [Fact]
    public void Evaluate_EntryBodiesSeeFinalVariables()
    {
        var m = Eval("set opts=early\nmenuentry a { linux /a $opts }\nset opts=late\n");
        Assert.Equal("late", Default(m).Args);
    }

    // ---- quoting and escaping ----

    public static TheoryData<string, string> QuotingCases => new()
    {
        { "linux /k a 'b c' d", "a \"b c\" d" },
        { "linux /k \"x=$v\"", "\"x=1 2\"" },
        { "linux /k x=$v", "x=1 2" },
        { "linux /k '$v'", "$v" },
        { "linux /k a\\ b", "\"a b\"" },
        { "linux /k \"q\\\"uote\"", "q\\\"uote" },
        { "linux /k \"LABEL=CentOS\\x207\"", "LABEL=CentOS\\x207" },
        { "linux /k a;   echo hi", "a" },
        { "linux /k it\\'s", "it\\'s" },
        { "linux /k \"\" e", " e" },
        { "linux /k ${v}x", "1 2x" },
        { "linux /k \\$v", "$v" },
        { "linux /k a\\\n b", "a b" },
        { "linux /k $1$#", "0" },
        { "linux /k $", "$" },
        { "linux /k # comment", "" },
        { "linux /k a#b", "a#b" },
    };

    [Theory]
    [MemberData(nameof(QuotingCases))]
    public void Evaluate_QuotingAndExpansion(string line, string expectedArgs)
    {
        var m = Eval($"set v=\"1 2\"\nmenuentry t {{\n{line}\n}}\n");
        Assert.Equal(expectedArgs, Default(m).Args);
    }

    // ---- functions, source, configfile ----

    [Fact]
    public void Evaluate_FunctionsWithPositionalArgs()
    {
        var m = Eval("""
            function mk {
              menuentry "$1" --id "id-$2" {
                linux /vmlinuz-$1 $2
              }
            }
            mk 6.1 quiet
            mk 6.2 debug
            set default=id-debug
            """);
        Assert.Equal(["6.1", "6.2"], m.Entries.Select(e => e.Title));
        Assert.Equal(1, m.DefaultIndex);
        // entry bodies run at boot time, where $1/$2 are the menuentry's own extra args (none here)
        Assert.Equal(new GuestPath("(hd0,gpt2)", "/vmlinuz-"), Default(m).Kernel);
    }

    [Fact]
    public void Evaluate_SourceAddsEntriesAndVariables()
    {
        var files = Grub2Samples.DebianDisk()
            .Add("(hd0,gpt2)", "/boot/grub/custom.cfg", "set default=custom\nmenuentry 'custom' --id custom { linux /custom }\n");
        var m = Eval(Grub2Samples.Debian12("0"), files);
        Assert.Equal("custom", Default(m).Title);
        Assert.Equal("(hd0,gpt2)/boot/grub/custom.cfg:2", Default(m).Source);
    }

    [Fact]
    public void Evaluate_ConfigfileReplacesMenu_UbuntuEspStub()
    {
        var files = new FakeGuestFiles("(hd0,gpt15)")
            .Volume("(hd0,gpt1)", "vda1", "root-uuid", "cloudimg-rootfs")
            .Volume("(hd0,gpt15)", "vda15", "ESP-UUID", "UEFI", "vfat")
            .Add("(hd0,gpt1)", "/boot/grub/grub.cfg", "set timeout=1\nmenuentry 'Ubuntu' { linux /boot/vmlinuz root=LABEL=cloudimg-rootfs ro }\n");
        string stub = "menuentry 'stub' { linux /nothing }\nsearch.fs_uuid root-uuid root\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\nmenuentry 'never' { linux /never }\n";
        var m = Grub2Interpreter.Evaluate(stub, "/EFI/ubuntu/grub.cfg", files);
        var e = Assert.Single(m.Entries);
        Assert.Equal("Ubuntu", e.Title);
        Assert.Equal(new GuestPath("(hd0,gpt1)", "/boot/vmlinuz"), e.Kernel);
        Assert.Equal("(hd0,gpt1)/boot/grub/grub.cfg", m.ConfigPath);
        Assert.Equal(1, m.TimeoutSeconds);
    }

    [Fact]
    public void Evaluate_SourceLoop_Bounded()
    {
        var files = Grub2Samples.DebianDisk().Add("(hd0,gpt2)", "/boot/grub/loop.cfg", "source /boot/grub/loop.cfg\n");
        var ex = Assert.Throws<MalformedDataException>(() => Eval("source /boot/grub/loop.cfg\n", files));
        Assert.Contains("source depth 17", ex.Message, StringComparison.Ordinal);
        Assert.Contains("limit of 16", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_ConfigfileLoop_Bounded()
    {
        var files = Grub2Samples.DebianDisk().Add("(hd0,gpt2)", "/boot/grub/grub.cfg", "configfile $config_file\n");
        var ex = Assert.Throws<MalformedDataException>(() => Eval("configfile /boot/grub/grub.cfg\n", files));
        Assert.Contains("configfile depth 17", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_RecursionBomb_StepLimit()
    {
        var text = "function f0 { true; }\n" + string.Concat(Enumerable.Range(1, 12).Select(i => $"function f{i} {{ f{i - 1}; f{i - 1}; f{i - 1}; f{i - 1}; f{i - 1}; f{i - 1}; f{i - 1}; f{i - 1}; }}\n")) + "f12\n";
        var ex = Assert.Throws<MalformedDataException>(() => Eval(text));
        Assert.Contains("limit of 1000000 steps", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_InfiniteRecursion_DepthLimit()
    {
        var ex = Assert.Throws<MalformedDataException>(() => Eval("function f { f; }\nf\n"));
        Assert.Contains("function call depth 65", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_InfiniteLoop_StepLimit()
    {
        var ex = Assert.Throws<MalformedDataException>(() => Eval("while true; do set a=b; done\n", options: new Grub2Options { MaxSteps = 10_000 }));
        Assert.Contains("limit of 10000 steps", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_VariableDoubling_Bounded()
    {
        var ex = Assert.Throws<MalformedDataException>(() => Eval("set a=xxxxxxxxxxxxxxxx\nfor i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26; do set a=\"$a$a\"; done\n"));
        Assert.Contains("limit of 1048576", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_TooManyEntries_Bounded()
    {
        var ex = Assert.Throws<MalformedDataException>(() => Eval("for i in 1 2 3 4 5 6; do menuentry $i { linux /k }; done\n", options: new Grub2Options { MaxEntries = 5 }));
        Assert.Contains("more than 5 menu entries", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_DeepNesting_Refused()
    {
        string text = string.Concat(Enumerable.Repeat("if true; then\n", 5000)) + string.Concat(Enumerable.Repeat("fi\n", 5000));
        var ex = Assert.Throws<ConfigSyntaxException>(() => Eval(text));
        Assert.Equal($"{Cfg}:100:4: nesting deeper than 100", ex.Message);
    }

    [Fact]
    public void Evaluate_DeepFunctionAndBlockNesting_Bounded()
    {
        string nested = string.Concat(Enumerable.Repeat("if true; then ", 90)) + "f" + string.Concat(Enumerable.Repeat("; fi", 90));
        var ex = Assert.Throws<MalformedDataException>(() => Eval($"function f {{ {nested}; }}\nf\n"));
        Assert.Contains("deeper than 400", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_OversizedConfig_Refused()
    {
        var big = new string('#', 17 * 1024 * 1024);
        var ex = Assert.Throws<MalformedDataException>(() => Eval(big));
        Assert.Contains("larger than the limit of 16777216 bytes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_HundredMegabyteSourcedFile_RefusedBySize()
    {
        var files = Grub2Samples.DebianDisk().AddHuge("(hd0,gpt2)", "/boot/grub/huge.cfg", 100L * 1024 * 1024);
        var ex = Assert.Throws<MalformedDataException>(() => Eval("source /boot/grub/huge.cfg\n", files));
        Assert.Contains("104857600 bytes", ex.Message, StringComparison.Ordinal);
        Assert.Empty(files.Reads);
    }

    [Fact]
    public void Evaluate_NulAndInvalidUtf8()
    {
        byte[] bytes = [.. "menuentry 'caf"u8, 0xC3, 0x28, .. "' { linux /k a\0b c\n}\nmenuentry after { linux /after }\n"u8];
        var files = Grub2Samples.DebianDisk().Add("(hd0,gpt2)", "/boot/grub/bad.cfg", bytes);
        var m = Eval("source /boot/grub/bad.cfg\n", files);
        Assert.Equal(2, m.Entries.Count);
        Assert.Equal("caf\uFFFD(", m.Entries[0].Title);
        Assert.Equal("a", m.Entries[0].Args);
        Assert.Contains(m.Warnings, w => w.Contains("NUL", StringComparison.Ordinal));
    }

    [Fact]
    public void Evaluate_InjectionInTitlesIsText()
    {
        var m = Eval("""
            menuentry '$(rm -rf /); `reboot` ${root}' --id "x\";reboot" { linux "/boot/vmlinuz;rm -rf /" "a\nb" }
            menuentry "../../etc/passwd" { linux ../../../etc/shadow }
            """);
        Assert.Equal("$(rm -rf /); `reboot` ${root}", m.Entries[0].Title);
        Assert.Equal("x\";reboot", m.Entries[0].Id);
        Assert.Equal("/boot/vmlinuz;rm -rf /", m.Entries[0].Kernel!.Path);
        Assert.Equal("a\\\\nb", m.Entries[0].Args);
        Assert.Equal(new GuestPath("(hd0,gpt2)", "../../../etc/shadow"), m.Entries[1].Kernel);
    }

    [Fact]
    public void Evaluate_SearchByLabelAndFile()
    {
        var files = Grub2Samples.DebianDisk().Add("(hd0,gpt1)", "/EFI/marker", "x");
        var m = Eval("search --label --set=boot EFI\nsearch --no-floppy --file --set /EFI/marker\nmenuentry a { linux /k $boot }\n", files);
        Assert.Equal(new GuestPath("(hd0,gpt1)", "/k"), Default(m).Kernel);
        Assert.Equal("hd0,gpt1", Default(m).Args);
    }

    [Fact]
    public void Evaluate_TestOperators()
    {
        var files = Grub2Samples.DebianDisk().Add("(hd0,gpt2)", "/boot/empty", "").Add("(hd0,gpt2)", "/boot/full", "x");
        var m = Eval("""
            r=""
            if [ -s /boot/full ]; then r="${r}s"; fi
            if [ -s /boot/empty ]; then r="${r}S"; fi
            if [ -f /boot/empty ]; then r="${r}f"; fi
            if [ -d /boot ]; then r="${r}d"; fi
            if [ -e /nope ]; then r="${r}E"; fi
            if [ ! -e /nope ]; then r="${r}!"; fi
            if [ -z "" -a -n x ]; then r="${r}z"; fi
            if test a != b; then r="${r}n"; fi
            if [ 10 -gt 9 ]; then r="${r}g"; fi
            if [ x = y -o x = x ]; then r="${r}o"; fi
            if [ missing-bracket; then r="${r}B"; fi
            menuentry a { linux /k $r }
            """, files);
        Assert.Equal("sfd!zngo", Default(m).Args);
    }

    // ---- malformed syntax ----

    public static TheoryData<string, int, int, string> SyntaxErrors => new()
    {
        { "set a='x\n", 1, 7, "unterminated single quote" },
        { "echo ok\nset a=\"x\n\n", 2, 7, "unterminated double quote" },
        { "menuentry 'a' {\n linux /k\n", 1, 15, "unterminated block (missing })" },
        { "if true; then\n set a=b\n", 1, 1, "unterminated if (missing fi)" },
        { "  fi\n", 1, 3, "unexpected fi" },
        { "echo\n}\n", 2, 1, "unexpected }" },
        { "echo ${abc\n", 1, 6, "unterminated variable reference ${" },
        { "echo ${a b}\n", 1, 6, "invalid variable name \"a b\"" },
        { "function {\n}\n", 1, 1, "function without a name" },
        { "while true; do\n", 1, 1, "unterminated while (missing done)" },
    };

    [Theory]
    [MemberData(nameof(SyntaxErrors))]
    public void Evaluate_RejectsMalformedSyntax(string text, int line, int col, string detail)
    {
        var ex = Assert.Throws<ConfigSyntaxException>(() => Eval(text));
        Assert.Equal($"{Cfg}:{line}:{col}: {detail}", ex.Message);
        Assert.Equal(line, ex.Line);
        Assert.Equal(col, ex.Column);
    }

    private const string Alphabet = "{}'\"$;\n\\#>[]()= xa0";

    [Fact]
    public void Evaluate_MutationSweep_OnlyAllowedExceptions()
    {
        string baseText = Grub2Samples.Debian12("1>0");
        var rng = new Random(1234);
        var env = FakeGuestFiles.GrubEnv("saved_entry=1>2");
        for (int iter = 0; iter < 300; iter++)
        {
            var chars = baseText.ToCharArray();
            int flips = 1 + rng.Next(8);
            for (int k = 0; k < flips; k++)
                chars[rng.Next(chars.Length)] = Alphabet[rng.Next(Alphabet.Length)];
            string text = new string(chars, 0, rng.Next(chars.Length / 2, chars.Length + 1));
            try
            {
                var m = Eval(text, Grub2Samples.DebianDisk(env));
                Assert.True(m.DefaultIndex >= -1 && m.DefaultIndex < Math.Max(1, m.Entries.Count));
            }
            catch (MalformedDataException)
            {
                // allowed: syntax error or a limit
            }
        }
    }
}

public sealed class Grub2InterpreterDetailTests
{
    private const string Cfg = "/boot/grub/grub.cfg";

    private static BootMenu Eval(string text, FakeGuestFiles? files = null) =>
        Grub2Interpreter.Evaluate(text, Cfg, files ?? Grub2Samples.DebianDisk());

    [Fact]
    public void Evaluate_DefaultReasonNamesTheChain()
    {
        var files = Grub2Samples.DebianDisk(FakeGuestFiles.GrubEnv("saved_entry=1>1"));
        var m = Eval("load_env\nset default=\"${saved_entry}\"\nmenuentry a { linux /a }\nsubmenu 'S' { menuentry b { linux /b }\nmenuentry c { linux /c } }\n", files);
        Assert.Equal(2, m.DefaultIndex);
        Assert.Equal(
            "default=\"1>1\" (set at /boot/grub/grub.cfg:2 from $saved_entry (grubenv (hd0,gpt2)/boot/grub/grubenv)) -> item 1 \"S\" > item 1 \"c\"",
            m.DefaultReason);
    }

    [Fact]
    public void Evaluate_LoadEnvFileOptionWhitelistAndEscapes()
    {
        var env = FakeGuestFiles.GrubEnv("a=one\\\\two", "b=x\\\ny", "c=skipped");
        var files = Grub2Samples.DebianDisk().Add("(hd0,gpt1)", "/EFI/debian/grubenv", env);
        var m = Eval("load_env -f (hd0,gpt1)/EFI/debian/grubenv a b\nmenuentry t { linux /k \"$a\" \"$b\" \"$c\" }\n", files);
        Assert.Equal("one\\\\two x\ny ", m.Entries[0].Args); // a newline is not a space: GRUB does not quote it
    }

    [Fact]
    public void Evaluate_SearchPrefersHintedVolume()
    {
        var files = new FakeGuestFiles("(hd0,gpt1)")
            .Volume("(hd0,gpt1)", "vda1", "dup")
            .Volume("(hd1,gpt1)", "vdb1", "dup");
        var m = Eval("search --fs-uuid --set=root --hint-bios=hd1,gpt1 dup\nmenuentry t { linux /k }\n", files);
        Assert.Equal("(hd1,gpt1)", m.Entries[0].Kernel!.Device);
    }

    [Fact]
    public void Evaluate_SyntaxErrorInSourcedFileNamesThatFile()
    {
        var files = Grub2Samples.DebianDisk().Add("(hd0,gpt2)", "/boot/grub/bad.cfg", "echo ok\n  menuentry \"x { linux /k }\n");
        var ex = Assert.Throws<ConfigSyntaxException>(() => Eval("source /boot/grub/bad.cfg\n", files));
        Assert.Equal("(hd0,gpt2)/boot/grub/bad.cfg:2:13: unterminated double quote", ex.Message);
    }

    [Fact]
    public void Evaluate_Blscfg_TitleFallbackVersionlessFirstAndTunedInitrd()
    {
        var files = new FakeGuestFiles("(hd0,gpt2)")
            .Volume("(hd0,gpt2)", "vda2", "u2")
            .Add("(hd0,gpt2)", "/loader/entries/a-6.0.conf", "version 6.0\nlinux /vmlinuz-6.0\ninitrd /initramfs-6.0.img $tuned_initrd\noptions ro\n")
            .Add("(hd0,gpt2)", "/loader/entries/b.conf", "title no version\nlinux /vmlinuz-b\n");
        var m = Eval("set tuned_initrd=/tuned.img\nblscfg\n", files);
        Assert.Equal(["no version", "/vmlinuz-6.0"], m.Entries.Select(e => e.Title));
        Assert.Equal([new GuestPath("(hd0,gpt2)", "/initramfs-6.0.img"), new GuestPath("(hd0,gpt2)", "/tuned.img")], m.Entries[1].Initrds);
        Assert.Equal("a-6.0", m.Entries[1].Id);
    }

    [Theory]
    [InlineData("5.14.0-362.24.1.el9_3", "5.14.0-362.8.1.el9_3", 1)]
    [InlineData("6.1", "6.1.0", -1)]
    [InlineData("1.0~rc1", "1.0", -1)]
    [InlineData("1.0^git1", "1.0", 1)]
    [InlineData("0-rescue-abc", "5.14", -1)]
    [InlineData("1.01", "1.1", 0)]
    [InlineData("a", "1", -1)]
    public void RpmVersion_ComparesLikeRpmvercmp(string a, string b, int expected)
    {
        Assert.Equal(expected, RpmVersion.Compare(a, b));
        Assert.Equal(-expected, RpmVersion.Compare(b, a));
    }

    [Fact]
    public void Evaluate_ForLoopAndReturn()
    {
        var m = Eval("function pick { if [ \"$1\" = b ]; then return 0; fi\nreturn 1; }\nfor k in a b c; do if pick $k; then menuentry \"$k\" { linux /$k }; fi; done\n");
        Assert.Equal(["b"], m.Entries.Select(e => e.Title));
    }

    [Fact]
    public void Evaluate_EfiAndLegacyLoaderCommands()
    {
        var m = Eval("""
            menuentry 'RHEL 7 EFI' { linuxefi /vmlinuz-3.10 root=/dev/sda2 ro LANG=en_US.UTF-8
            initrdefi /initramfs-3.10.img }
            menuentry 'memtest' { linux16 /memtest86+.bin }
            menuentry 'CentOS 7 BIOS' { linux16 /vmlinuz-3.10 ro; initrd16 /initramfs-3.10.img }
            menuentry 'orphan initrd' { initrd /i.img }
            """);
        Assert.Equal("root=/dev/sda2 ro LANG=en_US.UTF-8", m.Entries[0].Args);
        Assert.Equal([new GuestPath("(hd0,gpt2)", "/initramfs-3.10.img")], m.Entries[0].Initrds);
        Assert.Equal(new GuestPath("(hd0,gpt2)", "/memtest86+.bin"), m.Entries[1].Kernel);
        Assert.Equal([new GuestPath("(hd0,gpt2)", "/initramfs-3.10.img")], m.Entries[2].Initrds);
        Assert.Null(m.Entries[3].Kernel);
        Assert.Empty(m.Entries[3].Initrds);
        Assert.Contains(m.Warnings, w => w.Contains("load the kernel first", StringComparison.Ordinal));
    }

    [Fact]
    public void Evaluate_TooManyVariables_Bounded()
    {
        var text = string.Concat(Enumerable.Range(0, 5000).Select(i => $"v{i}=x\n"));
        var ex = Assert.Throws<MalformedDataException>(() => Eval(text));
        Assert.Contains("more than 4096 variables", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_DeepTestExpression_Bounded()
    {
        string nots = string.Concat(Enumerable.Repeat("! ", 100_000));
        var ex = Assert.Throws<MalformedDataException>(() => Eval($"if [ {nots} x ]; then true; fi\n"));
        Assert.Contains("test expression nested deeper than 100", ex.Message, StringComparison.Ordinal);
        Assert.Equal("y", Eval("if [ ! ! ( x = x -a ! ( a = b ) ) ]; then r=y; fi\nmenuentry t { linux /k $r }\n").Entries[0].Args);
    }

    [Fact]
    public void Evaluate_TruncationAndGarbageSweep_OnlyAllowedExceptions()
    {
        string debian = Grub2Samples.Debian12("${saved_entry}");
        for (int len = 0; len <= debian.Length; len += 61)
            TryEval(debian[..len], Grub2Samples.DebianDisk(FakeGuestFiles.GrubEnv("saved_entry=1>0")));
        for (int len = 0; len <= Grub2Samples.FedoraBls.Length; len += 53)
            TryEval(Grub2Samples.FedoraBls[..len], Grub2Samples.FedoraDisk(null));
        var rng = new Random(1234);
        const string pieces = "{}'\"$;\n\\#>[]()=! \t\0\r-a-o-f-z";
        for (int iter = 0; iter < 300; iter++)
        {
            var chars = new char[rng.Next(1, 200)];
            for (int i = 0; i < chars.Length; i++) chars[i] = pieces[rng.Next(pieces.Length)];
            TryEval("menuentry x {\n" + new string(chars), Grub2Samples.DebianDisk());
            TryEval(new string(chars) + "\nmenuentry y { linux /k $a }\n", Grub2Samples.DebianDisk());
        }
    }

    private static void TryEval(string text, FakeGuestFiles files)
    {
        try
        {
            var m = Grub2Interpreter.Evaluate(text, Cfg, files, new Grub2Options { MaxSteps = 20_000 });
            Assert.InRange(m.DefaultIndex, -1, Math.Max(0, m.Entries.Count - 1));
        }
        catch (MalformedDataException)
        {
            // allowed: syntax error or a limit
        }
    }
}
