using System.Buffers.Binary;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Formats.Kernel;

/// <summary>Compression of the bzImage payload, by magic at its start (lib/decompress.c, boot.rst "payload_offset").</summary>
public enum PayloadCompression
{
    Unknown,
    Gzip,
    Bzip2,
    Lzma,
    Xz,
    Lzo,
    Lz4,
    Zstd,
    /// <summary>Uncompressed ELF vmlinux.</summary>
    None,
}

/// <summary>
/// kernel_info (boot protocol 2.15+, boot.rst "The kernel_info"): fixed "LToP" header at the start of the
/// protected-mode code + kernel_info_offset.
/// </summary>
public sealed record BzImageKernelInfo(long FileOffset, uint Size, uint SizeTotal, uint SetupTypeMax)
{
    internal const string StructureName = "kernel_info";

    internal static class Offsets
    {
        public const int Header = 0x00;
        public const int Size = 0x04;
        public const int SizeTotal = 0x08;
        public const int SetupTypeMax = 0x0C;
    }

    internal const uint Magic = 0x506F544C; // "LToP"
    internal const int FixedSize = 16;

    internal static BzImageKernelInfo Parse(ReadOnlySpan<byte> file, long imageOffset, long fileOffset)
    {
        if (fileOffset + FixedSize > file.Length)
            throw new TruncatedDataException(StructureName, imageOffset + fileOffset, FixedSize, file.Length - fileOffset);
        var r = new FieldReader(file.Slice((int)fileOffset, FixedSize), imageOffset + fileOffset, StructureName);
        uint header = r.U32(Offsets.Header);
        if (header != Magic)
            throw r.FieldError(Offsets.Header, "header", Quote.Bytes(r.Bytes(Offsets.Header, 4)), "\"LToP\"");
        uint size = r.U32(Offsets.Size);
        uint total = r.U32(Offsets.SizeTotal);
        if (size < FixedSize)
            throw r.FieldError(Offsets.Size, "size", size, ">= 16");
        if (total < size || fileOffset + total > file.Length)
            throw r.FieldError(Offsets.SizeTotal, "size_total", total,
                FormattableString.Invariant($">= size {size} and within the file of {file.Length} bytes"));
        return new BzImageKernelInfo(imageOffset + fileOffset, size, total, r.U32(Offsets.SetupTypeMax));
    }
}

/// <summary>
/// An x86 bzImage (Linux boot protocol, Documentation/arch/x86/boot.rst): setup header, version string (1.12 of
/// boot-formats.md), payload location and compression, kernel_info and the EFI-stub PE view.
/// </summary>
public sealed record BzImage
{
    public required BzImageSetupHeader Header { get; init; }
    /// <summary>String at kernel_version + 0x200, or null when kernel_version is 0.</summary>
    public string? KernelVersionString { get; init; }
    /// <summary>"6.1.0-56-cloud-amd64": the version string up to its first space.</summary>
    public string? KernelRelease => KernelVersionString is { } s ? s.Split(' ', 2)[0] : null;
    /// <summary>Absolute offset of the protected-mode code.</summary>
    public long ProtectedModeFileOffset { get; init; }
    /// <summary>Absolute offset of the payload (2.08+).</summary>
    public long? PayloadFileOffset { get; init; }
    public uint? PayloadLengthInBytes { get; init; }
    /// <summary>Unknown before protocol 2.08 (no payload fields).</summary>
    public PayloadCompression PayloadCompression { get; init; }
    /// <summary>The u32 trailer in the last 4 bytes of the payload (gzip: ISIZE).</summary>
    public uint? UncompressedPayloadSize { get; init; }
    public BzImageKernelInfo? KernelInfo { get; init; }
    /// <summary>"MZ" + a valid PE header: the kernel has an EFI stub.</summary>
    public bool IsEfiPe => Pe is not null;
    public PeImage? Pe { get; init; }

    public static BzImage Parse(ReadOnlySpan<byte> file, long imageOffset)
    {
        var header = BzImageSetupHeader.Parse(file, imageOffset);
        string? version = null;
        if (header.KernelVersionPointer != 0)
        {
            // bounded by the setup header check: kernel_version < 0x200 * setup_sects, inside the real-mode part
            int at = header.KernelVersionPointer + BzImageSetupHeader.Constants.SectorSize;
            var r = new FieldReader(file, imageOffset, BzImageSetupHeader.StructureName + " kernel_version string");
            version = r.CString(at, Math.Min(Limits.MaxKernelVersionBytes, header.ProtectedModeOffset - at));
        }

        long pm = header.ProtectedModeOffset;
        long? payloadAt = header.PayloadFileOffset;
        var compression = PayloadCompression.Unknown;
        uint? trailer = null;
        if (payloadAt is { } p && header.PayloadLength is { } len && len > 0)
        {
            var payload = file.Slice((int)p, (int)len); // bounded by the header parse
            compression = DetectCompression(payload);
            if (len >= 4)
                trailer = BinaryPrimitives.ReadUInt32LittleEndian(payload[^4..]);
        }

        BzImageKernelInfo? info = null;
        if (header.KernelInfoOffset is { } kio && kio != 0)
            info = BzImageKernelInfo.Parse(file, imageOffset, checked(pm + kio));

        PeImage? pe = PeImage.HasMagic(file) ? PeImage.Parse(file, imageOffset) : null;

        return new BzImage
        {
            Header = header,
            KernelVersionString = version,
            ProtectedModeFileOffset = imageOffset + pm,
            PayloadFileOffset = payloadAt is { } q ? imageOffset + q : null,
            PayloadLengthInBytes = header.PayloadLength,
            PayloadCompression = compression,
            UncompressedPayloadSize = trailer,
            KernelInfo = info,
            Pe = pe,
        };
    }

    /// <summary>The magic table of lib/decompress.c plus the longer magics of scripts/extract-vmlinux.</summary>
    public static PayloadCompression DetectCompression(ReadOnlySpan<byte> payload)
    {
        if (payload.StartsWith((ReadOnlySpan<byte>)[0x1F, 0x8B]) || payload.StartsWith((ReadOnlySpan<byte>)[0x1F, 0x9E]))
            return PayloadCompression.Gzip;
        if (payload.StartsWith("BZh"u8)) return PayloadCompression.Bzip2;
        if (payload.StartsWith((ReadOnlySpan<byte>)[0x5D, 0x00, 0x00])) return PayloadCompression.Lzma;
        if (payload.StartsWith((ReadOnlySpan<byte>)[0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00])) return PayloadCompression.Xz;
        if (payload.StartsWith((ReadOnlySpan<byte>)[0x89, 0x4C, 0x5A, 0x4F])) return PayloadCompression.Lzo;
        if (payload.StartsWith((ReadOnlySpan<byte>)[0x02, 0x21, 0x4C, 0x18])) return PayloadCompression.Lz4;
        if (payload.StartsWith((ReadOnlySpan<byte>)[0x28, 0xB5, 0x2F, 0xFD])) return PayloadCompression.Zstd;
        if (payload.StartsWith((ReadOnlySpan<byte>)[0x7F, 0x45, 0x4C, 0x46])) return PayloadCompression.None;
        return PayloadCompression.Unknown;
    }
}
