using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using DomBoot.Storage.Filesystems;

namespace DomBoot.Cli.Commands;

/// <summary>`domboot fs ls|cat|stat IMAGE[:VOLUME] PATH`: look inside a guest disk without mounting it.</summary>
internal static class FsCommand
{
    /// <summary>Bound on a recursive listing, against directory cycles a hostile image can build.</summary>
    private const int MaxRecursionDepth = 64;
    private const int MaxRecursiveEntries = 1_000_000;

    public static Command Build()
    {
        var command = new Command("fs", "Read files from a guest disk image (ext2/3/4, XFS, btrfs, FAT, ISO9660) without mounting it");
        command.Subcommands.Add(Ls());
        command.Subcommands.Add(Cat());
        command.Subcommands.Add(Stat());
        return command;
    }

    private static Argument<string> Image() => new("IMAGE") { Description = "Disk image (raw or qcow2) or block device, optionally :VOLUME (partition number, e.g. disk.img:2)" };

    private static Argument<string> GuestPath() => new("PATH") { Description = "Path inside the guest filesystem", DefaultValueFactory = _ => "/" };

    private static Command Ls()
    {
        var image = Image();
        var path = GuestPath();
        var longFormat = new Option<bool>("-l") { Description = "Long listing: mode, links, owner, size, time" };
        var recursive = new Option<bool>("--recursive", "-R") { Description = "List subdirectories too" };
        var json = CommonOptions.Json();
        var c = new Command("ls", "List a directory (symlinks are followed as the guest kernel would)");
        c.Arguments.Add(image);
        c.Arguments.Add(path);
        c.Options.Add(longFormat);
        c.Options.Add(recursive);
        c.Options.Add(json);
        c.SetAction(parseResult =>
        {
            using var mounted = MountedVolume.Open(parseResult.GetValue(image)!);
            var fs = mounted.FileSystem;
            var start = parseResult.GetValue(path)!;
            var node = PathResolver.Resolve(fs, start);
            var rows = new List<(string Path, FsNode Node, string? Target)>();
            int count = 0;
            void Walk(FsNode dir, string prefix, int depth)
            {
                foreach (var e in fs.ListDirectory(dir).OrderBy(e => e.Name, StringComparer.Ordinal))
                {
                    if (++count > MaxRecursiveEntries) throw new Formats.Errors.MalformedDataException(mounted.Description, -1, $"listing passes {MaxRecursiveEntries} entries; expected fewer");
                    var child = fs.Lookup(dir, e.Name);
                    if (child is null) continue;
                    string full = prefix.EndsWith('/') ? prefix + e.Name : prefix + "/" + e.Name;
                    rows.Add((full, child, child.Type == FsNodeType.Symlink ? fs.ReadLink(child) : null));
                    if (parseResult.GetValue(recursive) && child.Type == FsNodeType.Directory && depth < MaxRecursionDepth)
                        Walk(child, full, depth + 1);
                }
            }
            if (node.Type == FsNodeType.Directory) Walk(node, start, 0);
            else rows.Add((start, node, node.Type == FsNodeType.Symlink ? fs.ReadLink(node) : null));
            if (parseResult.GetValue(json))
            {
                using var w = new Utf8JsonWriter(Console.OpenStandardOutput(), new JsonWriterOptions { Indented = true });
                w.WriteStartArray();
                foreach (var r in rows) WriteNode(w, r.Path, r.Node, r.Target);
                w.WriteEndArray();
                w.Flush();
                Console.Out.WriteLine();
                return 0;
            }
            foreach (var r in rows)
            {
                string name = parseResult.GetValue(recursive) || node.Type != FsNodeType.Directory ? r.Path : Path.GetFileName(r.Path);
                Console.Out.WriteLine(parseResult.GetValue(longFormat) ? LongLine(r.Node, name, r.Target) : name);
            }
            return 0;
        });
        return c;
    }

    private static Command Cat()
    {
        var image = Image();
        var path = new Argument<string>("PATH") { Description = "File inside the guest filesystem" };
        var c = new Command("cat", "Write a guest file's bytes to standard output");
        c.Arguments.Add(image);
        c.Arguments.Add(path);
        c.SetAction(parseResult =>
        {
            using var mounted = MountedVolume.Open(parseResult.GetValue(image)!);
            var fs = mounted.FileSystem;
            var node = PathResolver.Resolve(fs, parseResult.GetValue(path)!);
            if (node.Type != FsNodeType.Regular)
                throw new Formats.Errors.InvalidRequestException($"{parseResult.GetValue(path)} is a {node.Type.ToString().ToLowerInvariant()}, not a regular file");
            using var stdout = Console.OpenStandardOutput();
            var buffer = new byte[1 << 20];
            long offset = 0;
            while (offset < node.SizeInBytes)
            {
                int n = fs.Read(node, offset, buffer.AsSpan(0, (int)Math.Min(buffer.Length, node.SizeInBytes - offset)));
                // A reader returns 0 only at the end: stopping early would pass a truncated file off as whole.
                if (n <= 0)
                    throw new Formats.Errors.MalformedDataException($"{mounted.Description} {Formats.Errors.Quote.Text(parseResult.GetValue(path)!)}", -1,
                        string.Create(CultureInfo.InvariantCulture, $"read stops at byte {offset} of {node.SizeInBytes}"));
                stdout.Write(buffer, 0, n);
                offset += n;
            }
            return 0;
        });
        return c;
    }

    private static Command Stat()
    {
        var image = Image();
        var path = GuestPath();
        var follow = new Option<bool>("--dereference", "-L") { Description = "Follow a final symlink (as stat -L); without it a symlink is described itself" };
        var json = CommonOptions.Json();
        var c = new Command("stat", "Describe one file: type, size, mode, owner, time, filesystem");
        c.Arguments.Add(image);
        c.Arguments.Add(path);
        c.Options.Add(follow);
        c.Options.Add(json);
        c.SetAction(parseResult =>
        {
            using var mounted = MountedVolume.Open(parseResult.GetValue(image)!);
            var fs = mounted.FileSystem;
            var p = parseResult.GetValue(path)!;
            var node = PathResolver.Resolve(fs, p, followLast: parseResult.GetValue(follow));
            string? target = node.Type == FsNodeType.Symlink ? fs.ReadLink(node) : null;
            if (parseResult.GetValue(json))
            {
                using var w = new Utf8JsonWriter(Console.OpenStandardOutput(), new JsonWriterOptions { Indented = true });
                WriteNode(w, p, node, target, mounted);
                w.Flush();
                Console.Out.WriteLine();
                return 0;
            }
            var o = Console.Out;
            o.WriteLine($"  File: {p}{(target is null ? "" : " -> " + target)}");
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  Type: {node.Type.ToString().ToLowerInvariant()}  Size: {node.SizeInBytes}  Id: {node.Id}  Links: {node.LinkCount}"));
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  Mode: {ModeText(node)} (0{Convert.ToString(node.Mode & 0xFFF, 8)})  Uid: {node.Uid}  Gid: {node.Gid}"));
            o.WriteLine($"Modify: {node.ModifiedTime?.ToString("yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture) ?? "-"}");
            o.WriteLine($"Volume: {mounted.Description}  label {mounted.FileSystem.Label ?? "-"}  uuid {mounted.FileSystem.Uuid ?? "-"}");
            return 0;
        });
        return c;
    }

    private static void WriteNode(Utf8JsonWriter w, string path, FsNode n, string? target, MountedVolume? volume = null)
    {
        w.WriteStartObject();
        w.WriteString("path", path);
        w.WriteString("type", n.Type.ToString().ToLowerInvariant());
        w.WriteNumber("size", n.SizeInBytes);
        w.WriteNumber("id", n.Id);
        w.WriteString("mode", "0" + Convert.ToString(n.Mode & 0xFFF, 8));
        w.WriteNumber("uid", n.Uid);
        w.WriteNumber("gid", n.Gid);
        w.WriteNumber("links", n.LinkCount);
        if (n.ModifiedTime is { } t) w.WriteString("modified", t);
        if (target is not null) w.WriteString("target", target);
        if (volume is not null)
        {
            w.WriteNumber("volume", volume.Volume.Index);
            w.WriteString("filesystem", volume.FileSystem.TypeName);
            w.WriteString("label", volume.FileSystem.Label);
            w.WriteString("uuid", volume.FileSystem.Uuid);
        }
        w.WriteEndObject();
    }

    private static string LongLine(FsNode n, string name, string? target) =>
        string.Create(CultureInfo.InvariantCulture,
            $"{ModeText(n)} {n.LinkCount,3} {n.Uid,5} {n.Gid,5} {n.SizeInBytes,12} {n.ModifiedTime?.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) ?? "-",16} {name}{(target is null ? "" : " -> " + target)}");

    private static string ModeText(FsNode n)
    {
        char t = n.Type switch
        {
            FsNodeType.Directory => 'd', FsNodeType.Symlink => 'l', FsNodeType.CharDevice => 'c',
            FsNodeType.BlockDevice => 'b', FsNodeType.Fifo => 'p', FsNodeType.Socket => 's', _ => '-',
        };
        var chars = new char[10];
        chars[0] = t;
        const string rwx = "rwxrwxrwx";
        for (int i = 0; i < 9; i++) chars[i + 1] = (n.Mode & (1u << (8 - i))) != 0 ? rwx[i] : '-';
        return new string(chars);
    }
}
