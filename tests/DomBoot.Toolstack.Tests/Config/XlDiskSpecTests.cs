using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Config;

namespace DomBoot.Toolstack.Tests.Config;

public class XlDiskSpecTests
{
    private static XlDiskSpec Parse(string spec) => XlDiskSpec.Parse(spec, "d.cfg", new XlPosition(3, 5));

    public static TheoryData<string, object> Valid => new()
    {
        // xl-disk-configuration(5): four equivalent forms
        { "/dev/vg/guest-volume,,hda", new XlDiskSpec("/dev/vg/guest-volume", XlDiskFormat.Raw, "hda", true, false) },
        { "/dev/vg/guest-volume,raw,hda,rw", new XlDiskSpec("/dev/vg/guest-volume", XlDiskFormat.Raw, "hda", true, false) },
        { "format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume", new XlDiskSpec("/dev/vg/guest-volume", XlDiskFormat.Raw, "hda", true, false) },
        { "raw:/dev/vg/guest-volume,hda,w", new XlDiskSpec("/dev/vg/guest-volume", XlDiskFormat.Raw, "hda", true, false) },
        // deprecated prefixes skip the format slot
        { "file:/x.img,xvda,w", new XlDiskSpec("/x.img", XlDiskFormat.Raw, "xvda", true, false) },
        { "phy:/dev/vg/lv,hda,w", new XlDiskSpec("/dev/vg/lv", XlDiskFormat.Raw, "hda", true, false) },
        { "phy:/dev/vg/lv,hda,r", new XlDiskSpec("/dev/vg/lv", XlDiskFormat.Raw, "hda", false, false) },
        { "tap:qcow2:/x.qcow2,xvdb,ro", new XlDiskSpec("/x.qcow2", XlDiskFormat.Qcow2, "xvdb", false, false) },
        { "qcow2:/x.qcow2,xvdb", new XlDiskSpec("/x.qcow2", XlDiskFormat.Qcow2, "xvdb", true, false) },
        // canonical modern form and positional with format
        { "format=qcow2,vdev=xvda,access=rw,target=/x.qcow2", new XlDiskSpec("/x.qcow2", XlDiskFormat.Qcow2, "xvda", true, false) },
        { "/x.qcow2,qcow2,xvda,w", new XlDiskSpec("/x.qcow2", XlDiskFormat.Qcow2, "xvda", true, false) },
        { "/x.img,raw,xvda,r", new XlDiskSpec("/x.img", XlDiskFormat.Raw, "xvda", false, false) },
        // target= swallows the rest, commas included; a relative target gets /dev/
        { "vdev=xvdc,access=r,target=/srv/a,b.img", new XlDiskSpec("/srv/a,b.img", XlDiskFormat.Raw, "xvdc", false, false) },
        { "phy:sda7,sda1,w", new XlDiskSpec("/dev/sda7", XlDiskFormat.Raw, "sda1", true, false) },
        // cdroms: flag, devtype=, vdev:cdrom, empty drive; default access r
        { "/iso/d.iso,raw,hdc,r,devtype=cdrom", new XlDiskSpec("/iso/d.iso", XlDiskFormat.Raw, "hdc", false, true) },
        { "/iso/d.iso,,hdc,cdrom", new XlDiskSpec("/iso/d.iso", XlDiskFormat.Raw, "hdc", false, true) },
        { "file:/iso/d.iso,hdc:cdrom,r", new XlDiskSpec("/iso/d.iso", XlDiskFormat.Raw, "hdc", false, true) },
        { ",hdc:cdrom,r", new XlDiskSpec("", XlDiskFormat.Raw, "hdc", false, true) },
        { "vdev=hdd,devtype=cdrom,target=", new XlDiskSpec("", XlDiskFormat.Raw, "hdd", false, true) },
        // Xen-only keys and flags are accepted and ignored
        { "backendtype=qdisk,discard,vdev=xvde,target=/e.img", new XlDiskSpec("/e.img", XlDiskFormat.Raw, "xvde", true, false) },
        { "  /s.img , , xvdf", new XlDiskSpec("/s.img ", XlDiskFormat.Raw, "xvdf", true, false) },
    };

    [Theory]
    [MemberData(nameof(Valid))]
    public void Parse_AcceptsEveryDocumentedForm(string spec, object expected) => Assert.Equal((XlDiskSpec)expected, Parse(spec));

    public static TheoryData<string, string> Invalid => new()
    {
        { "/x.img,xvda,w", "format is \"xvda\"; expected raw or qcow2" },
        { "/x.img,raw", "no vdev specified" },
        { "vdev=xvda", "no target specified" },
        { "/x.img,vhd,xvda", "format vhd is not supported by domboot; expected raw or qcow2" },
        { "/x.img,raw,xvda,x", "access is \"x\"; expected r, ro, w or rw" },
        { "/x.img,raw,xvda,w,extra", "unexpected \"extra\" after target, format, vdev and access" },
        { "/x.img,raw,xvda,w,devtype=floppy", "devtype is \"floppy\"; expected disk or cdrom" },
        { "colour=blue,/x.img,raw,xvda", "unknown parameter \"colour\"" },
        { "vdev=xvda,vdev=xvdb,target=/x", "parameter vdev given twice" },
        { "/iso,raw,hdc,w,cdrom", "a cdrom cannot be writable" },
        { "/x.img,raw,XVDA", "vdev is \"XVDA\"; expected a name like xvda, hda, sda or vda" },
        { "/x.img,raw,../a", "vdev is \"../a\"; expected a name like xvda, hda, sda or vda" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Parse_RejectsBadSpec(string spec, string detail)
    {
        var ex = Assert.Throws<ConfigSyntaxException>(() => Parse(spec));
        Assert.Equal($"d.cfg:3:5: disk spec {Quote.Text(spec)}: {detail}", ex.Message);
    }
}
