using System.CommandLine;

namespace DomBoot.Cli;

internal static class CommonOptions
{
    public static readonly Option<bool> Verbose = new("--verbose") { Description = "Show stack traces on errors", Recursive = true };

    public static Option<bool> Json() => new("--json") { Description = "Machine-readable JSON output" };
}
