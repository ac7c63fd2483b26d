using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Domains;
using DomBoot.Toolstack.Lifecycle;
using DomBoot.Toolstack.Supervision;

namespace DomBoot.Cli.Commands;

/// <summary>
/// `domboot save DOMAIN FILE [-c]` and `domboot restore FILE [-p]` (xl save / xl restore): the save file carries
/// the domain's config, the exact QEMU argv, its boot files and QEMU's migration stream (format: SaveImageHeader).
/// </summary>
internal static class SaveRestoreCommands
{
    public static IEnumerable<Command> All() => [Save(), Restore()];

    private static Command Save()
    {
        var domain = DomainOptions.Domain();
        var file = new Argument<string>("FILE") { Description = "Save file to write (appears only when the save completed)" };
        var keep = new Option<bool>("--checkpoint", "-c") { Description = "Leave the domain running after saving it (xl save -c)" };
        var stateDir = DomainOptions.StateDir();
        var command = new Command("save", "Save a domain's memory and config to a file and remove the domain (xl save)");
        command.Arguments.Add(domain);
        command.Arguments.Add(file);
        command.Options.Add(keep);
        command.Options.Add(stateDir);
        command.SetAction(p =>
        {
            var control = new DomainControl(StateDirectory.Resolve(p.GetValue(stateDir)));
            string name = p.GetValue(domain)!;
            string path = Path.GetFullPath(p.GetValue(file)!);
            var entry = control.Store.Find(name);
            bool checkpoint = p.GetValue(keep);
            Console.Error.WriteLine($"Saving to {path}");
            JsonNode? result;
            try
            {
                result = control.CallAsync(name, "save", new JsonObject { ["file"] = path, ["keep"] = checkpoint },
                    Supervisor.SaveTimeout + TimeSpan.FromSeconds(30), CancellationToken.None).GetAwaiter().GetResult();
            }
            catch (SupervisorGoneException)
            {
                // QEMU died during the save (the supervisor applied on_crash and ended before it answered), or the
                // supervisor itself was killed; either way FILE was never renamed into place.
                throw new UnavailableException($"domain {entry.Record.Name}: the save did not finish (its supervisor ended: QEMU exited or the supervisor was killed; see {Path.Combine(control.Store.State.Logs, entry.Record.Name + ".log")}); {path} was not written");
            }
            long bytes = result?["bytes"]?.GetValue<long>() ?? 0;
            double seconds = result?["seconds"]?.GetValue<double>() ?? 0;
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Saved domain {entry.Record.Name} to {path} ({bytes} bytes in {seconds:0.00} s)"));
            if (!checkpoint && !DomainControl.WaitGoneAsync(entry, DomainControl.GoneTimeout, CancellationToken.None).GetAwaiter().GetResult())
                throw new TimeoutException($"domain {entry.Record.Name} was saved but is still there after {DomainControl.GoneTimeout.TotalSeconds:0} s");
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Restore()
    {
        var file = new Argument<string>("FILE") { Description = "Save file written by `domboot save`" };
        var paused = new Option<bool>("--paused", "-p") { Description = "Leave the restored domain paused (unpause starts it)" };
        var stateDir = DomainOptions.StateDir();
        var command = new Command("restore", "Restore a saved domain under a new id, with the same name (xl restore)");
        command.Arguments.Add(file);
        command.Options.Add(paused);
        command.Options.Add(stateDir);
        command.SetAction(p =>
        {
            string path = Path.GetFullPath(p.GetValue(file)!);
            // The whole file is checked here, so a damaged or incomplete save fails before any process starts.
            var image = SaveImage.Open(path);
            var m = image.Metadata;
            var state = StateDirectory.Resolve(p.GetValue(stateDir));
            var control = new DomainControl(state);
            if (control.List().Any(r => r.Name == m.Name))
                throw new InvalidRequestException($"domain {m.Name} already exists; destroy it before restoring {path}");
            Console.Error.WriteLine($"Restoring domain from {path}");
            var request = new SupervisorRequest
            {
                State = state,
                ConfigPath = m.ConfigPath,
                ConfigText = m.ConfigText,
                Variables = m.Variables,
                Overrides = m.Overrides,
                Paused = p.GetValue(paused),
                RestoreFile = path,
            };
            var (name, id) = DomainLauncher.StartAsync(request, DomainLauncher.SelfCommand(), CancellationToken.None).GetAwaiter().GetResult();
            Console.Out.WriteLine($"Restored domain {name} (id {id})");
            return ExitCodes.Ok;
        });
        return command;
    }
}
