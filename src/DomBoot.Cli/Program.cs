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
            return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
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
