using System.Globalization;
using System.Net;
using DomBoot.Formats.Errors;

namespace DomBoot.Toolstack.Config;

internal enum XlForwardProtocol { Tcp, Udp }

/// <summary>A host port forwarded to a guest port; the host side always listens on 127.0.0.1.</summary>
internal sealed record XlPortForward(XlForwardProtocol Protocol, int HostPort, int GuestPort)
{
    public override string ToString() => $"{(Protocol == XlForwardProtocol.Tcp ? "tcp" : "udp")}:{HostPort}:{GuestPort}";
}

/// <summary>
/// One `vif=` entry (xl-network-configuration(5)): comma-separated key=value, all optional, '' is valid. domboot
/// uses `mac=` (6 hex octets, unicast), `ip=` (one or more addresses separated by spaces, as xl) and `model=`, and
/// adds `forward=[tcp:|udp:]HOSTPORT:GUESTPORT` (repeatable). Xen's bridge/script keys are accepted and ignored.
/// </summary>
internal sealed record XlVifSpec(string? Mac, IReadOnlyList<string> IpAddresses, IReadOnlyList<XlPortForward> Forwards, string? Model)
{
    private static readonly string[] IgnoredKeys = ["bridge", "type", "vifname", "script", "gatewaydev", "backend", "devid", "mtu", "rate", "vlan", "trusted", "untrusted", "accel", "netdev"];

    internal static class Limits
    {
        public const int MaxForwards = 64;
        public const int MaxAddresses = 16;
    }

    public static XlVifSpec Parse(string spec, string fileName, XlPosition at)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ConfigSyntaxException Bad(string detail) => new(fileName, at.Line, at.Column, $"vif spec {Quote.Text(spec)}: {detail}");
        string? mac = null, model = null;
        var ips = new List<string>();
        var forwards = new List<XlPortForward>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var raw in spec.Split(','))
        {
            string token = raw.Trim();
            if (token.Length == 0) continue;
            int eq = token.IndexOf('=', StringComparison.Ordinal);
            string key = eq < 0 ? token : token[..eq], value = eq < 0 ? "" : token[(eq + 1)..].Trim();
            if (key != "forward" && !seen.Add(key)) throw Bad($"parameter {key} given twice");
            switch (key)
            {
                case "mac":
                    mac = ParseMac(value) ?? throw Bad($"mac is {Quote.Text(value)}; expected six hex octets like 00:16:3e:00:00:01 with the multicast bit clear");
                    break;
                case "ip":
                    foreach (var ip in value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    {
                        if (!IPAddress.TryParse(ip, out var parsed) || parsed.ToString() != ip && !ip.Contains(':', StringComparison.Ordinal))
                            throw Bad($"ip is {Quote.Text(ip)}; expected an IPv4 or IPv6 address");
                        if (ips.Count >= Limits.MaxAddresses) throw Bad($"more than {Limits.MaxAddresses} addresses");
                        ips.Add(ip);
                    }
                    break;
                case "model":
                    if (value.Length == 0 || value.Length > 32 || !value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
                        throw Bad($"model is {Quote.Text(value)}; expected a QEMU NIC model such as virtio-net-pci or e1000");
                    model = value;
                    break;
                case "forward":
                    if (forwards.Count >= Limits.MaxForwards) throw Bad($"more than {Limits.MaxForwards} forwards");
                    forwards.Add(ParseForward(value) ?? throw Bad($"forward is {Quote.Text(value)}; expected [tcp:|udp:]HOSTPORT:GUESTPORT with ports 1-65535"));
                    break;
                default:
                    if (!IgnoredKeys.Contains(key)) throw Bad($"unknown parameter {Quote.Text(key)}");
                    break;
            }
        }
        return new XlVifSpec(mac, ips, forwards, model);
    }

    private static string? ParseMac(string value)
    {
        var parts = value.Split(':');
        if (parts.Length != 6) return null;
        var bytes = new byte[6];
        for (int i = 0; i < 6; i++)
        {
            if (parts[i].Length != 2 || !byte.TryParse(parts[i], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out bytes[i])) return null;
        }
        if ((bytes[0] & 1) != 0) return null;
        return string.Join(':', bytes.Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));
    }

    private static XlPortForward? ParseForward(string value)
    {
        var parts = value.Split(':');
        var protocol = XlForwardProtocol.Tcp;
        if (parts.Length == 3)
        {
            protocol = parts[0] switch { "tcp" => XlForwardProtocol.Tcp, "udp" => XlForwardProtocol.Udp, _ => (XlForwardProtocol)(-1) };
            if ((int)protocol < 0) return null;
            parts = parts[1..];
        }
        if (parts.Length != 2) return null;
        int? host = Port(parts[0]), guest = Port(parts[1]);
        return host is null || guest is null ? null : new XlPortForward(protocol, host.Value, guest.Value);
    }

    private static int? Port(string s) =>
        s.Length is > 0 and <= 5 && s.All(char.IsAsciiDigit) && int.Parse(s, CultureInfo.InvariantCulture) is var p and >= 1 and <= 65535 ? p : null;
}
