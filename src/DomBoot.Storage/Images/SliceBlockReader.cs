using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Images;

/// <summary>A byte range [offset, offset+length) of another reader, e.g. one partition of a disk.</summary>
public sealed class SliceBlockReader : IBlockReader
{
    private readonly IBlockReader _parent;

    public long Offset { get; }
    public long Length { get; }

    public SliceBlockReader(IBlockReader parent, long offset, long length)
    {
        ArgumentNullException.ThrowIfNull(parent);
        if (offset < 0 || length < 0 || offset > parent.Length || length > parent.Length - offset)
            throw new MalformedDataException("slice", offset,
                $"range of {length} bytes at 0x{offset:X} lies outside the {parent.Length}-byte device");
        _parent = parent;
        Offset = offset;
        Length = length;
    }

    public void ReadExactly(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset > Length || destination.Length > Length - offset)
            throw new TruncatedDataException("slice", Offset + Math.Max(0, offset), destination.Length, Length - offset);
        _parent.ReadExactly(Offset + offset, destination);
    }
}
