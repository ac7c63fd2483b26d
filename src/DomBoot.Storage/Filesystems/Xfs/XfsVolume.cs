using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Filesystems.Xfs;

/// <summary>The volume plus its parsed superblock: byte addressing of filesystem blocks, bounds-checked.</summary>
internal sealed class XfsVolume(IBlockReader reader, XfsSuperblock superblock)
{
    public XfsSuperblock Superblock { get; } = superblock;
    public long Length => reader.Length;

    /// <summary>Byte offset of linear block <paramref name="linear"/>; a block past the volume is malformed at <paramref name="refOffset"/>.</summary>
    public long BlockOffset(ulong linear, long refOffset, string structure)
    {
        ulong bs = Superblock.BlockSize;
        if (linear >= (ulong)reader.Length / bs)
            throw new MalformedDataException(structure, refOffset, $"block {linear} is past the end of the {reader.Length}-byte volume");
        return (long)(linear * bs);
    }

    public void Read(long offset, Span<byte> destination) => reader.ReadExactly(offset, destination);
}
