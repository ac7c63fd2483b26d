using System.CommandLine;
using DomBoot.Cli.Commands;

namespace DomBoot.Cli;

internal static class Program
{
    private static int Main(string[] args)
    {
        var root = BuildRoot();
        try
        {
            var parsed = root.Parse(args);
            if (parsed.Errors.Count > 0 && !args.Contains("--help") && !args.Contains("-h"))
            {
                Console.Error.WriteLine($"domboot: error: {parsed.Errors[0].Message} (see domboot --help)");
                return ExitCodes.Usage;
            }
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception ex) when (ExitCodes.IsExpected(ex))
        {
            bool verbose = args.Contains("--verbose");
            return ExitCodes.Report(ex, verbose, Console.Error);
        }
    }

    internal static RootCommand BuildRoot()
    {
        var root = new RootCommand("domboot: boot virtual-machine guests the Xen way, on QEMU");
        root.Options.Add(CommonOptions.Verbose);
        foreach (var c in CommandCatalog.All()) root.Subcommands.Add(c);
        return root;
    }
}
