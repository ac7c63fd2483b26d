using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DomBoot.Toolstack.Domains;
using DomBoot.Toolstack.Supervision;

namespace DomBoot.Toolstack.Lifecycle;

/// <summary>
/// The CLI side of vcpu-pin/vcpu-list, block-attach/block-detach/block-list and network-list: requests to the
/// domain's supervisor, and the tables in xl's shapes (xl_vcpu.c, xl_block.c, xl_nic.c), adapted to QEMU.
/// </summary>
internal static class DeviceControl
{
    /// <summary>A detach waits for the guest inside the supervisor; the client allows for that.</summary>
    public static readonly TimeSpan DetachCallTimeout = Supervisor.DetachTimeout + TimeSpan.FromSeconds(30);

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static Task<JsonNode?> VcpuPinAsync(DomainControl control, string domain, string vcpu, string cpus, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(control);
        JsonNode which = int.TryParse(vcpu, NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? JsonValue.Create(n) : JsonValue.Create(vcpu);
        return control.CallAsync(domain, "vcpu-pin", new JsonObject { ["vcpu"] = which, ["cpus"] = cpus }, Control.DefaultTimeout, cancellationToken);
    }

    /// <summary>vcpu-list for the named domains, or every supervised one; a domain that cannot answer is reported in <paramref name="warnings"/>.</summary>
    public static async Task<List<JsonObject>> VcpuListAsync(DomainControl control, IReadOnlyList<string> domains, List<string> warnings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(control);
        ArgumentNullException.ThrowIfNull(domains);
        ArgumentNullException.ThrowIfNull(warnings);
        var names = domains.Count > 0 ? domains.ToList() : control.List().Where(r => r.Supervised).Select(r => r.Name).ToList();
        var result = new List<JsonObject>();
        foreach (var name in names)
        {
            try
            {
                if (await control.CallAsync(name, "vcpu-list", null, Control.DefaultTimeout, cancellationToken).ConfigureAwait(false) is JsonObject o) result.Add(o);
            }
            catch (Exception ex) when (domains.Count == 0 && ex is IOException or Formats.Errors.UnavailableException or TimeoutException)
            {
                warnings.Add($"domain {name}: {ex.Message}");
            }
        }
        return result;
    }

    /// <summary>xl vcpu-list: "%-32s %5u %5u %5u %3c%c- %9.1f  HARD / SOFT".</summary>
    public static string RenderVcpuList(IEnumerable<JsonObject> domains)
    {
        ArgumentNullException.ThrowIfNull(domains);
        var sb = new StringBuilder(string.Create(CultureInfo.InvariantCulture, $"{"Name",-32} {"ID",5} {"VCPU",5} {"CPU",5} {"State",5} {"Time(s)",9} Affinity (Hard / Soft)\n"));
        foreach (var d in domains)
        {
            string name = Str(d["name"]);
            int id = Int(d["id"]);
            foreach (var v in (d["vcpus"] as JsonArray ?? []).OfType<JsonObject>())
            {
                int cpu = Int(v["cpu"]);
                string state = Str(v["state"]);
                string cpuText = cpu < 0 ? "-" : cpu.ToString(CultureInfo.InvariantCulture);
                double time = v["time_s"] is JsonValue t && t.TryGetValue(out double x) ? x : 0;
                sb.Append(CultureInfo.InvariantCulture, $"{name,-32} {id,5} {Int(v["vcpu"]),5} {cpuText,5}   {state} {time,9:0.0}  {Str(v["hard_affinity"])} / {Str(v["soft_affinity"])}\n");
            }
        }
        return sb.ToString();
    }

    public static Task<JsonNode?> BlockAttachAsync(DomainControl control, string domain, string spec, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(control);
        return control.CallAsync(domain, "block-attach", new JsonObject { ["spec"] = spec }, Control.DefaultTimeout, cancellationToken);
    }

    public static Task<JsonNode?> BlockDetachAsync(DomainControl control, string domain, string vdev, bool force, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(control);
        return control.CallAsync(domain, "block-detach", new JsonObject { ["vdev"] = vdev, ["force"] = force }, DetachCallTimeout, cancellationToken);
    }

    public static async Task<JsonObject> BlockListAsync(DomainControl control, string domain, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(control);
        return await control.CallAsync(domain, "block-list", null, Control.DefaultTimeout, cancellationToken).ConfigureAwait(false) as JsonObject ?? [];
    }

    /// <summary>xl block-list's Vdev and state columns, with what QEMU has instead of Xen's backend paths.</summary>
    public static string RenderBlockList(JsonObject list)
    {
        ArgumentNullException.ThrowIfNull(list);
        var sb = new StringBuilder($"{"Vdev",-8} {"Format",-6} {"Access",-6} {"Type",-5} {"State",-10} Target\n");
        foreach (var d in (list["disks"] as JsonArray ?? []).OfType<JsonObject>())
            sb.Append(CultureInfo.InvariantCulture, $"{Str(d["vdev"]),-8} {Str(d["format"]),-6} {Str(d["access"]),-6} {Str(d["devtype"]),-5} {Str(d["state"]),-10} {Str(d["target"])}\n");
        return sb.ToString();
    }

    public static string BlockListJson(JsonObject list)
    {
        ArgumentNullException.ThrowIfNull(list);
        return (list["disks"] ?? new JsonArray()).ToJsonString(Indented);
    }

    /// <summary>network-list from domain.json (no supervisor call: the NICs and forwards are fixed at boot).</summary>
    public static DomainRecord NetworkRecord(DomainControl control, string domain)
    {
        ArgumentNullException.ThrowIfNull(control);
        return control.Store.Find(domain).Record;
    }

    /// <summary>"127.0.0.1:2207->22/tcp": host side first, as docker ps shows forwards.</summary>
    public static string ForwardText(DomainForward f)
    {
        ArgumentNullException.ThrowIfNull(f);
        return string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{f.HostPort}->{f.GuestPort}/{f.Protocol}");
    }

    /// <summary>xl network-list's Idx and Mac Addr. columns, then model, IPs and the forwarded ports.</summary>
    public static string RenderNetworkList(DomainRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var sb = new StringBuilder($"{"Idx",-3} {"Mac Addr.",-17} {"Model",-16} {"IP",-15} Forwards\n");
        for (int i = 0; i < record.Nics.Count; i++)
        {
            var n = record.Nics[i];
            var fwd = record.Forwards.Where(f => f.Nic == n.Id).Select(ForwardText).ToList();
            string ips = n.Ips.Count == 0 ? "-" : string.Join(' ', n.Ips);
            sb.Append(CultureInfo.InvariantCulture, $"{i,-3} {n.Mac,-17} {n.Model,-16} {ips,-15} {(fwd.Count == 0 ? "-" : string.Join(", ", fwd))}\n");
        }
        return sb.ToString();
    }

    public static string NetworkListJson(DomainRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var array = new JsonArray();
        for (int i = 0; i < record.Nics.Count; i++)
        {
            var n = record.Nics[i];
            var forwards = new JsonArray();
            foreach (var f in record.Forwards.Where(f => f.Nic == n.Id))
            {
                forwards.Add(new JsonObject
                {
                    ["protocol"] = f.Protocol,
                    ["host_address"] = "127.0.0.1",
                    ["host_port"] = f.HostPort,
                    ["guest_port"] = f.GuestPort,
                    ["text"] = ForwardText(f),
                });
            }
            array.Add(new JsonObject
            {
                ["idx"] = i,
                ["id"] = n.Id,
                ["mac"] = n.Mac,
                ["model"] = n.Model,
                ["ips"] = new JsonArray([.. n.Ips.Select(ip => (JsonNode)ip)]),
                ["forwards"] = forwards,
            });
        }
        return array.ToJsonString(Indented);
    }

    private static string Str(JsonNode? n) => n is JsonValue v && v.TryGetValue(out string? s) ? s : "";

    private static int Int(JsonNode? n) => n is JsonValue v && v.TryGetValue(out int i) ? i : 0;
}
