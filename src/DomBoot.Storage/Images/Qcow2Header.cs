using System.Text;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Images;

/// <summary>
/// The qcow2 image header (QEMU docs/interop/qcow2.txt, "Header" and "Header extensions"), versions 2 and 3.
/// Parsed from the image's first cluster; all offsets are absolute file offsets.
/// </summary>
public sealed record Qcow2Header(
    uint Version,
    ulong BackingFileOffset,
    uint BackingFileSize,
    int ClusterBits,
    long Size,
    uint CryptMethod,
    uint L1Size,
    long L1TableOffset,
    long RefcountTableOffset,
    uint RefcountTableClusters,
    uint NbSnapshots,
    long SnapshotsOffset,
    ulong IncompatibleFeatures,
    ulong CompatibleFeatures,
    ulong AutoclearFeatures,
    uint RefcountOrder,
    uint HeaderLength,
    byte CompressionType,
    string? BackingFileName,
    string? BackingFormat)
{
    public const uint Magic = 0x514649FB; // "QFI\xfb"

    public static class Offsets
    {
        public const int Magic = 0;
        public const int Version = 4;
        public const int BackingFileOffset = 8;
        public const int BackingFileSize = 16;
        public const int ClusterBits = 20;
        public const int Size = 24;
        public const int CryptMethod = 32;
        public const int L1Size = 36;
        public const int L1TableOffset = 40;
        public const int RefcountTableOffset = 48;
        public const int RefcountTableClusters = 56;
        public const int NbSnapshots = 60;
        public const int SnapshotsOffset = 64;
        public const int IncompatibleFeatures = 72;
        public const int CompatibleFeatures = 80;
        public const int AutoclearFeatures = 88;
        public const int RefcountOrder = 96;
        public const int HeaderLength = 100;
        public const int CompressionType = 104;
        public const int V2HeaderLength = 72;
        public const int V3MinHeaderLength = 104;
    }

    public static class Limits
    {
        public const int MinClusterBits = 9;
        public const int MaxClusterBits = 21;
        /// <summary>QEMU's QCOW_MAX_L1_SIZE (32 MiB of 8-byte entries).</summary>
        public const uint MaxL1Entries = 32 * 1024 * 1024 / 8;
        /// <summary>QEMU refuses longer backing file names.</summary>
        public const uint MaxBackingFileSize = 1023;
        public const int MaxHeaderExtensions = 64;
        /// <summary>QEMU's QCOW_MAX_REFTABLE-independent virtual size cap (2^61 bytes keeps every offset in a long).</summary>
        public const long MaxVirtualSize = 1L << 61;
        public const int MinExtendedL2ClusterBits = 14;
    }

    /// <summary>Incompatible feature bits (qcow2.txt, bytes 72-79).</summary>
    [Flags]
    public enum Incompatible : ulong
    {
        None = 0,
        Dirty = 1 << 0,
        Corrupt = 1 << 1,
        ExternalDataFile = 1 << 2,
        CompressionType = 1 << 3,
        ExtendedL2 = 1 << 4,
    }

    public static class ExtensionTypes
    {
        public const uint End = 0;
        public const uint BackingFileFormat = 0xE2792ACA;
        public const uint FeatureNameTable = 0x6803F857;
        public const uint Bitmaps = 0x23852875;
        public const uint FullDiskEncryption = 0x0537BE77;
        public const uint ExternalDataFile = 0x44415441;
    }

    private const string Structure = "qcow2 header";

    public int ClusterSize => 1 << ClusterBits;
    public bool ExtendedL2 => (IncompatibleFeatures & (ulong)Incompatible.ExtendedL2) != 0;
    public int L2EntryBytes => ExtendedL2 ? 16 : 8;
    public int L2Bits => ClusterBits - (ExtendedL2 ? 4 : 3);

    /// <summary>Reads the cluster_bits field alone, so the caller knows how much of the file is the first cluster.</summary>
    public static int PeekClusterBits(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, Structure);
        return (int)Math.Min(r.U32BE(Offsets.ClusterBits), 64);
    }

    /// <summary>Parses the header and its extensions from the image's first cluster (or as much of it as exists).</summary>
    public static Qcow2Header Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, Structure);
        uint magic = r.U32BE(Offsets.Magic);
        if (magic != Magic) throw r.FieldError(Offsets.Magic, "magic", FieldReader.Hex(magic), "0x514649FB (\"QFI\\xfb\")");
        uint version = r.U32BE(Offsets.Version);
        if (version is not (2 or 3)) throw r.FieldError(Offsets.Version, "version", version, "2 or 3");
        r.Require(0, Offsets.V2HeaderLength);

        uint clusterBits = r.U32BE(Offsets.ClusterBits);
        if (clusterBits is < Limits.MinClusterBits or > Limits.MaxClusterBits)
            throw r.FieldError(Offsets.ClusterBits, "cluster_bits", clusterBits, $"{Limits.MinClusterBits}..{Limits.MaxClusterBits}");
        int clusterSize = 1 << (int)clusterBits;

        ulong size = r.U64BE(Offsets.Size);
        if (size > Limits.MaxVirtualSize) throw r.FieldError(Offsets.Size, "size", size, $"at most {Limits.MaxVirtualSize}");

        ulong incompatible = 0, compatible = 0, autoclear = 0;
        uint refcountOrder = 4, headerLength = Offsets.V2HeaderLength;
        byte compressionType = 0;
        if (version == 3)
        {
            r.Require(0, Offsets.V3MinHeaderLength);
            incompatible = r.U64BE(Offsets.IncompatibleFeatures);
            compatible = r.U64BE(Offsets.CompatibleFeatures);
            autoclear = r.U64BE(Offsets.AutoclearFeatures);
            refcountOrder = r.U32BE(Offsets.RefcountOrder);
            headerLength = r.U32BE(Offsets.HeaderLength);
            if (headerLength < Offsets.V3MinHeaderLength || headerLength % 8 != 0 || headerLength > clusterSize)
                throw r.FieldError(Offsets.HeaderLength, "header_length", headerLength,
                    $"a multiple of 8 in {Offsets.V3MinHeaderLength}..{clusterSize}");
            r.Require(0, (int)headerLength);
            if (headerLength > Offsets.CompressionType) compressionType = r.U8(Offsets.CompressionType);
            if (refcountOrder > 6) throw r.FieldError(Offsets.RefcountOrder, "refcount_order", refcountOrder, "0..6");
        }

        ulong backingOffset = r.U64BE(Offsets.BackingFileOffset);
        uint backingSize = r.U32BE(Offsets.BackingFileSize);
        uint cryptMethod = r.U32BE(Offsets.CryptMethod);
        uint l1Size = r.U32BE(Offsets.L1Size);
        ulong l1Offset = r.U64BE(Offsets.L1TableOffset);
        ulong refcountTableOffset = r.U64BE(Offsets.RefcountTableOffset);
        uint refcountTableClusters = r.U32BE(Offsets.RefcountTableClusters);
        uint nbSnapshots = r.U32BE(Offsets.NbSnapshots);
        ulong snapshotsOffset = r.U64BE(Offsets.SnapshotsOffset);

        // Extensions: needed for feature names in the refusals below, so parse them first.
        int extStart = version == 2 ? Offsets.V2HeaderLength : (int)headerLength;
        var ext = ParseExtensions(r, extStart, backingOffset, clusterSize);

        // Feature gates: unknown incompatible bits, external data, encryption, zstd.
        const ulong known = (ulong)(Incompatible.Dirty | Incompatible.Corrupt | Incompatible.ExternalDataFile
            | Incompatible.CompressionType | Incompatible.ExtendedL2);
        if ((incompatible & ~known) != 0)
        {
            int bit = System.Numerics.BitOperations.TrailingZeroCount(incompatible & ~known);
            string name = ext.FeatureNames.TryGetValue(bit, out var n) ? $" (\"{n}\")" : "";
            throw new UnsupportedFeatureException(
                $"qcow2 header at offset 0x{imageOffset + Offsets.IncompatibleFeatures:X}: unknown incompatible feature bit {bit}{name}");
        }
        if ((incompatible & (ulong)Incompatible.ExternalDataFile) != 0 || ext.HasExternalDataFile)
            throw new UnsupportedFeatureException(
                $"qcow2 header at offset 0x{imageOffset + Offsets.IncompatibleFeatures:X}: external data files are not supported");
        if (cryptMethod != 0 || ext.HasEncryption)
            throw new UnsupportedFeatureException(
                $"qcow2 header at offset 0x{imageOffset + Offsets.CryptMethod:X}: encrypted images are not supported (crypt_method {cryptMethod})");
        bool compressionBit = (incompatible & (ulong)Incompatible.CompressionType) != 0;
        if (compressionType != 0 || compressionBit)
        {
            if (compressionType == 0 || !compressionBit)
                throw r.FieldError(Offsets.CompressionType, "compression_type", compressionType,
                    "0 without incompatible bit 3, or non-zero with it");
            if (compressionType == 1)
                throw new UnsupportedFeatureException(
                    $"qcow2 header at offset 0x{imageOffset + Offsets.CompressionType:X}: zstd compression is not supported; convert with qemu-img convert -O qcow2 -o compression_type=zlib");
            throw r.FieldError(Offsets.CompressionType, "compression_type", compressionType, "0 (zlib) or 1 (zstd)");
        }
        if ((incompatible & (ulong)Incompatible.ExtendedL2) != 0 && clusterBits < Limits.MinExtendedL2ClusterBits)
            throw r.FieldError(Offsets.ClusterBits, "cluster_bits", clusterBits,
                $"at least {Limits.MinExtendedL2ClusterBits} with extended L2 entries");

        // L1 table: bounded, aligned, and large enough to map the whole virtual disk.
        if (l1Size > Limits.MaxL1Entries) throw r.FieldError(Offsets.L1Size, "l1_size", l1Size, $"at most {Limits.MaxL1Entries}");
        int l2Bits = (int)clusterBits - ((incompatible & (ulong)Incompatible.ExtendedL2) != 0 ? 4 : 3);
        int shift = (int)clusterBits + l2Bits;
        ulong needed = shift >= 62 ? (size == 0 ? 0UL : 1UL) : (size + (1UL << shift) - 1) >> shift;
        if (l1Size < needed) throw r.FieldError(Offsets.L1Size, "l1_size", l1Size, $"at least {needed} to map {size} bytes");
        if (l1Size > 0 && (l1Offset == 0 || l1Offset % (ulong)clusterSize != 0 || l1Offset > long.MaxValue / 2))
            throw r.FieldError(Offsets.L1TableOffset, "l1_table_offset", FieldReader.Hex(l1Offset), "a non-zero cluster-aligned offset");

        string? backingName = null;
        if (backingOffset != 0)
        {
            if (backingSize == 0 || backingSize > Limits.MaxBackingFileSize)
                throw r.FieldError(Offsets.BackingFileSize, "backing_file_size", backingSize, $"1..{Limits.MaxBackingFileSize}");
            if (backingOffset > (ulong)clusterSize || backingOffset + backingSize > (ulong)r.Length)
                throw r.FieldError(Offsets.BackingFileOffset, "backing_file_offset", FieldReader.Hex(backingOffset),
                    $"a name of {backingSize} bytes inside the first cluster");
            var nameBytes = r.Bytes((int)backingOffset, (int)backingSize);
            if (nameBytes.IndexOf((byte)0) >= 0)
                throw r.Error((int)backingOffset, $"backing file name {Quote.Bytes(nameBytes)} contains a NUL byte");
            backingName = Encoding.UTF8.GetString(nameBytes);
        }

        return new Qcow2Header(version, backingOffset, backingSize, (int)clusterBits, (long)size, cryptMethod, l1Size,
            (long)l1Offset, (long)Math.Min(refcountTableOffset, long.MaxValue), refcountTableClusters, nbSnapshots,
            (long)Math.Min(snapshotsOffset, long.MaxValue), incompatible, compatible, autoclear, refcountOrder, headerLength,
            compressionType, backingName, ext.BackingFormat);
    }

    private sealed record Extensions(string? BackingFormat, bool HasExternalDataFile, bool HasEncryption, Dictionary<int, string> FeatureNames);

    private static Extensions ParseExtensions(FieldReader r, int start, ulong backingOffset, int clusterSize)
    {
        string? backingFormat = null;
        bool dataFile = false, encryption = false;
        var names = new Dictionary<int, string>();
        int pos = start;
        // Extensions end at the backing file name when there is one, and never go past the first cluster.
        long end = Math.Min(r.Length, clusterSize);
        if (backingOffset != 0 && backingOffset < (ulong)end) end = (long)backingOffset;
        for (int count = 0; ; count++)
        {
            if (count >= Limits.MaxHeaderExtensions)
                throw r.Error(pos, $"more than {Limits.MaxHeaderExtensions} header extensions");
            if (pos + 8 > end) break; // QEMU also stops silently when no room is left for another extension
            uint type = r.U32BE(pos);
            uint length = r.U32BE(pos + 4);
            if (type == ExtensionTypes.End) break;
            long dataEnd = (long)pos + 8 + length;
            if (dataEnd > end) throw r.FieldError(pos + 4, "header extension length", length, $"at most {end - pos - 8}");
            var data = r.Bytes(pos + 8, (int)length);
            switch (type)
            {
                case ExtensionTypes.BackingFileFormat:
                    backingFormat = Encoding.ASCII.GetString(data.IndexOf((byte)0) is int z and >= 0 ? data[..z] : data);
                    break;
                case ExtensionTypes.ExternalDataFile:
                    dataFile = true;
                    break;
                case ExtensionTypes.FullDiskEncryption:
                    encryption = true;
                    break;
                case ExtensionTypes.FeatureNameTable:
                    for (int i = 0; i + 48 <= data.Length; i += 48)
                    {
                        if (data[i] != 0) continue; // only incompatible features matter for messages
                        var nm = data.Slice(i + 2, 46);
                        int nul = nm.IndexOf((byte)0);
                        names[data[i + 1]] = Encoding.ASCII.GetString(nul >= 0 ? nm[..nul] : nm);
                    }
                    break;
                default:
                    break; // unknown extensions are ignorable by the spec
            }
            pos = checked((int)((dataEnd + 7) & ~7L));
        }
        return new Extensions(backingFormat, dataFile, encryption, names);
    }
}
