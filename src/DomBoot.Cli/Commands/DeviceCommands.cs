using System.CommandLine;
using DomBoot.Toolstack.Domains;
using DomBoot.Toolstack.Lifecycle;

namespace DomBoot.Cli.Commands;

/// <summary>xl's device verbs: vcpu-pin, vcpu-list, block-attach, block-detach, block-list, network-list.</summary>
internal static class DeviceCommands
{
    public static IEnumerable<Command> All() =>
    [
        VcpuPin(),
        VcpuList(),
        BlockAttach(),
        BlockDetach(),
        BlockList(),
        NetworkList(),
    ];

    private static DomainControl Control(ParseResult p, Option<string?> stateDir) => new(StateDirectory.Resolve(p.GetValue(stateDir)));

    private static Command VcpuPin()
    {
        var domain = DomainOptions.Domain();
        var stateDir = DomainOptions.StateDir();
        var vcpu = new Argument<string>("VCPU") { Description = "vCPU number, or all" };
        var cpus = new Argument<string>("CPUS") { Description = "Host CPUs, xl style: 0-3,5,^1 or all" };
        var command = new Command("vcpu-pin", "Pin a domain's vCPU (its QEMU thread) to host CPUs; kept across reboots (xl vcpu-pin)");
        command.Arguments.Add(domain);
        command.Arguments.Add(vcpu);
        command.Arguments.Add(cpus);
        command.Options.Add(stateDir);
        command.SetAction(p =>
        {
            DeviceControl.VcpuPinAsync(Control(p, stateDir), p.GetValue(domain)!, p.GetValue(vcpu)!, p.GetValue(cpus)!, CancellationToken.None).GetAwaiter().GetResult();
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command VcpuList()
    {
        var domains = new Argument<string[]>("DOMAIN") { Arity = ArgumentArity.ZeroOrMore, Description = "Domains (names or ids); all running ones if none" };
        var stateDir = DomainOptions.StateDir();
        var json = CommonOptions.Json();
        var command = new Command("vcpu-list", "List vCPUs: host CPU, state, CPU time and affinity (xl vcpu-list)");
        command.Arguments.Add(domains);
        command.Options.Add(json);
        command.Options.Add(stateDir);
        command.SetAction(p =>
        {
            var warnings = new List<string>();
            var rows = DeviceControl.VcpuListAsync(Control(p, stateDir), p.GetValue(domains) ?? [], warnings, CancellationToken.None).GetAwaiter().GetResult();
            Console.Out.Write(p.GetValue(json)
                ? new System.Text.Json.Nodes.JsonArray([.. rows.Select(r => r.DeepClone())]).ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n"
                : DeviceControl.RenderVcpuList(rows));
            foreach (var w in warnings) Console.Error.WriteLine("domboot: warning: " + w);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command BlockAttach()
    {
        var domain = DomainOptions.Domain();
        var stateDir = DomainOptions.StateDir();
        var spec = new Argument<string>("DISKSPEC") { Description = "xl disk spec, e.g. /path/data.qcow2,qcow2,xvdb,w or format=raw,vdev=xvdc,access=r,target=/path/ro.img" };
        var command = new Command("block-attach", "Hot-plug a disk into a running domain; it stays across reboots (xl block-attach)");
        command.Arguments.Add(domain);
        command.Arguments.Add(spec);
        command.Options.Add(stateDir);
        command.SetAction(p =>
        {
            DeviceControl.BlockAttachAsync(Control(p, stateDir), p.GetValue(domain)!, p.GetValue(spec)!, CancellationToken.None).GetAwaiter().GetResult();
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command BlockDetach()
    {
        var domain = DomainOptions.Domain();
        var stateDir = DomainOptions.StateDir();
        var vdev = new Argument<string>("VDEV") { Description = "The disk's vdev (block-list shows them)" };
        var force = new Option<bool>("--force", "-f") { Description = "Remove the disk even if the guest does not acknowledge the unplug (the guest's unflushed writes are lost)" };
        var command = new Command("block-detach", "Unplug a disk from a running domain; the guest must acknowledge (xl block-detach)");
        command.Arguments.Add(domain);
        command.Arguments.Add(vdev);
        command.Options.Add(force);
        command.Options.Add(stateDir);
        command.SetAction(p =>
        {
            var r = DeviceControl.BlockDetachAsync(Control(p, stateDir), p.GetValue(domain)!, p.GetValue(vdev)!, p.GetValue(force), CancellationToken.None).GetAwaiter().GetResult();
            if (r?["state"]?.GetValue<string>() == "forced")
                Console.Error.WriteLine($"domboot: warning: the guest has not released {p.GetValue(vdev)}; it is out of the domain now, QEMU keeps the image open until the guest acknowledges or the domain reboots");
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command BlockList()
    {
        var domain = DomainOptions.Domain();
        var stateDir = DomainOptions.StateDir();
        var json = CommonOptions.Json();
        var command = new Command("block-list", "List a domain's disks: vdev, format, access, state, target (xl block-list)");
        command.Arguments.Add(domain);
        command.Options.Add(json);
        command.Options.Add(stateDir);
        command.SetAction(p =>
        {
            var list = DeviceControl.BlockListAsync(Control(p, stateDir), p.GetValue(domain)!, CancellationToken.None).GetAwaiter().GetResult();
            Console.Out.Write(p.GetValue(json) ? DeviceControl.BlockListJson(list) + "\n" : DeviceControl.RenderBlockList(list));
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command NetworkList()
    {
        var domain = DomainOptions.Domain();
        var stateDir = DomainOptions.StateDir();
        var json = CommonOptions.Json();
        var command = new Command("network-list", "List a domain's NICs and forwarded ports (127.0.0.1:22NN -> 22 for domain NN) (xl network-list)");
        command.Arguments.Add(domain);
        command.Options.Add(json);
        command.Options.Add(stateDir);
        command.SetAction(p =>
        {
            var record = DeviceControl.NetworkRecord(Control(p, stateDir), p.GetValue(domain)!);
            Console.Out.Write(p.GetValue(json) ? DeviceControl.NetworkListJson(record) + "\n" : DeviceControl.RenderNetworkList(record));
            return ExitCodes.Ok;
        });
        return command;
    }
}
