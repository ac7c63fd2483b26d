using System.Buffers.Binary;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;
using DomBoot.Storage.Filesystems.Xfs;

namespace DomBoot.Storage.Tests.Filesystems.Xfs;

/// <summary>An in-memory overlay of byte patches over a read-only volume (the image file itself is never written).</summary>
internal sealed class PatchedBlockReader(IBlockReader inner, long? length = null) : IBlockReader
{
    private readonly List<(long Offset, byte[] Bytes)> _patches = [];

    public long Length => length ?? inner.Length;

    public void ReadExactly(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset > Length || destination.Length > Length - offset)
            throw new TruncatedDataException("patched volume", offset, destination.Length, Length - offset);
        inner.ReadExactly(offset, destination);
        foreach (var (at, bytes) in _patches)
        {
            long start = Math.Max(at, offset);
            long end = Math.Min(at + bytes.Length, offset + destination.Length);
            if (start < end) bytes.AsSpan((int)(start - at), (int)(end - start)).CopyTo(destination[(int)(start - offset)..]);
        }
    }

    public void Write(long offset, ReadOnlySpan<byte> bytes) => _patches.Add((offset, bytes.ToArray()));
    public void U8(long offset, byte v) => Write(offset, [v]);
    public void U16(long offset, ushort v) { Span<byte> b = stackalloc byte[2]; BinaryPrimitives.WriteUInt16BigEndian(b, v); Write(offset, b); }
    public void U32(long offset, uint v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteUInt32BigEndian(b, v); Write(offset, b); }
    public void U64(long offset, ulong v) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteUInt64BigEndian(b, v); Write(offset, b); }

    public byte[] Get(long offset, int count)
    {
        var b = new byte[count];
        ReadExactly(offset, b);
        return b;
    }

    public ushort GetU16(long offset) => BinaryPrimitives.ReadUInt16BigEndian(Get(offset, 2));
    public uint GetU32(long offset) => BinaryPrimitives.ReadUInt32BigEndian(Get(offset, 4));
    public ulong GetU64(long offset) => BinaryPrimitives.ReadUInt64BigEndian(Get(offset, 8));

    /// <summary>Recomputes the v5 crc32c of the structure at <paramref name="offset"/> so checks past the crc are reached.</summary>
    public void FixCrc(long offset, int length, int crcOffset)
    {
        var b = Get(offset, length);
        Span<byte> crc = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(crc, XfsCrc32c.Compute(b, crcOffset));
        Write(offset + crcOffset, crc);
    }
}
