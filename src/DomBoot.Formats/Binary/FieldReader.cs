using System.Buffers.Binary;
using System.Text;
using DomBoot.Formats.Errors;

namespace DomBoot.Formats.Binary;

/// <summary>
/// Bounds-checked little/big-endian field access over one structure's bytes. Knows the structure's name and
/// absolute base offset, so every failure names what and where.
/// </summary>
public readonly ref struct FieldReader
{
    private readonly ReadOnlySpan<byte> _bytes;

    public FieldReader(ReadOnlySpan<byte> bytes, long baseOffset, string structure)
    {
        _bytes = bytes;
        BaseOffset = baseOffset;
        Structure = structure;
    }

    public long BaseOffset { get; }
    public string Structure { get; }
    public int Length => _bytes.Length;
    public ReadOnlySpan<byte> Span => _bytes;

    public void Require(int offset, int length)
    {
        if (offset < 0 || length < 0 || offset > _bytes.Length || length > _bytes.Length - offset)
            throw new TruncatedDataException(Structure, BaseOffset + Math.Max(0, offset), length, _bytes.Length - (long)offset);
    }

    public bool Has(int offset, int length) => offset >= 0 && length >= 0 && offset <= _bytes.Length && length <= _bytes.Length - offset;

    public byte U8(int offset) { Require(offset, 1); return _bytes[offset]; }
    public ushort U16(int offset) { Require(offset, 2); return BinaryPrimitives.ReadUInt16LittleEndian(_bytes.Slice(offset)); }
    public uint U32(int offset) { Require(offset, 4); return BinaryPrimitives.ReadUInt32LittleEndian(_bytes.Slice(offset)); }
    public ulong U64(int offset) { Require(offset, 8); return BinaryPrimitives.ReadUInt64LittleEndian(_bytes.Slice(offset)); }
    public ushort U16BE(int offset) { Require(offset, 2); return BinaryPrimitives.ReadUInt16BigEndian(_bytes.Slice(offset)); }
    public uint U32BE(int offset) { Require(offset, 4); return BinaryPrimitives.ReadUInt32BigEndian(_bytes.Slice(offset)); }
    public ulong U64BE(int offset) { Require(offset, 8); return BinaryPrimitives.ReadUInt64BigEndian(_bytes.Slice(offset)); }

    public ReadOnlySpan<byte> Bytes(int offset, int length) { Require(offset, length); return _bytes.Slice(offset, length); }

    /// <summary>A NUL-terminated (or field-length) ASCII string within [offset, offset+maxLength).</summary>
    public string CString(int offset, int maxLength)
    {
        Require(offset, 0);
        var span = _bytes.Slice(offset, Math.Min(maxLength, _bytes.Length - offset));
        int nul = span.IndexOf((byte)0);
        if (nul >= 0) span = span[..nul];
        return Encoding.Latin1.GetString(span);
    }

    public long Absolute(int offset) => BaseOffset + offset;

    public MalformedDataException Error(int offset, string detail) => new(Structure, BaseOffset + offset, detail);

    public MalformedDataException FieldError(int offset, string field, object actual, string expected) =>
        MalformedDataException.Field(Structure, BaseOffset + offset, field, actual, expected);

    /// <summary>Formats a number the way error messages show it.</summary>
    public static string Hex(ulong v) => "0x" + v.ToString("X", System.Globalization.CultureInfo.InvariantCulture);
}
