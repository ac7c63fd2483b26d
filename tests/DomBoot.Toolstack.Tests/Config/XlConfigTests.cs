using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Config;

namespace DomBoot.Toolstack.Tests.Config;

public class XlConfigTests
{
    private static readonly Dictionary<string, string> NoVariables = [];

    internal const string TypicalPv = """
        # A typical PV guest, in the style of xl.cfg(5)'s examples
        name = "debian-pv"
        kernel = "/srv/guests/vmlinuz"
        ramdisk = '/srv/guests/initrd.img'
        root = "/dev/xvda1 ro"
        extra = "console=hvc0 quiet"
        memory = 512
        vcpus = 0x2
        cpus = "0-3,^1"
        disk = [ 'file:/srv/guests/debian.img,xvda,w',
                 'phy:/dev/vg0/debian-swap,xvdb,w', ]   # trailing comma is fine
        vif = [ 'mac=00:16:3e:12:34:56,ip=10.0.0.5' ]
        on_poweroff = "destroy"; on_reboot = "restart"
        on_crash = 'preserve'
        """;

    [Fact]
    public void Parse_TypicalPv()
    {
        var c = XlConfig.Parse(TypicalPv, "pv.cfg", NoVariables);
        Assert.Equal("debian-pv", c.Name);
        Assert.Equal(XlDomainType.Pv, c.Type);
        Assert.Equal("/srv/guests/vmlinuz", c.Kernel);
        Assert.Equal("/srv/guests/initrd.img", c.Ramdisk);
        Assert.Equal("root=/dev/xvda1 ro console=hvc0 quiet", c.Cmdline);
        Assert.Equal(512, c.MemoryMiB);
        Assert.Equal(2, c.Vcpus);
        Assert.Equal([0, 2, 3], c.Cpus!.AllVcpus!);
        Assert.Equal(
            [
                new XlDiskSpec("/srv/guests/debian.img", XlDiskFormat.Raw, "xvda", true, false),
                new XlDiskSpec("/dev/vg0/debian-swap", XlDiskFormat.Raw, "xvdb", true, false),
            ],
            c.Disks);
        var vif = Assert.Single(c.Vifs);
        Assert.Equal("00:16:3e:12:34:56", vif.Mac);
        Assert.Equal(["10.0.0.5"], vif.IpAddresses);
        Assert.Equal(XlAction.Destroy, c.OnPoweroff);
        Assert.Equal(XlAction.Restart, c.OnReboot);
        Assert.Equal(XlAction.Preserve, c.OnCrash);
        Assert.Empty(c.UnknownKeys);
        Assert.Empty(c.Warnings);
    }

    [Fact]
    public void Parse_Pvh()
    {
        var c = XlConfig.Parse("""
            type = "pvh"
            name = "pvh1"
            kernel = "/boot/vmlinux"
            cmdline = "console=ttyS0 root=/dev/vda"
            extra = "ignored"
            memory = "256"
            """, "pvh.cfg", NoVariables);
        Assert.Equal(XlDomainType.Pvh, c.Type);
        Assert.Equal("console=ttyS0 root=/dev/vda", c.Cmdline);
        Assert.Equal(256, c.MemoryMiB);
        Assert.Equal(["pvh.cfg: ignoring root= and extra= in favour of cmdline="], c.Warnings);
    }

    [Fact]
    public void Parse_HvmWithDisks()
    {
        var c = XlConfig.Parse("""
            builder = "hvm"
            name = "win"
            memory = 2048
            vcpus = 4
            cpus = ["0", "1-2", "all,^0"]
            disk = [
                'format=qcow2, vdev=hda, access=rw, target=/var/lib/domboot/win.qcow2',
                '/srv/iso/install.iso,raw,hdc,r,devtype=cdrom',
                ',,hdd,,cdrom',
            ]
            boot = "dc"
            """, "hvm.cfg", NoVariables);
        Assert.Equal(XlDomainType.Hvm, c.Type);
        Assert.Equal(4, c.Vcpus);
        Assert.Null(c.Cpus!.AllVcpus);
        Assert.Equal([0], c.Cpus.PerVcpu[0]);
        Assert.Equal([1, 2], c.Cpus.PerVcpu[1]);
        Assert.Equal(XlCpuPinning.MaxCpu, c.Cpus.PerVcpu[2].Count);
        Assert.Equal(
            [
                new XlDiskSpec("/var/lib/domboot/win.qcow2", XlDiskFormat.Qcow2, "hda", true, false),
                new XlDiskSpec("/srv/iso/install.iso", XlDiskFormat.Raw, "hdc", false, true),
                new XlDiskSpec("", XlDiskFormat.Raw, "hdd", false, true),
            ],
            c.Disks);
        Assert.Equal(["boot"], c.UnknownKeys);
        Assert.Equal(["hvm.cfg: unknown key \"boot\" ignored"], c.Warnings);
    }

    [Theory]
    [InlineData("root = \"/dev/xvda1\"", "root=/dev/xvda1")]
    [InlineData("extra = \"init=/bin/sh\"", "init=/bin/sh")]
    [InlineData("root = \"/dev/xvda1\"\nextra = \"4\"", "root=/dev/xvda1 4")]
    [InlineData("", "")]
    public void Parse_ComposesCmdlineAsXl(string lines, string cmdline) =>
        Assert.Equal(cmdline, XlConfig.Parse("name=\"a\"\n" + lines, "c.cfg", NoVariables).Cmdline);

    [Fact]
    public void Parse_GrammarDetails()
    {
        var c = XlConfig.Parse("""
            name="a";memory=0400;;   ;
            kernel = "/k\x41\101\"\\\t"
            bootloader = "domboot"
            bootloader_args = [ "--entry=1", ]
            bootloader_args += [ "-q" ]
            extra = "a" ; extra += ' b'
            nested = [ [ 1, "x" ], [], ]
            disk = [
              # a comment inside a list
              'vdev=xvda, target=/d/x,y.img'
            ]
            # the last comment needs no newline
            """, "g.cfg", NoVariables);
        Assert.Equal(256, c.MemoryMiB);
        Assert.Equal("/kAA\"\\\t", c.Kernel);
        Assert.Equal("domboot", c.Bootloader);
        Assert.Equal(["--entry=1", "-q"], c.BootloaderArgs);
        Assert.Equal("a b", c.Cmdline);
        Assert.Equal("/d/x,y.img", c.Disks[0].Target);
        Assert.Equal(["nested"], c.UnknownKeys);
    }

    [Fact]
    public void Parse_BootloaderArgsString_SplitsOnSpaces() =>
        Assert.Equal(["--kernel=/vmlinuz", "-q"], XlConfig.Parse("bootloader='/usr/bin/pygrub'\nbootloader_args='--kernel=/vmlinuz  -q'", "c", NoVariables).BootloaderArgs);

    [Fact]
    public void Parse_LastAssignmentWins() =>
        Assert.Equal(128, XlConfig.Parse("memory = 64\nmemory = 128\n", "c", NoVariables).MemoryMiB);

    [Fact]
    public void Parse_Variables_SubstitutedInStrings()
    {
        var vars = XlVariables.ParseDefines(["vmid=3:ip=10.0.0.3", "mem=384"]);
        var c = XlConfig.Parse("""
            name = "vm${vmid}"
            kernel = "/boot/vmlinuz-${vmid}"
            memory = ${mem}
            vif = [ "ip=${ip}" ]
            extra = "price=$$5 cost=\$6 lone=$x ip=${ip}"
            disk = [ "file:/srv/vm${vmid}.img,xvda,w" ]
            """, "vars.cfg", vars);
        Assert.Equal("vm3", c.Name);
        Assert.Equal("/boot/vmlinuz-3", c.Kernel);
        Assert.Equal(384, c.MemoryMiB);
        Assert.Equal(["10.0.0.3"], c.Vifs[0].IpAddresses);
        Assert.Equal("price=$5 cost=$6 lone=$x ip=10.0.0.3", c.Cmdline);
        Assert.Equal("/srv/vm3.img", c.Disks[0].Target);
    }

    [Fact]
    public void Parse_RejectsUndefinedVariable()
    {
        var ex = Assert.Throws<ConfigSyntaxException>(() => XlConfig.Parse("name = \"a\"\nkernel = \"/boot/${kver}\"\n", "vars.cfg", XlVariables.ParseDefines(["vmid=1"])));
        Assert.Equal("vars.cfg:2:17: undefined variable \"kver\"", ex.Message);
        Assert.Equal(2, ex.Line);
        Assert.Equal(17, ex.Column);
    }

    [Fact]
    public void ApplyOverrides_ReplaceFileValues()
    {
        var c = XlConfig.Parse(TypicalPv, "pv.cfg", NoVariables)
            .ApplyOverrides(["memory=1024", "name=\"other\"; vcpus=3", "extra += \" single\"", "disk=[]"]);
        Assert.Equal(1024, c.MemoryMiB);
        Assert.Equal("other", c.Name);
        Assert.Equal(3, c.Vcpus);
        Assert.Equal("root=/dev/xvda1 ro console=hvc0 quiet single", c.Cmdline);
        Assert.Empty(c.Disks);
        Assert.Equal("/srv/guests/vmlinuz", c.Kernel);
    }

    [Fact]
    public void ApplyOverrides_UseVariablesAndNameTheArgument()
    {
        var c = XlConfig.Parse("", "/dev/null", XlVariables.ParseDefines(["n=7"])).ApplyOverrides(["name=\"d${n}\""]);
        Assert.Equal("d7", c.Name);
        var ex = Assert.Throws<ConfigSyntaxException>(() => c.ApplyOverrides(["memory=1", "memory 2"]));
        Assert.Equal("override #2:1:8: expected '=' after key \"memory\"; found '2'", ex.Message);
    }

    public static TheoryData<string, string> Malformed => new()
    {
        { "name = \"abc\n", "m.cfg:1:8: unterminated string: \" has no closing \" on this line" },
        { "kernel = 'abc", "m.cfg:1:10: unterminated string: ' has no closing ' on this line" },
        { "name \"x\"", "m.cfg:1:6: expected '=' after key \"name\"; found '\"'" },
        { "memory\n", "m.cfg:1:7: expected '=' after key \"memory\"; found end of line" },
        { "memory =\n", "m.cfg:1:9: expected a value (a quoted string, a number or a list); found end of line" },
        { "memory = ", "m.cfg:1:10: expected a value (a quoted string, a number or a list); found end of file" },
        { "type = pv", "m.cfg:1:8: expected a value (a quoted string, a number or a list); found 'p'" },
        { "disk = [ 'a' 'b' ]", "m.cfg:1:14: expected ',' or ']' in list; found '''" },
        { "disk = [ 'a',\n 'b'\n", "m.cfg:1:8: unterminated list: '[' has no matching ']'" },
        { "disk = [ , ]", "m.cfg:1:10: expected a value (a quoted string, a number or a list); found ','" },
        { "name = \"a\" \"b\"", "m.cfg:1:12: unexpected '\"' after the value of \"name\"; expected a newline or ';'" },
        { "name = \"a\"\n@", "m.cfg:2:1: unexpected '@'; expected a key" },
        { "Name = \"a\"", "m.cfg:1:1: keys are lower case; found 'N'" },
        { "memory = 512 \\\n", "m.cfg:1:14: unexpected '\\' after the value of \"memory\"; expected a newline or ';'" },
        { "name = \"a\\qb\"", "m.cfg:1:10: invalid escape \\q in string" },
        { "name = \"${x\"", "m.cfg:1:9: malformed variable reference; expected ${name} with a name of letters, digits and '_'" },
        { "memory += 5\nmemory += 6", "m.cfg:2:1: can't use += with numbers (key \"memory\")" },
        { "extra = \"a\"\nextra += [ \"b\" ]", "m.cfg:2:1: can't add [list] to \"string\" or vice versa (key \"extra\")" },
        { "x = [[[[[[[[[ 1 ]]]]]]]]]", "m.cfg:1:13: lists nested deeper than 8" },
        { "memory = \"lots\"", "m.cfg:1:10: parameter `memory' is not a valid number: \"lots\"" },
        { "memory = 0x", "m.cfg:1:10: parameter `memory' is not a valid number: \"0x\"" },
        { "vcpus = 0", "m.cfg:1:9: vcpus is 0; expected 1 to 255" },
        { "memory = [ 1 ]", "m.cfg:1:10: parameter `memory' is a list but should be a single value" },
        { "disk = 'file:/x,xvda,w'", "m.cfg:1:8: parameter `disk' is a single value but should be a list" },
        { "type = \"xen\"", "m.cfg:1:8: type is \"xen\"; expected pv, pvh or hvm" },
        { "on_crash = \"coredump-restart\"", "m.cfg:1:12: on_crash action coredump-restart is not supported by domboot; expected destroy, restart or preserve" },
        { "on_reboot = \"reboot\"", "m.cfg:1:13: on_reboot is \"reboot\"; expected destroy, restart or preserve" },
        { "cpus = \"nodes:0-3\"", "m.cfg:1:8: cpus is \"nodes:0-3\"; expected CPU numbers and ranges like \"0-3,5,^1\" or \"all\" (0 to 4095)" },
        { "name = \"../etc\"", "m.cfg:1:8: name is \"../etc\"; expected 1-64 letters, digits, '-', '_' or '.', not starting with '.' or '-'" },
        { "netboot = \"file:///etc/passwd\"", "m.cfg:1:11: netboot is \"file:///etc/passwd\"; expected an http:// or https:// URL" },
        { "disk = [ 'file:/x.img,xvda,w',\n  '/y.img,xvdb,w' ]", "m.cfg:2:3: disk spec \"/y.img,xvdb,w\": format is \"xvdb\"; expected raw or qcow2" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Parse_RejectsMalformed(string text, string message)
    {
        var ex = Assert.Throws<ConfigSyntaxException>(() => XlConfig.Parse(text, "m.cfg", NoVariables));
        Assert.Equal(message, ex.Message);
    }

    [Fact]
    public void Parse_RejectsOversizedConfig()
    {
        var ex = Assert.Throws<ConfigSyntaxException>(() => XlConfig.Parse(new string('#', (1 << 20) + 1), "big.cfg", NoVariables));
        Assert.Equal("big.cfg:1:1: config is 1048577 characters; expected at most 1048576", ex.Message);
    }

    [Fact]
    public void Parse_RejectsOverlongList()
    {
        string text = "x = [" + string.Join(",", Enumerable.Repeat("1", 1025)) + "]";
        var ex = Assert.Throws<ConfigSyntaxException>(() => XlConfig.Parse(text, "l.cfg", NoVariables));
        Assert.Equal("l.cfg:1:2054: list has more than 1024 items", ex.Message);
    }

    [Fact]
    public void Parse_RejectsVariableExpansionBlowUp()
    {
        var vars = new Dictionary<string, string> { ["v"] = new string('a', 4000) };
        string text = "extra = \"" + string.Concat(Enumerable.Repeat("${v}", 20)) + "\"";
        var ex = Assert.Throws<ConfigSyntaxException>(() => XlConfig.Parse(text, "b.cfg", vars));
        Assert.Equal("b.cfg:1:74: string is longer than 65536 characters", ex.Message);
    }

    [Fact]
    public void Parse_MutationSweep_OnlyConfigErrorsEscape()
    {
        var rng = new Random(1234);
        var vars = XlVariables.ParseDefines(["vmid=3:ip=10.0.0.3"]);
        string baseText = TypicalPv + "\nextra += \" id=${vmid}\"\nvif += [ \"ip=${ip},forward=tcp:8080:80\" ]\n";
        const string alphabet = "=[]'\",#;\\$ {}\n\t:+-0x9azZ/^";
        int parsed = 0;
        for (int i = 0; i < 3000; i++)
        {
            var chars = baseText.ToCharArray().ToList();
            int edits = 1 + rng.Next(4);
            for (int e = 0; e < edits && chars.Count > 0; e++)
            {
                int at = rng.Next(chars.Count);
                switch (rng.Next(4))
                {
                    case 0: chars.RemoveAt(at); break;
                    case 1: chars.Insert(at, alphabet[rng.Next(alphabet.Length)]); break;
                    case 2: chars[at] = alphabet[rng.Next(alphabet.Length)]; break;
                    default: chars.RemoveRange(at, chars.Count - at); break;
                }
            }
            string text = new(chars.ToArray());
            try
            {
                var c = XlConfig.Parse(text, "mut.cfg", vars).ApplyOverrides(["memory=64"]);
                if (c.Name is not null && (c.Kernel is not null || c.Bootloader is not null)) _ = DomainPlanner.Plan(c, 5);
                parsed++;
            }
            catch (MalformedDataException)
            {
                // ConfigSyntaxException for syntax; MalformedDataException from the planner for missing keys.
            }
        }
        Assert.InRange(parsed, 1, 2999);
    }
}
