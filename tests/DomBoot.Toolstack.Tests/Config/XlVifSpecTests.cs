using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Config;

namespace DomBoot.Toolstack.Tests.Config;

public class XlVifSpecTests
{
    private static XlVifSpec Parse(string spec) => XlVifSpec.Parse(spec, "v.cfg", new XlPosition(1, 7));

    [Fact]
    public void Parse_Empty()
    {
        var v = Parse("");
        Assert.Null(v.Mac);
        Assert.Empty(v.IpAddresses);
        Assert.Empty(v.Forwards);
        Assert.Null(v.Model);
    }

    [Fact]
    public void Parse_AllDombootKeys()
    {
        var v = Parse("mac=00:16:3E:AA:bb:01, ip=10.0.0.3 10.0.1.3, bridge=xenbr0, model=e1000, forward=tcp:8080:80,forward=udp:5353:53, forward=2222:22");
        Assert.Equal("00:16:3e:aa:bb:01", v.Mac);
        Assert.Equal(["10.0.0.3", "10.0.1.3"], v.IpAddresses);
        Assert.Equal("e1000", v.Model);
        Assert.Equal(
            [
                new XlPortForward(XlForwardProtocol.Tcp, 8080, 80),
                new XlPortForward(XlForwardProtocol.Udp, 5353, 53),
                new XlPortForward(XlForwardProtocol.Tcp, 2222, 22),
            ],
            v.Forwards);
    }

    [Fact]
    public void Parse_IgnoresXenOnlyKeys() =>
        Assert.Empty(Parse("bridge=xenbr1,script=vif-bridge,vifname=v1,rate=10MB/s,type=ioemu").Forwards);

    public static TheoryData<string, string> Invalid => new()
    {
        { "mac=01:16:3e:00:00:01", "mac is \"01:16:3e:00:00:01\"; expected six hex octets like 00:16:3e:00:00:01 with the multicast bit clear" },
        { "mac=00:16:3e:00:01", "mac is \"00:16:3e:00:01\"; expected six hex octets like 00:16:3e:00:00:01 with the multicast bit clear" },
        { "ip=10.0.0.300", "ip is \"10.0.0.300\"; expected an IPv4 or IPv6 address" },
        { "ip=7", "ip is \"7\"; expected an IPv4 or IPv6 address" },
        { "forward=tcp:0:22", "forward is \"tcp:0:22\"; expected [tcp:|udp:]HOSTPORT:GUESTPORT with ports 1-65535" },
        { "forward=sctp:1:2", "forward is \"sctp:1:2\"; expected [tcp:|udp:]HOSTPORT:GUESTPORT with ports 1-65535" },
        { "forward=8080", "forward is \"8080\"; expected [tcp:|udp:]HOSTPORT:GUESTPORT with ports 1-65535" },
        { "forward=70000:22", "forward is \"70000:22\"; expected [tcp:|udp:]HOSTPORT:GUESTPORT with ports 1-65535" },
        { "model=a b", "model is \"a b\"; expected a QEMU NIC model such as virtio-net-pci or e1000" },
        { "mac=00:16:3e:00:00:01,mac=00:16:3e:00:00:02", "parameter mac given twice" },
        { "colour=red", "unknown parameter \"colour\"" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Parse_RejectsBadSpec(string spec, string detail)
    {
        var ex = Assert.Throws<ConfigSyntaxException>(() => Parse(spec));
        Assert.Equal($"v.cfg:1:7: vif spec {Quote.Text(spec)}: {detail}", ex.Message);
    }
}
