using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using DomBoot.Toolstack.Domains;
using DomBoot.Toolstack.Lifecycle;
using DomBoot.Toolstack.Supervision;

namespace DomBoot.Cli.Commands;

/// <summary>The life-cycle verbs of xl: list, pause, unpause, shutdown, reboot, destroy (and the hidden supervise).</summary>
internal static class DomainCommands
{
    public static IEnumerable<Command> All() =>
    [
        List(),
        Simple("pause", "Pause a domain's vCPUs (xl pause)", "pause"),
        Simple("unpause", "Resume a paused domain (xl unpause)", "unpause"),
        Shutdown(),
        Reboot(),
        Destroy(),
        Supervise(),
    ];

    private static Command List()
    {
        var json = CommonOptions.Json();
        var stateDir = DomainOptions.StateDir();
        var domains = new Argument<string[]>("DOMAIN") { Arity = ArgumentArity.ZeroOrMore, Description = "Only these domains (names or ids)" };
        var command = new Command("list", "List running domains: Name, ID, Mem, VCPUs, State, Time(s) (xl list)");
        command.Arguments.Add(domains);
        command.Options.Add(json);
        command.Options.Add(stateDir);
        command.SetAction(p =>
        {
            var control = new DomainControl(StateDirectory.Resolve(p.GetValue(stateDir)));
            var rows = control.List();
            var wanted = p.GetValue(domains) ?? [];
            if (wanted.Length > 0)
            {
                foreach (var w in wanted) control.Store.Find(w); // "no domain named ..." for a name that is not there
                rows = rows.Where(r => wanted.Contains(r.Name) || wanted.Contains(r.Id.ToString(System.Globalization.CultureInfo.InvariantCulture))).ToList();
            }
            Console.Out.Write(p.GetValue(json) ? DomainControl.ListJson(rows) + "\n" : DomainControl.RenderList(rows));
            foreach (var r in rows.Where(r => !r.Supervised))
                Console.Error.WriteLine($"domboot: warning: domain {r.Name}: its supervisor (pid {r.Record.SupervisorPid}) is gone; QEMU pid {r.Record.QemuPid} runs unsupervised (`domboot destroy {r.Name}` cleans up)");
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Simple(string verb, string description, string op)
    {
        var domain = DomainOptions.Domain();
        var stateDir = DomainOptions.StateDir();
        var command = new Command(verb, description);
        command.Arguments.Add(domain);
        command.Options.Add(stateDir);
        command.SetAction(p =>
        {
            var control = new DomainControl(StateDirectory.Resolve(p.GetValue(stateDir)));
            control.CallAsync(p.GetValue(domain)!, op, null, Control.DefaultTimeout, CancellationToken.None).GetAwaiter().GetResult();
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Shutdown()
    {
        var domain = DomainOptions.Domain();
        var stateDir = DomainOptions.StateDir();
        var wait = new Option<bool>("--wait", "-w") { Description = "Wait until the domain has shut down" };
        var timeout = new Option<double>("--timeout") { Description = "Seconds -w waits before giving up (the guest may ignore the power button)", DefaultValueFactory = _ => 60 };
        var command = new Command("shutdown", "Press the domain's ACPI power button (xl shutdown); -w waits until it is gone");
        command.Arguments.Add(domain);
        command.Options.Add(wait);
        command.Options.Add(timeout);
        command.Options.Add(stateDir);
        command.SetAction(p =>
        {
            var control = new DomainControl(StateDirectory.Resolve(p.GetValue(stateDir)));
            string name = p.GetValue(domain)!;
            Console.Error.WriteLine($"Shutting down domain {name}");
            control.ShutdownAsync(name, p.GetValue(wait), TimeSpan.FromSeconds(p.GetValue(timeout)), CancellationToken.None).GetAwaiter().GetResult();
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Reboot()
    {
        var domain = DomainOptions.Domain();
        var stateDir = DomainOptions.StateDir();
        var force = new Option<bool>("--force", "-F") { Description = "Reset at once instead of asking the guest (power button, then boot again)" };
        var command = new Command("reboot", "Reboot a domain: the guest shuts down, the bootloader runs again, the domain boots (xl reboot)");
        command.Arguments.Add(domain);
        command.Options.Add(force);
        command.Options.Add(stateDir);
        command.SetAction(p =>
        {
            var control = new DomainControl(StateDirectory.Resolve(p.GetValue(stateDir)));
            string name = p.GetValue(domain)!;
            Console.Error.WriteLine($"Rebooting domain {name}");
            control.CallAsync(name, "reboot", new JsonObject { ["force"] = p.GetValue(force) }, Control.DefaultTimeout, CancellationToken.None).GetAwaiter().GetResult();
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Destroy()
    {
        var domain = DomainOptions.Domain();
        var stateDir = DomainOptions.StateDir();
        var command = new Command("destroy", "Power a domain off at once and remove it (xl destroy); also cleans up after a killed supervisor");
        command.Arguments.Add(domain);
        command.Options.Add(stateDir);
        command.SetAction(p =>
        {
            var control = new DomainControl(StateDirectory.Resolve(p.GetValue(stateDir)));
            control.DestroyAsync(p.GetValue(domain)!, CancellationToken.None).GetAwaiter().GetResult();
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>Hidden: the per-domain supervisor process that create and restore start.</summary>
    private static Command Supervise()
    {
        var request = new Argument<string>("REQUEST") { Description = "Request file written by create/restore" };
        var command = new Command("supervise", "Run a domain's supervisor (started by create and restore)") { Hidden = true };
        command.Arguments.Add(request);
        command.SetAction(p =>
        {
            var file = p.GetValue(request)!;
            var r = DomainLauncher.ReadRequest(file);
            File.Delete(file);
            return ForegroundSupervisor.Run(r);
        });
        return command;
    }
}

/// <summary>Runs a supervisor in this process; SIGTERM (and Ctrl-C with create -F) destroys the domain.</summary>
internal static class ForegroundSupervisor
{
    public static int Run(SupervisorRequest request)
    {
        using var cts = new CancellationTokenSource();
        void OnSignal(PosixSignalContext ctx) { ctx.Cancel = true; cts.Cancel(); }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx => ctx.Cancel = true);
        int rc = Supervisor.RunAsync(request, RemoteFiles.LocalPath, cts.Token).GetAwaiter().GetResult();
        return rc == 0 ? ExitCodes.Ok : ExitCodes.Unavailable;
    }
}
