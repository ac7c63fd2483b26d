using System.Buffers.Binary;
using System.IO.Compression;
using DomBoot.Formats.Errors;

namespace DomBoot.Formats.Kernel;

/// <summary>
/// Inflates a gzip-wrapped kernel (RFC 1952; Xen's xc_dom_try_gunzip, boot-formats.md 3.5) with a hard output cap:
/// the ISIZE trailer is checked against the cap before inflating and the output is counted while inflating.
/// </summary>
internal static class GzipKernel
{
    internal const string StructureName = "gzip stream";
    private const int HeaderSize = 10;
    private const int TrailerSize = 8;
    private const int DeflateMaxRatio = 1032; // deflate cannot expand one input byte into more than ~1032

    public static bool HasMagic(ReadOnlySpan<byte> file) => file.Length >= 2 && file[0] == 0x1F && file[1] == 0x8B;

    public static ReadOnlyMemory<byte> Inflate(ReadOnlySpan<byte> file, long imageOffset, long maxOutputBytes)
    {
        if (file.Length < HeaderSize + TrailerSize)
            throw new TruncatedDataException(StructureName, imageOffset, HeaderSize + TrailerSize, file.Length);
        if (file[2] != 8)
            throw MalformedDataException.Field(StructureName, imageOffset + 2, "CM", file[2], "8 (deflate)");
        uint isize = BinaryPrimitives.ReadUInt32LittleEndian(file[^4..]);
        long isizeAt = imageOffset + file.Length - 4;
        if (isize > maxOutputBytes)
            throw MalformedDataException.Field(StructureName, isizeAt, "ISIZE", isize,
                FormattableString.Invariant($"at most {maxOutputBytes} bytes (the inflate limit)"));

        long capacity = Math.Min(isize, Math.Min(maxOutputBytes, (long)file.Length * DeflateMaxRatio));
        using var output = new MemoryStream((int)capacity);
        var buffer = new byte[64 * 1024];
        try
        {
            using var input = new MemoryStream(file.ToArray(), writable: false);
            using var gz = new GZipStream(input, CompressionMode.Decompress);
            int n;
            while ((n = gz.Read(buffer, 0, buffer.Length)) > 0)
            {
                if (output.Length + n > maxOutputBytes)
                    throw new MalformedDataException(StructureName, imageOffset,
                        FormattableString.Invariant($"inflates to more than {maxOutputBytes} bytes (the inflate limit); ISIZE claims {isize}"));
                output.Write(buffer, 0, n);
            }
        }
        catch (InvalidDataException e)
        {
            throw new MalformedDataException(StructureName, imageOffset, "corrupt deflate data: " + e.Message);
        }
        if ((uint)output.Length != isize)
            throw MalformedDataException.Field(StructureName, isizeAt, "ISIZE", isize,
                FormattableString.Invariant($"{(uint)output.Length} (the inflated size mod 2^32)"));
        return new ReadOnlyMemory<byte>(output.GetBuffer(), 0, (int)output.Length);
    }
}
