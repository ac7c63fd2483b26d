using System.Text.Json;
using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Config;

namespace DomBoot.Toolstack.Tests.Config;

public class DomainPlannerTests
{
    private static readonly Dictionary<string, string> NoVariables = [];

    private const string WithVariables = """
        name = "vm${vmid}"
        kernel = "/boot/vmlinuz"
        ramdisk = "/boot/initrd.img"
        root = "/dev/vda1 ro"
        extra = "console=ttyS0 ip=${ip}"
        memory = ${mem}
        vcpus = 2
        disk = [ 'file:/srv/vm${vmid}.img,xvda,w',
                 'format=qcow2,vdev=xvdb,access=r,target=/srv/base,1.qcow2',
                 '/srv/install.iso,raw,hdc,r,devtype=cdrom' ]
        vif = [ 'ip=${ip},forward=tcp:8080:80' ]
        """;

    private static DomainPlan PlanWithVariables(int domid) =>
        DomainPlanner.Plan(XlConfig.Parse(WithVariables, "/etc/domboot/vm.cfg", XlVariables.ParseDefines(["vmid=7:ip=10.0.0.7", "mem=384"])), domid);

    [Fact]
    public void Plan_Domain7_ForwardsSsh2207AndVifPorts()
    {
        var plan = PlanWithVariables(7);
        Assert.Equal("vm7", plan.Name);
        Assert.Equal(DomainBootSource.Kernel, plan.BootSource);
        Assert.Equal("/boot/vmlinuz", plan.Image);
        Assert.Equal("/boot/initrd.img", plan.Ramdisk);
        Assert.Equal(384, plan.MemoryMiB);
        Assert.Equal("root=/dev/vda1 ro console=ttyS0 ip=10.0.0.7", plan.Cmdline);
        Assert.Equal(["10.0.0.7"], plan.IpAddresses);
        Assert.Equal([new XlPortForward(XlForwardProtocol.Tcp, 2207, 22), new XlPortForward(XlForwardProtocol.Tcp, 8080, 80)], plan.Forwards);
        Assert.Equal(
            [
                "-name", "vm7", "-m", "384", "-smp", "2",
                "-kernel", "/boot/vmlinuz", "-initrd", "/boot/initrd.img", "-append", "root=/dev/vda1 ro console=ttyS0 ip=10.0.0.7",
                "-drive", "file=/srv/vm7.img,format=raw,if=none,id=drive-xvda", "-device", "virtio-blk-pci,drive=drive-xvda,id=xvda",
                "-drive", "file=/srv/base,,1.qcow2,format=qcow2,if=none,id=drive-xvdb,readonly=on", "-device", "virtio-blk-pci,drive=drive-xvdb,id=xvdb",
                "-drive", "file=/srv/install.iso,format=raw,if=none,media=cdrom,readonly=on,id=drive-hdc", "-device", "ide-cd,drive=drive-hdc,id=hdc",
                "-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:2207-:22,hostfwd=tcp:127.0.0.1:8080-:80",
                "-device", "virtio-net-pci,netdev=net0,mac=00:16:3e:00:00:07,id=net0-nic",
            ],
            plan.QemuArgs);
    }

    [Fact]
    public void Render_PrintsTheDryRun()
    {
        string text = DomainPlanText.Render(PlanWithVariables(7), "/etc/domboot/vm.cfg");
        Assert.Equal("""
            Parsing config file '/etc/domboot/vm.cfg'

            VM name            : "vm7"
            VM domain id       : "7"
            VM type            : "pv"
            VM image           : "/boot/vmlinuz"
            VM ramdisk         : "/boot/initrd.img"
            VM memory (MB)     : "384"
            VM vcpus           : "2"
            VM IP address(es)  : "10.0.0.7"
            VM forwarded ports : "127.0.0.1:2207->22/tcp; 127.0.0.1:8080->80/tcp"
            VM block device(s) : "/srv/vm7.img,xvda,w; /srv/base,1.qcow2,xvdb,r; /srv/install.iso,hdc,r,cdrom"
            VM cmdline         : "root=/dev/vda1 ro console=ttyS0 ip=10.0.0.7"
            VM on_poweroff     : "destroy"
            VM on_reboot       : "restart"
            VM on_crash        : "destroy"
            VM QEMU arguments  : -name vm7 -m 384 -smp 2 -kernel /boot/vmlinuz -initrd /boot/initrd.img -append 'root=/dev/vda1 ro console=ttyS0 ip=10.0.0.7' -drive file=/srv/vm7.img,format=raw,if=none,id=drive-xvda -device virtio-blk-pci,drive=drive-xvda,id=xvda -drive file=/srv/base,,1.qcow2,format=qcow2,if=none,id=drive-xvdb,readonly=on -device virtio-blk-pci,drive=drive-xvdb,id=xvdb -drive file=/srv/install.iso,format=raw,if=none,media=cdrom,readonly=on,id=drive-hdc -device ide-cd,drive=drive-hdc,id=hdc -netdev user,id=net0,hostfwd=tcp:127.0.0.1:2207-:22,hostfwd=tcp:127.0.0.1:8080-:80 -device virtio-net-pci,netdev=net0,mac=00:16:3e:00:00:07,id=net0-nic

            """.Replace("\r\n", "\n", StringComparison.Ordinal), text);
    }

    [Fact]
    public void ToJson_CarriesArgvAndForwards()
    {
        using var doc = JsonDocument.Parse(DomainPlanText.ToJson(PlanWithVariables(7)));
        var root = doc.RootElement;
        Assert.Equal("vm7", root.GetProperty("name").GetString());
        Assert.Equal(2207, root.GetProperty("forwards")[0].GetProperty("host_port").GetInt32());
        Assert.Contains("file=/srv/vm7.img,format=raw,if=none,id=drive-xvda", root.GetProperty("qemu_args").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public void Plan_HvmWithoutVif_GetsDefaultNicAndFirmware()
    {
        var c = XlConfig.Parse("""
            type = "hvm"
            name = "h"
            disk = [ "format=qcow2,vdev=hda,target=/g/h.qcow2", ",hdc:cdrom,r" ]
            """, "h.cfg", NoVariables);
        var plan = DomainPlanner.Plan(c, 12);
        Assert.Equal(DomainBootSource.Firmware, plan.BootSource);
        Assert.Equal(
            [
                "-name", "h", "-m", "512", "-smp", "1",
                "-drive", "file=/g/h.qcow2,format=qcow2,if=none,id=drive-hda", "-device", "virtio-blk-pci,drive=drive-hda,id=hda",
                "-drive", "if=none,media=cdrom,id=drive-hdc", "-device", "ide-cd,drive=drive-hdc,id=hdc",
                "-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:2212-:22",
                "-device", "virtio-net-pci,netdev=net0,mac=00:16:3e:00:00:0c,id=net0-nic",
            ],
            plan.QemuArgs);
    }

    [Fact]
    public void Plan_BootloaderAndSecondVif()
    {
        var c = XlConfig.Parse("""
            name = "bl"
            bootloader = "domboot"
            bootloader_args = [ "--entry=1" ]
            disk = [ "file:/g/bl.img,xvda,w" ]
            vif = [ "", "mac=02:00:00:00:00:01,model=e1000,forward=udp:5353:53" ]
            """, "bl.cfg", NoVariables);
        var plan = DomainPlanner.Plan(c, 300);
        Assert.Equal(DomainBootSource.Bootloader, plan.BootSource);
        Assert.Equal("domboot", plan.Image);
        Assert.Equal(["--entry=1"], plan.BootloaderArgs);
        Assert.DoesNotContain("-kernel", plan.QemuArgs);
        Assert.Contains("user,id=net0,hostfwd=tcp:127.0.0.1:2500-:22", plan.QemuArgs);
        Assert.Contains("virtio-net-pci,netdev=net0,mac=00:16:3e:00:01:2c,id=net0-nic", plan.QemuArgs);
        Assert.Contains("user,id=net1,hostfwd=udp:127.0.0.1:5353-:53", plan.QemuArgs);
        Assert.Contains("e1000,netdev=net1,mac=02:00:00:00:00:01,id=net1-nic", plan.QemuArgs);
    }

    public static TheoryData<string, string> Unplannable => new()
    {
        { "kernel = \"/k\"", "p.cfg: no name= given; every domain needs a unique name" },
        { "name = \"a\"", "p.cfg: type pv needs kernel=, bootloader= or netboot=; neither kernel nor bootloader specified" },
        { "name = \"a\"\nbootloader = \"domboot\"", "p.cfg: bootloader= needs a disk= to read the kernel from" },
        { "name = \"a\"\nkernel = \"/k\"\ndisk = [ \"file:/a,xvda,w\", \"file:/b,xvda,r\" ]", "p.cfg: vdev xvda is used by two disks" },
        { "name = \"a\"\nkernel = \"/k\"\nvif = [ \"forward=2203:22\" ]", "p.cfg: host port tcp:2203:22 is forwarded twice (port 2203 is domain 3's ssh port)" },
    };

    [Theory]
    [MemberData(nameof(Unplannable))]
    public void Plan_RejectsIncompleteConfig(string text, string message)
    {
        var ex = Assert.Throws<MalformedDataException>(() => DomainPlanner.Plan(XlConfig.Parse(text, "p.cfg", NoVariables), 3));
        Assert.Equal(message, ex.Message);
    }

    [Fact]
    public void Plan_OverridesFillMissingKeys()
    {
        var c = XlConfig.Parse("", "/dev/null", NoVariables).ApplyOverrides(["name=\"cli\"; kernel=\"/k\"", "memory=64"]);
        var plan = DomainPlanner.Plan(c, 1);
        Assert.Equal(64, plan.MemoryMiB);
        Assert.Contains("hostfwd", plan.QemuArgs.Single(a => a.StartsWith("user,", StringComparison.Ordinal)), StringComparison.Ordinal);
    }
}
