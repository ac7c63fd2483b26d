using DomBoot.Formats.Binary;

namespace DomBoot.Storage.Filesystems;

public enum FsNodeType { Unknown, Regular, Directory, Symlink, CharDevice, BlockDevice, Fifo, Socket }

/// <summary>
/// One file-system object as its filesystem describes it. <see cref="Id"/> is the filesystem's own number
/// (ext inode, XFS inode, btrfs (subvolume, objectid) packed, FAT/ISO directory-entry position).
/// <see cref="Handle"/> carries reader-private state (extent list, first cluster); callers never touch it.
/// </summary>
public sealed record FsNode(
    ulong Id,
    FsNodeType Type,
    long SizeInBytes,
    uint Mode,
    uint Uid,
    uint Gid,
    uint LinkCount,
    DateTimeOffset? ModifiedTime,
    object? Handle = null);

/// <summary>One name in a directory.</summary>
public sealed record FsDirEntry(string Name, ulong Id, FsNodeType Type);

/// <summary>
/// A read-only filesystem over an <see cref="IBlockReader"/> volume. Implementations are thread-safe for reads,
/// never write to the volume, and throw only the exceptions STYLE.md allows (MalformedDataException and
/// subclasses, UnsupportedFeatureException, IOException, OperationCanceledException).
/// Path resolution (symlinks, "..", loop limit) is shared: see <see cref="PathResolver"/>.
/// </summary>
public interface IFileSystem
{
    /// <summary>Short type name as blkid prints it: "ext4", "xfs", "btrfs", "vfat", "iso9660".</summary>
    string TypeName { get; }

    string? Label { get; }

    /// <summary>UUID (or volume serial for FAT, e.g. "1234-ABCD") formatted as blkid prints it.</summary>
    string? Uuid { get; }

    FsNode Root { get; }

    /// <summary>Entries of a directory, without "." and "..".</summary>
    IReadOnlyList<FsDirEntry> ListDirectory(FsNode directory);

    /// <summary>One name in a directory (no symlink following); null when absent. Case rules are the filesystem's own.</summary>
    FsNode? Lookup(FsNode directory, string name);

    /// <summary>The parent of a directory (for ".."); the root's parent is the root.</summary>
    FsNode Parent(FsNode directory);

    /// <summary>Reads up to destination.Length bytes at <paramref name="offset"/>; returns bytes read (0 at end). Holes read as zeros.</summary>
    int Read(FsNode file, long offset, Span<byte> destination);

    /// <summary>The target of a symlink, as stored.</summary>
    string ReadLink(FsNode symlink);
}
