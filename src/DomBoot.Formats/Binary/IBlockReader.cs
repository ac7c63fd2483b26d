namespace DomBoot.Formats.Binary;

/// <summary>Positional, thread-safe read access to a block device, image or slice. Nothing shares a stream position.</summary>
public interface IBlockReader
{
    long Length { get; }

    /// <summary>Fills <paramref name="destination"/> from <paramref name="offset"/>; throws TruncatedDataException past the end.</summary>
    void ReadExactly(long offset, Span<byte> destination);
}

/// <summary>An in-memory block reader, for parsed buffers and tests.</summary>
public sealed class MemoryBlockReader(ReadOnlyMemory<byte> data, string name = "buffer") : IBlockReader
{
    public long Length => data.Length;

    public void ReadExactly(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset > data.Length || destination.Length > data.Length - offset)
            throw new Errors.TruncatedDataException(name, offset, destination.Length, data.Length - offset);
        data.Span.Slice((int)offset, destination.Length).CopyTo(destination);
    }
}
