using System.IO.Compression;
using DomBoot.Formats.Errors;

namespace DomBoot.Formats.Cpio;

/// <summary>What <see cref="InitramfsBuilder.BuildFromDirectory"/> wrote.</summary>
/// <param name="EntryCount">Entries in the archive, not counting the trailer.</param>
/// <param name="ArchiveBytes">Size of the cpio archive before compression.</param>
/// <param name="OutputBytes">Size of the written file (compressed size with gzip).</param>
/// <param name="Skipped">Paths left out, each with the reason (sockets cannot be archived).</param>
public sealed record InitramfsBuildResult(string OutputPath, int EntryCount, long ArchiveBytes, long OutputBytes, IReadOnlyList<string> Skipped);

/// <summary>
/// Builds initramfs images: a directory tree, or entries composed in code, as one newc archive, optionally gzip'd
/// (the kernel's default CONFIG_RD_GZIP). Owners become root (uid/gid 0), as the image is unpacked by the kernel
/// for root; hard-linked files are stored as separate copies.
/// </summary>
public static class InitramfsBuilder
{
    public static class Limits
    {
        /// <summary>Deepest directory nesting walked.</summary>
        public const int MaxDepth = 256;
    }

    /// <summary>
    /// Archives everything under <paramref name="sourceDir"/> (not the directory itself) into
    /// <paramref name="outputPath"/>. Order is deterministic: each directory's entries sorted by ordinal name, a
    /// directory before its contents. Regular files, directories, symlinks (stored as links, never followed), character
    /// and block devices and fifos are kept; sockets are skipped and listed in the result. Each entry's mtime is
    /// <paramref name="mtime"/> when given (for reproducible images), otherwise the file's own. The output appears
    /// whole or not at all: it is written to a temporary file in the same directory and renamed.
    /// </summary>
    public static InitramfsBuildResult BuildFromDirectory(string sourceDir, string outputPath, bool gzip, DateTimeOffset? mtime = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(sourceDir);
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        var source = Path.GetFullPath(sourceDir);
        if (!Directory.Exists(source)) throw new DirectoryNotFoundException($"{sourceDir}: no such directory");
        var output = Path.GetFullPath(outputPath);
        var outputDir = Path.GetDirectoryName(output) ?? throw new ArgumentException($"{outputPath} has no directory", nameof(outputPath));
        if (!Directory.Exists(outputDir)) throw new DirectoryNotFoundException($"{outputDir}: no such directory");
        var temp = Path.Combine(outputDir, $".{Path.GetFileName(output)}.{Guid.NewGuid():N}.tmp");

        var skipped = new List<string>();
        int entries;
        long archiveBytes;
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                var sink = gzip ? new GZipStream(file, CompressionLevel.Optimal, leaveOpen: true) : (Stream)file;
                using (var writer = new CpioWriter(sink, new CpioWriterOptions { CreateParentDirectories = false }, leaveOpen: true))
                {
                    var walk = new Walk(writer, mtime, [temp, output], skipped);
                    walk.Directory(source, "", 0);
                    writer.Finish();
                    entries = writer.EntryCount;
                    archiveBytes = writer.BytesWritten;
                }
                if (gzip) sink.Dispose();
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, output, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); }
            catch (IOException) { } // the original failure is the one worth reporting
            throw;
        }
        return new InitramfsBuildResult(output, entries, archiveBytes, new FileInfo(output).Length, skipped);
    }

    /// <summary>
    /// Builds an archive in memory from what <paramref name="compose"/> adds (the trailer is added here), optionally
    /// gzip'd. Parent directories are created as needed unless <paramref name="options"/> says otherwise.
    /// </summary>
    public static byte[] BuildInMemory(Action<CpioWriter> compose, bool gzip, CpioWriterOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(compose);
        using var memory = new MemoryStream();
        using (var sink = gzip ? new GZipStream(memory, CompressionLevel.Optimal, leaveOpen: true) : null)
        {
            using var writer = new CpioWriter(sink ?? (Stream)memory, options, leaveOpen: true);
            compose(writer);
            writer.Finish();
        }
        return memory.ToArray();
    }

    private sealed class Walk(CpioWriter writer, DateTimeOffset? mtime, string[] exclude, List<string> skipped)
    {
        public void Directory(string full, string relative, int depth)
        {
            if (depth > Limits.MaxDepth)
                throw new UnsupportedFeatureException($"{full}: directories nested deeper than {Limits.MaxDepth} levels");
            var children = System.IO.Directory.EnumerateFileSystemEntries(full)
                .Select(p => Path.GetFileName(p))
                .Order(StringComparer.Ordinal)
                .ToList();
            foreach (var name in children)
            {
                var childFull = Path.Combine(full, name);
                if (exclude.Contains(childFull, StringComparer.Ordinal)) continue;
                var childRelative = relative.Length == 0 ? name : relative + "/" + name;
                Entry(childFull, childRelative, depth);
            }
        }

        private void Entry(string full, string relative, int depth)
        {
            var st = UnixLStat.Get(full);
            var time = mtime ?? DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(st.MTimeSeconds, 0, uint.MaxValue));
            switch (st.Type)
            {
                case CpioFileType.Directory:
                    writer.AddDirectory(relative, st.Permissions, time);
                    Directory(full, relative, depth + 1);
                    break;
                case CpioFileType.Regular:
                    if (st.Size > uint.MaxValue)
                        throw new UnsupportedFeatureException($"{full} is {st.Size} bytes; a newc entry holds at most {uint.MaxValue}");
                    using (var data = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan))
                        writer.AddFile(relative, data, st.Size, st.Permissions, time);
                    break;
                case CpioFileType.Symlink:
                    var target = new FileInfo(full).LinkTarget ?? throw new IOException($"{full}: symlink target unreadable");
                    writer.AddSymlink(relative, target, time);
                    break;
                case CpioFileType.CharDevice:
                    writer.AddCharDevice(relative, st.RDevMajor, st.RDevMinor, st.Permissions, time);
                    break;
                case CpioFileType.BlockDevice:
                    writer.AddBlockDevice(relative, st.RDevMajor, st.RDevMinor, st.Permissions, time);
                    break;
                case CpioFileType.Fifo:
                    writer.AddFifo(relative, st.Permissions, time);
                    break;
                default:
                    skipped.Add($"{relative}: {(st.Type == CpioFileType.Socket ? "socket" : "unknown file type")} skipped");
                    break;
            }
        }
    }
}
