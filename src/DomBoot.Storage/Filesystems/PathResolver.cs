using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Filesystems;

/// <summary>
/// Resolves guest paths the way the Linux VFS does inside one filesystem: absolute and relative symlinks,
/// "." and "..", at most <see cref="MaxSymlinkFollows"/> symlinks (the kernel's 40).
/// </summary>
public static class PathResolver
{
    public const int MaxSymlinkFollows = 40;
    public const int MaxPathBytes = 4096;
    public const int MaxComponents = 1024;

    /// <summary>Resolves <paramref name="path"/>; the last component's symlink is followed when <paramref name="followLast"/>.</summary>
    public static FsNode Resolve(IFileSystem fs, string path, bool followLast = true)
    {
        if (path.Length > MaxPathBytes) throw new MalformedDataException("path", -1, $"length is {path.Length}; expected at most {MaxPathBytes}");
        int follows = 0;
        return Walk(fs, fs.Root, path, followLast, ref follows, path);
    }

    public static FsNode? TryResolve(IFileSystem fs, string path, bool followLast = true)
    {
        try { return Resolve(fs, path, followLast); }
        catch (FileNotFoundException) { return null; }
        catch (DirectoryNotFoundException) { return null; }
    }

    private static FsNode Walk(IFileSystem fs, FsNode start, string path, bool followLast, ref int follows, string original)
    {
        var current = path.StartsWith('/') ? fs.Root : start;
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length > MaxComponents) throw new MalformedDataException("path", -1, $"has {parts.Length} components; expected at most {MaxComponents}");
        for (int i = 0; i < parts.Length; i++)
        {
            var name = parts[i];
            bool last = i == parts.Length - 1;
            if (current.Type != FsNodeType.Directory)
                throw new DirectoryNotFoundException($"{Quote.Text(original)}: {Quote.Text(name)} is reached through a non-directory");
            if (name == ".") continue;
            if (name == "..") { current = fs.Parent(current); continue; }
            var next = fs.Lookup(current, name)
                ?? throw new FileNotFoundException($"{Quote.Text(original)}: no such file or directory", original);
            if (next.Type == FsNodeType.Symlink && (!last || followLast))
            {
                if (++follows > MaxSymlinkFollows)
                    throw new MalformedDataException("path", -1, $"{Quote.Text(original)}: too many levels of symbolic links (more than {MaxSymlinkFollows})");
                var target = fs.ReadLink(next);
                if (target.Length == 0) throw new FileNotFoundException($"{Quote.Text(original)}: empty symlink target", original);
                next = Walk(fs, current, target, followLast: true, ref follows, original);
            }
            current = next;
        }
        return current;
    }
}
