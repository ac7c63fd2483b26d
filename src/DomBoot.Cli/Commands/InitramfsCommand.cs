using System.CommandLine;
using System.Globalization;
using System.Text;
using DomBoot.Formats.Cpio;

namespace DomBoot.Cli.Commands;

/// <summary>`domboot initramfs build DIR -o FILE [--gzip]` and `domboot initramfs list FILE`.</summary>
internal static class InitramfsCommand
{
    /// <summary>Largest image `list` reads into memory.</summary>
    private const long MaxListBytes = 0x7FFFFFC7; // Array.MaxLength

    public static Command Build()
    {
        var command = new Command("initramfs", "Build and inspect initramfs images (cpio newc, optionally gzip'd)");
        command.Subcommands.Add(BuildCommand());
        command.Subcommands.Add(ListCommand());
        return command;
    }

    private static Command BuildCommand()
    {
        var dir = new Argument<string>("DIR") { Description = "Directory whose contents become the root of the initramfs" };
        var output = new Option<string>("--output", "-o") { Description = "Image file to write (replaced atomically)", Required = true };
        var gzip = new Option<bool>("--gzip") { Description = "Compress with gzip" };
        var mtime = new Option<long?>("--mtime") { Description = "Use this modification time (Unix seconds) for every entry, for reproducible images" };
        var command = new Command("build", "Pack a directory tree into a newc initramfs");
        command.Arguments.Add(dir);
        command.Options.Add(output);
        command.Options.Add(gzip);
        command.Options.Add(mtime);
        command.SetAction(parseResult =>
        {
            long? seconds = parseResult.GetValue(mtime);
            if (seconds is < 0 or > uint.MaxValue)
                throw new UsageException($"--mtime {seconds} is outside 0..{uint.MaxValue}");
            var result = InitramfsBuilder.BuildFromDirectory(parseResult.GetValue(dir)!, parseResult.GetValue(output)!,
                parseResult.GetValue(gzip), seconds is { } s ? DateTimeOffset.FromUnixTimeSeconds(s) : null);
            foreach (var note in result.Skipped) Console.Error.WriteLine($"domboot: note: {note}");
            Console.Out.WriteLine($"wrote {result.EntryCount} entries, {result.OutputBytes} bytes to {result.OutputPath}");
            return 0;
        });
        return command;
    }

    private static Command ListCommand()
    {
        var file = new Argument<string>("FILE") { Description = "Initramfs image: cpio archives, NUL padding and gzip segments" };
        var command = new Command("list", "List the entries of an initramfs, like cpio -tv");
        command.Arguments.Add(file);
        command.SetAction(parseResult =>
        {
            var path = parseResult.GetValue(file)!;
            var length = new FileInfo(path).Length;
            if (length > MaxListBytes)
                throw new UsageException($"{path} is {length} bytes; list reads at most {MaxListBytes}");
            var reader = new CpioReader(File.ReadAllBytes(path));
            var stdout = Console.Out;
            foreach (var segment in reader.ReadSegments(decompress: true))
            {
                if (segment.Kind == CpioSegmentKind.Compressed && !segment.Decompressed)
                {
                    stdout.WriteLine($"# {segment.Compression.ToString().ToLowerInvariant()} segment at offset 0x{segment.Offset:X}: not decompressed, not listed");
                    continue;
                }
                foreach (var entry in segment.Entries) stdout.WriteLine(Format(entry));
            }
            return 0;
        });
        return command;
    }

    /// <summary>One line in the style of `cpio -tv` (owner and group as numbers).</summary>
    internal static string Format(CpioEntry entry)
    {
        var h = entry.Header;
        var sb = new StringBuilder();
        sb.Append(TypeChar(h.Type)).Append(Permissions(h.Mode));
        sb.Append(CultureInfo.InvariantCulture, $" {h.NLink,3} {h.Uid,-8} {h.Gid,-8} ");
        if (h.Type is CpioFileType.CharDevice or CpioFileType.BlockDevice)
            sb.Append(CultureInfo.InvariantCulture, $"{h.RDevMajor,4}, {h.RDevMinor,4}");
        else
            sb.Append(CultureInfo.InvariantCulture, $"{h.FileSize,10}");
        var time = DateTimeOffset.FromUnixTimeSeconds(h.MTime);
        sb.Append(' ').Append(time.ToString("MMM dd  yyyy", CultureInfo.InvariantCulture)).Append(' ').Append(entry.Name);
        if (entry.SymlinkTarget is { } target) sb.Append(" -> ").Append(target);
        return sb.ToString();
    }

    private static char TypeChar(CpioFileType type) => type switch
    {
        CpioFileType.Directory => 'd',
        CpioFileType.Symlink => 'l',
        CpioFileType.CharDevice => 'c',
        CpioFileType.BlockDevice => 'b',
        CpioFileType.Fifo => 'p',
        CpioFileType.Socket => 's',
        CpioFileType.Regular => '-',
        _ => '?',
    };

    private static string Permissions(uint mode)
    {
        Span<char> p = stackalloc char[9];
        const string letters = "rwxrwxrwx";
        for (int i = 0; i < 9; i++) p[i] = (mode & (1u << (8 - i))) != 0 ? letters[i] : '-';
        if ((mode & 0x800) != 0) p[2] = p[2] == 'x' ? 's' : 'S';
        if ((mode & 0x400) != 0) p[5] = p[5] == 'x' ? 's' : 'S';
        if ((mode & 0x200) != 0) p[8] = p[8] == 'x' ? 't' : 'T';
        return new string(p);
    }
}
