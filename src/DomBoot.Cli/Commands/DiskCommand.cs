using System.CommandLine;
using DomBoot.Storage.Disks;

namespace DomBoot.Cli.Commands;

/// <summary>`domboot disk inspect IMAGE... [--json]` and `domboot disk read IMAGE [--offset N] [--length N] [-o FILE]`.</summary>
internal static class DiskCommand
{
    public static Command Build()
    {
        var disk = new Command("disk", "Inspect and read guest disk images (raw, qcow2; MBR, GPT, hybrid ISO)");
        disk.Subcommands.Add(BuildInspect());
        disk.Subcommands.Add(BuildRead());
        return disk;
    }

    private static Command BuildInspect()
    {
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
        return inspect;
    }

    private static Command BuildRead()
    {
        var read = new Command("read", "Write a byte range of the disk as the guest sees it (qcow2 decoded) to a file or stdout");
        var image = new Argument<string>("IMAGE") { Description = "Disk image" };
        var offset = new Option<long>("--offset") { Description = "First byte (default 0)" };
        var length = new Option<long>("--length") { Description = "Bytes to copy (default: to the end)", DefaultValueFactory = _ => -1 };
        var output = new Option<string?>("--output", "-o") { Description = "Output file (default stdout); written whole or not at all" };
        read.Arguments.Add(image);
        read.Options.Add(offset);
        read.Options.Add(length);
        read.Options.Add(output);
        read.SetAction(async (parseResult, cancellationToken) =>
        {
            string path = parseResult.GetValue(image)!;
            long off = parseResult.GetValue(offset), len = parseResult.GetValue(length);
            if (parseResult.GetValue(output) is not { Length: > 0 } target)
            {
                await using var stdout = Console.OpenStandardOutput();
                await DiskCopy.CopyAsync(path, off, len, stdout, cancellationToken: cancellationToken);
                return 0;
            }
            string full = Path.GetFullPath(target);
            if (File.Exists(full) && new FileInfo(full).Length == 0)
            {
                // Devices and pipes (e.g. /dev/null) report size 0 and are written in place: a rename would replace the node.
                await using var existing = new FileStream(full, FileMode.Open, FileAccess.Write);
                await DiskCopy.CopyAsync(path, off, len, existing, cancellationToken: cancellationToken);
                return 0;
            }
            string temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
            try
            {
                await using (var f = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
                {
                    await DiskCopy.CopyAsync(path, off, len, f, sparse: true, cancellationToken);
                }
                File.Move(temp, full, overwrite: true);
            }
            finally
            {
                if (File.Exists(temp)) File.Delete(temp);
            }
            return 0;
        });
        return read;
    }
}
