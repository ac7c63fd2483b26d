using DomBoot.Formats.Binary;

namespace DomBoot.Storage.Images;

/// <summary>
/// An opened guest disk: a qcow2 image (detected by its "QFI\xfb" magic) or anything else read as raw
/// (a plain file or a block device). <see cref="Reader"/> is the guest-visible disk.
/// </summary>
public sealed class DiskImage : IDisposable
{
    private readonly IDisposable _owner;

    public string Path { get; }

    /// <summary>"qcow2" or "raw", as qemu-img info names them.</summary>
    public string Format { get; }

    /// <summary>The guest-visible bytes of the disk.</summary>
    public IBlockReader Reader { get; }

    public long VirtualSize => Reader.Length;

    /// <summary>Size of the image file itself.</summary>
    public long FileSize { get; }

    /// <summary>Backing files, nearest first (empty for raw or unbacked qcow2).</summary>
    public IReadOnlyList<string> BackingChain { get; }

    /// <summary>The parsed qcow2 header, or null for raw.</summary>
    public Qcow2Header? Qcow2Header { get; }

    private DiskImage(string path, string format, IBlockReader reader, IDisposable owner, long fileSize,
        IReadOnlyList<string> chain, Qcow2Header? header)
    {
        Path = path;
        Format = format;
        Reader = reader;
        _owner = owner;
        FileSize = fileSize;
        BackingChain = chain;
        Qcow2Header = header;
    }

    public static DiskImage Open(string path)
    {
        var raw = new FileBlockReader(path);
        bool qcow2;
        try
        {
            qcow2 = Qcow2BlockReader.IsQcow2(raw);
        }
        catch
        {
            raw.Dispose();
            throw;
        }
        if (!qcow2) return new DiskImage(path, "raw", raw, raw, raw.Length, [], null);
        long fileSize = raw.Length;
        raw.Dispose();
        var q = Qcow2BlockReader.Open(path);
        var chain = new List<string>();
        for (var b = q; b?.BackingPath is { } bp; b = b.Backing as Qcow2BlockReader) chain.Add(bp);
        return new DiskImage(path, "qcow2", q, q, fileSize, chain, q.Header);
    }

    public void Dispose() => _owner.Dispose();
}
