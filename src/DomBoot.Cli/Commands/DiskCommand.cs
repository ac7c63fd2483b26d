using System.CommandLine;
using DomBoot.Storage.Disks;

namespace DomBoot.Cli.Commands;

/// <summary>`domboot disk inspect IMAGE... [--json]`: format, partitions, filesystems of guest disks.</summary>
internal static class DiskCommand
{
    public static Command Build()
    {
        var disk = new Command("disk", "Inspect guest disk images (raw, qcow2; MBR, GPT, hybrid ISO)");
        var inspect = new Command("inspect", "Show format, virtual size, partition table, volumes and their filesystems");
        var images = new Argument<string[]>("IMAGE") { Arity = ArgumentArity.OneOrMore, Description = "Disk images; the first is vda/hd0, the next vdb/hd1, ..." };
        var json = new Option<bool>("--json") { Description = "Machine-readable JSON output" };
        inspect.Arguments.Add(images);
        inspect.Options.Add(json);
        inspect.SetAction(parseResult =>
        {
            var paths = parseResult.GetValue(images) ?? [];
            var reports = new List<DiskReport>();
            for (int i = 0; i < paths.Length; i++) reports.Add(DiskInspector.Inspect(paths[i], i));
            if (parseResult.GetValue(json))
            {
                using var stdout = Console.OpenStandardOutput();
                DiskReportRenderer.WriteJson(stdout, reports);
                stdout.WriteByte((byte)'\n');
            }
            else
            {
                DiskReportRenderer.WriteText(Console.Out, reports);
            }
            return 0;
        });
        disk.Subcommands.Add(inspect);
        return disk;
    }
}
