using System.Text;
using DomBoot.Formats.Binary;

namespace DomBoot.Storage.Filesystems.Iso9660;

public enum Iso9660VolumeDescriptorType : byte
{
    BootRecord = 0,
    Primary = 1,
    Supplementary = 2,
    Partition = 3,
    Terminator = 255,
}

/// <summary>
/// One 2048-byte volume descriptor (ECMA-119 4th ed., section 8: 8.2 boot record, 8.4 primary, 8.5 supplementary
/// with Joliet's escape sequences "%/@", "%/C", "%/E" for UCS-2 levels 1-3, 8.3 terminator). Fields that a type
/// does not carry are empty.
/// </summary>
public sealed record Iso9660VolumeDescriptor
{
    public const int Size = 2048;
    public const int FirstSector = 16;
    public static ReadOnlySpan<byte> StandardIdentifier => "CD001"u8;

    public static class Offsets
    {
        public const int VolumeDescriptorType = 0;
        public const int StandardIdentifier = 1;
        public const int VolumeDescriptorVersion = 6;
        public const int VolumeFlags = 7;
        public const int SystemIdentifier = 8;
        public const int VolumeIdentifier = 40;
        public const int VolumeSpaceSize = 80;
        public const int EscapeSequences = 88;
        public const int LogicalBlockSize = 128;
        public const int RootDirectoryRecord = 156;
        public const int VolumeCreationDateAndTime = 813;
        public const int VolumeModificationDateAndTime = 830;

        // Boot record (8.2) / El Torito.
        public const int BootSystemIdentifier = 7;
        public const int BootCatalogPointer = 71;
    }

    public static class Limits
    {
        /// <summary>Descriptors read before giving up on a terminator (blkid stops at 64 too).</summary>
        public const int MaxDescriptors = 64;
    }

    public required Iso9660VolumeDescriptorType Type { get; init; }
    public required byte Version { get; init; }
    public required long ImageOffset { get; init; }

    public string SystemIdentifier { get; init; } = "";
    public string VolumeIdentifier { get; init; } = "";
    /// <summary>The raw 32-byte volume identifier (ASCII in the PVD, UCS-2BE in a Joliet SVD).</summary>
    public ReadOnlyMemory<byte> VolumeIdentifierBytes { get; init; }
    public uint VolumeSpaceSize { get; init; }
    public ushort LogicalBlockSize { get; init; }
    /// <summary>1-3 for a Joliet SVD, else 0.</summary>
    public int JolietLevel { get; init; }
    public Iso9660DirectoryRecord? RootDirectoryRecord { get; init; }
    public ReadOnlyMemory<byte> VolumeCreationDateAndTime { get; init; }
    public ReadOnlyMemory<byte> VolumeModificationDateAndTime { get; init; }
    public string BootSystemIdentifier { get; init; } = "";
    public uint BootCatalogPointer { get; init; }

    public static bool HasMagic(ReadOnlySpan<byte> descriptor) =>
        descriptor.Length > 6 && descriptor.Slice(Offsets.StandardIdentifier, 5).SequenceEqual(StandardIdentifier);

    public static Iso9660VolumeDescriptor Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "ISO9660 volume descriptor");
        r.Require(0, Size);
        if (!r.Bytes(Offsets.StandardIdentifier, 5).SequenceEqual(StandardIdentifier))
            throw r.FieldError(Offsets.StandardIdentifier, "standard identifier", Formats.Errors.Quote.Bytes(r.Bytes(Offsets.StandardIdentifier, 5)), "\"CD001\"");
        var type = (Iso9660VolumeDescriptorType)r.U8(Offsets.VolumeDescriptorType);
        byte version = r.U8(Offsets.VolumeDescriptorVersion);
        switch (type)
        {
            case Iso9660VolumeDescriptorType.BootRecord:
                return new Iso9660VolumeDescriptor
                {
                    Type = type, Version = version, ImageOffset = imageOffset,
                    BootSystemIdentifier = r.CString(Offsets.BootSystemIdentifier, 32).TrimEnd(' '),
                    BootCatalogPointer = r.U32(Offsets.BootCatalogPointer),
                };
            case Iso9660VolumeDescriptorType.Primary:
            case Iso9660VolumeDescriptorType.Supplementary:
                break;
            default:
                return new Iso9660VolumeDescriptor { Type = type, Version = version, ImageOffset = imageOffset };
        }

        ushort blockSize = r.U16(Offsets.LogicalBlockSize);
        if (blockSize is not (512 or 1024 or 2048))
            throw r.FieldError(Offsets.LogicalBlockSize, "logical block size", blockSize, "512, 1024 or 2048");
        uint space = r.U32(Offsets.VolumeSpaceSize);
        if (space == 0) throw r.FieldError(Offsets.VolumeSpaceSize, "volume space size", 0, "at least 1 block");
        int joliet = 0;
        if (type == Iso9660VolumeDescriptorType.Supplementary)
        {
            var esc = r.Bytes(Offsets.EscapeSequences, 3);
            if (esc[0] == '%' && esc[1] == '/')
                joliet = esc[2] switch { (byte)'@' => 1, (byte)'C' => 2, (byte)'E' => 3, _ => 0 };
        }
        var idBytes = r.Bytes(Offsets.VolumeIdentifier, 32);
        string volumeId = joliet > 0 ? Encoding.BigEndianUnicode.GetString(idBytes).TrimEnd(' ', '\0') : Encoding.Latin1.GetString(idBytes).TrimEnd(' ', '\0');
        var rootBytes = r.Bytes(Offsets.RootDirectoryRecord, 34);
        if (rootBytes[0] != 34)
            throw r.FieldError(Offsets.RootDirectoryRecord, "root directory record length", rootBytes[0], "34");
        var root = Iso9660DirectoryRecord.Parse(rootBytes, r.Absolute(Offsets.RootDirectoryRecord));
        if (!root.IsDirectory)
            throw r.FieldError(Offsets.RootDirectoryRecord + Iso9660DirectoryRecord.Offsets.FileFlags, "root directory record flags",
                FieldReader.Hex((byte)root.FileFlags), "the directory bit set");
        return new Iso9660VolumeDescriptor
        {
            Type = type,
            Version = version,
            ImageOffset = imageOffset,
            SystemIdentifier = joliet > 0 ? Encoding.BigEndianUnicode.GetString(r.Bytes(Offsets.SystemIdentifier, 32)).TrimEnd(' ', '\0')
                : r.CString(Offsets.SystemIdentifier, 32).TrimEnd(' '),
            VolumeIdentifier = volumeId,
            VolumeIdentifierBytes = idBytes.ToArray(),
            VolumeSpaceSize = space,
            LogicalBlockSize = blockSize,
            JolietLevel = joliet,
            RootDirectoryRecord = root,
            VolumeCreationDateAndTime = r.Bytes(Offsets.VolumeCreationDateAndTime, 17).ToArray(),
            VolumeModificationDateAndTime = r.Bytes(Offsets.VolumeModificationDateAndTime, 17).ToArray(),
        };
    }
}
