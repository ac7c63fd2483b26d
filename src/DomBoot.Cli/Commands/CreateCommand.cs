using System.CommandLine;
using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Config;

namespace DomBoot.Cli.Commands;

/// <summary>
/// `domboot create CFG [-D var=value ...] [key=value ...] -n [--json] [--domid N]`: parses an xl.cfg-style config
/// with variables and overrides and prints what the domain would get. Only the dry run exists so far.
/// </summary>
internal static class CreateCommand
{
    public const string NotYet = "domboot: create: only the dry run (-n) is implemented so far";

    public static Command Build()
    {
        var config = new Argument<string>("CFG") { Description = "Domain config in xl.cfg syntax (/dev/null: only the key=value arguments)" };
        var overrides = new Argument<string[]>("KEY=VALUE") { Arity = ArgumentArity.ZeroOrMore, Description = "Settings applied after the file, in xl.cfg syntax ('a=1; b=\"x\"' sets several)" };
        var define = new Option<string[]>("-D") { Description = "Define variables for ${name} in the config: -D vmid=3:ip=10.0.0.3", AllowMultipleArgumentsPerToken = false };
        var dryRun = new Option<bool>("--dry-run", "-n") { Description = "Print what the domain would get; start nothing" };
        var domid = new Option<int>("--domid") { Description = "Domain id to plan for (ssh forward 22NN); the real create picks the next free id", DefaultValueFactory = _ => 1 };
        var json = CommonOptions.Json();
        var command = new Command("create", "Create a domain from a config file (only the dry run -n so far)");
        command.Arguments.Add(config);
        command.Arguments.Add(overrides);
        command.Options.Add(define);
        command.Options.Add(dryRun);
        command.Options.Add(domid);
        command.Options.Add(json);
        command.SetAction(parseResult =>
        {
            if (!parseResult.GetValue(dryRun))
            {
                Console.Error.WriteLine(NotYet);
                return ExitCodes.Unavailable;
            }
            string path = parseResult.GetValue(config)!;
            var variables = XlVariables.ParseDefines(parseResult.GetValue(define) ?? []);
            var parsed = XlConfig.Parse(ReadConfig(path), path, variables).ApplyOverrides(parseResult.GetValue(overrides) ?? []);
            var plan = DomainPlanner.Plan(parsed, parseResult.GetValue(domid));
            Console.Out.Write(parseResult.GetValue(json) ? DomainPlanText.ToJson(plan) + "\n" : DomainPlanText.Render(plan, path));
            return ExitCodes.Ok;
        });
        return command;
    }

    private static string ReadConfig(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists && path != "/dev/null") throw new FileNotFoundException($"{path}: no such file", path);
        if (info.Exists && info.Length > XlSyntax.Limits.MaxTextChars)
            throw new MalformedDataException(path, -1, $"config is {info.Length} bytes; expected at most {XlSyntax.Limits.MaxTextChars}");
        return File.ReadAllText(path);
    }
}
