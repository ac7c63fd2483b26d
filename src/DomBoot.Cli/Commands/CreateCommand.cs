using System.CommandLine;
using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Config;
using DomBoot.Toolstack.Domains;
using DomBoot.Toolstack.Lifecycle;
using DomBoot.Toolstack.Supervision;

namespace DomBoot.Cli.Commands;

/// <summary>
/// `domboot create CFG [KEY=VALUE ...] [-D var=value ...] [-n] [-p] [-c] [-F]`: parses an xl.cfg-style config with
/// variables and overrides; -n prints what the domain would get; otherwise a supervisor starts the domain and
/// keeps it (in the background, or in the foreground with -F).
/// </summary>
internal static class CreateCommand
{
    public static Command Build()
    {
        var config = new Argument<string>("CFG") { Description = "Domain config in xl.cfg syntax (/dev/null: only the key=value arguments)" };
        var overrides = new Argument<string[]>("KEY=VALUE") { Arity = ArgumentArity.ZeroOrMore, Description = "Settings applied after the file, in xl.cfg syntax ('a=1; b=\"x\"' sets several)" };
        var define = new Option<string[]>("-D") { Description = "Define variables for ${name} in the config: -D vmid=3:ip=10.0.0.3", AllowMultipleArgumentsPerToken = false };
        var dryRun = new Option<bool>("--dry-run", "-n") { Description = "Print what the domain would get (including the exact QEMU argv); start nothing" };
        var domid = new Option<int?>("--domid") { Description = "Domain id the dry run plans for (default: the id create would pick)" };
        var paused = new Option<bool>("--paused", "-p") { Description = "Leave the domain paused after creating it (unpause starts it)" };
        var console = new Option<bool>("--console", "-c") { Description = "Attach to the domain's console after creating it (Ctrl-] detaches)" };
        var foreground = new Option<bool>("--foreground", "-F") { Description = "Stay in the foreground until the domain is gone (Ctrl-C destroys it)" };
        var json = CommonOptions.Json();
        var stateDir = DomainOptions.StateDir();
        var command = new Command("create", "Create a domain from a config file (xl create)");
        command.Arguments.Add(config);
        command.Arguments.Add(overrides);
        foreach (var o in new Option[] { define, dryRun, domid, paused, console, foreground, json, stateDir }) command.Options.Add(o);
        command.SetAction(parseResult =>
        {
            string path = parseResult.GetValue(config)!;
            var variables = XlVariables.ParseDefines(parseResult.GetValue(define) ?? []);
            var overrideList = parseResult.GetValue(overrides) ?? [];
            string text = ReadConfig(path);
            var parsed = XlConfig.Parse(text, path, variables).ApplyOverrides(overrideList);
            var state = StateDirectory.Resolve(parseResult.GetValue(stateDir));
            if (parseResult.GetValue(dryRun))
            {
                int id = parseResult.GetValue(domid) ?? new DomainStore(state).NextId();
                var plan = DomainPlanner.Plan(parsed, id);
                var exact = DryRun.ExactArgv(parsed, plan, state, out string? why);
                if (parseResult.GetValue(json))
                    Console.Out.Write(DomainPlanText.ToJson(exact is null ? plan : plan with { QemuArgs = exact }) + "\n");
                else
                {
                    Console.Out.Write(DomainPlanText.Render(exact is null ? plan : plan with { QemuArgs = exact }, path));
                    if (why is not null) Console.Out.Write($"warning: the QEMU arguments above are only the domain's part: {why}\n");
                }
                return ExitCodes.Ok;
            }
            var request = new SupervisorRequest
            {
                State = state,
                ConfigPath = path,
                ConfigText = text,
                Variables = variables,
                Overrides = overrideList,
                Paused = parseResult.GetValue(paused),
            };
            Console.Error.WriteLine($"Parsing config from {path}");
            if (parseResult.GetValue(foreground))
                return ForegroundSupervisor.Run(request with { Foreground = true });
            var (name, domainId) = DomainLauncher.StartAsync(request, DomainLauncher.SelfCommand(), CancellationToken.None).GetAwaiter().GetResult();
            Console.Out.WriteLine($"Started domain {name} (id {domainId})");
            if (parseResult.GetValue(console)) return ConsoleCommand.Attach(state, name);
            return ExitCodes.Ok;
        });
        return command;
    }

    internal static string ReadConfig(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists && path != "/dev/null") throw new FileNotFoundException($"{path}: no such file", path);
        if (info.Exists && info.Length > XlSyntax.Limits.MaxTextChars)
            throw new MalformedDataException(path, -1, $"config is {info.Length} bytes; expected at most {XlSyntax.Limits.MaxTextChars}");
        return File.ReadAllText(path);
    }
}
