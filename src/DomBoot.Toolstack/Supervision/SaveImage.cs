using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Domains;

namespace DomBoot.Toolstack.Supervision;

/// <summary>
/// The fixed header of a domboot save file (our own format, version 1; all integers little-endian).
/// <code>
/// 0x00  Magic            8   "DOMBSAVE"
/// 0x08  Version          u32 1
/// 0x0C  Flags            u32 bit 0 = Complete (set last, after the stream and trailer are on disk); others must be 0
/// 0x10  HeaderSize       u32 96
/// 0x14  MetadataLength   u32 bytes of UTF-8 JSON metadata after the header (at most 4 MiB)
/// 0x18  BootFilesLength  u64 bytes of embedded boot files after the metadata (at most 1 GiB)
/// 0x20  StreamOffset     u64 = HeaderSize + MetadataLength + BootFilesLength
/// 0x28  StreamLength     u64 bytes of QEMU migration stream (starts with "QEVM"); 0 while incomplete
/// 0x30  SectionSha256    32  SHA-256 of [HeaderSize, StreamOffset): the metadata and boot files
/// 0x50  Reserved         16  zero
/// then  Metadata (JSON, <see cref="SaveImageMetadata"/>), boot files back to back (in metadata order),
///       the migration stream, and the trailer: "DOMBEND\0" + u64 StreamLength.
/// </code>
/// A file is accepted only if it is Complete, its length is exactly StreamOffset + StreamLength + 16, the trailer
/// repeats StreamLength, and the section hash matches: a save cut short at any point is refused.
/// </summary>
internal sealed record SaveImageHeader(uint Version, uint Flags, uint MetadataLength, ulong BootFilesLength, ulong StreamOffset, ulong StreamLength, byte[] SectionSha256)
{
    public const int Size = 96;
    public const int TrailerSize = 16;
    public const uint CurrentVersion = 1;
    public const uint FlagComplete = 1;
    public const string Structure = "save file header";

    public static ReadOnlySpan<byte> Magic => "DOMBSAVE"u8;
    public static ReadOnlySpan<byte> TrailerMagic => "DOMBEND\0"u8;

    internal static class Offsets
    {
        public const int Magic = 0x00;
        public const int Version = 0x08;
        public const int Flags = 0x0C;
        public const int HeaderSize = 0x10;
        public const int MetadataLength = 0x14;
        public const int BootFilesLength = 0x18;
        public const int StreamOffset = 0x20;
        public const int StreamLength = 0x28;
        public const int SectionSha256 = 0x30;
        public const int Reserved = 0x50;
    }

    internal static class Limits
    {
        public const uint MaxMetadataBytes = 4 << 20;
        public const ulong MaxBootFilesBytes = 1UL << 30;
        public const ulong MaxStreamBytes = 1UL << 40;
        public const int MaxBootFiles = 8;
        public const int MaxArgs = 4096;
    }

    public bool Complete => (Flags & FlagComplete) != 0;

    public static bool HasMagic(ReadOnlySpan<byte> bytes) => bytes.Length >= Magic.Length && bytes[..Magic.Length].SequenceEqual(Magic);

    /// <summary>Parses and checks the header on its own (magic, version, flags, sizes against the limits, offsets).</summary>
    public static SaveImageHeader Parse(ReadOnlySpan<byte> bytes, long imageOffset) => Parse(bytes, imageOffset, Structure);

    /// <summary>As <see cref="Parse(ReadOnlySpan{byte}, long)"/>, naming the structure in errors (the file's path).</summary>
    internal static SaveImageHeader Parse(ReadOnlySpan<byte> bytes, long imageOffset, string structure)
    {
        var r = new FieldReader(bytes, imageOffset, structure);
        r.Require(0, Size);
        if (!HasMagic(bytes)) throw r.Error(Offsets.Magic, "magic is not \"DOMBSAVE\"; not a domboot save file");
        uint version = r.U32(Offsets.Version);
        if (version != CurrentVersion) throw r.FieldError(Offsets.Version, "version", version, CurrentVersion.ToString(System.Globalization.CultureInfo.InvariantCulture));
        uint flags = r.U32(Offsets.Flags);
        if ((flags & ~FlagComplete) != 0) throw r.FieldError(Offsets.Flags, "flags", FieldReader.Hex(flags), "only bit 0 (complete)");
        uint headerSize = r.U32(Offsets.HeaderSize);
        if (headerSize != Size) throw r.FieldError(Offsets.HeaderSize, "header size", headerSize, Size.ToString(System.Globalization.CultureInfo.InvariantCulture));
        uint metadataLength = r.U32(Offsets.MetadataLength);
        if (metadataLength == 0 || metadataLength > Limits.MaxMetadataBytes) throw r.FieldError(Offsets.MetadataLength, "metadata length", metadataLength, $"1 to {Limits.MaxMetadataBytes}");
        ulong bootLength = r.U64(Offsets.BootFilesLength);
        if (bootLength > Limits.MaxBootFilesBytes) throw r.FieldError(Offsets.BootFilesLength, "boot files length", bootLength, $"at most {Limits.MaxBootFilesBytes}");
        ulong streamOffset = r.U64(Offsets.StreamOffset);
        ulong expectedOffset = checked(Size + metadataLength + bootLength);
        if (streamOffset != expectedOffset) throw r.FieldError(Offsets.StreamOffset, "stream offset", streamOffset, expectedOffset.ToString(System.Globalization.CultureInfo.InvariantCulture));
        ulong streamLength = r.U64(Offsets.StreamLength);
        if (streamLength > Limits.MaxStreamBytes) throw r.FieldError(Offsets.StreamLength, "stream length", streamLength, $"at most {Limits.MaxStreamBytes}");
        var sha = r.Bytes(Offsets.SectionSha256, 32).ToArray();
        foreach (var b in r.Bytes(Offsets.Reserved, Size - Offsets.Reserved))
        {
            if (b != 0) throw r.Error(Offsets.Reserved, "reserved bytes are not zero");
        }
        return new SaveImageHeader(version, flags, metadataLength, bootLength, streamOffset, streamLength, sha);
    }

    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Size) throw new ArgumentException($"needs {Size} bytes", nameof(destination));
        destination[..Size].Clear();
        Magic.CopyTo(destination);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Version..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Flags..], Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.HeaderSize..], Size);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.MetadataLength..], MetadataLength);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.BootFilesLength..], BootFilesLength);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.StreamOffset..], StreamOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.StreamLength..], StreamLength);
        SectionSha256.CopyTo(destination[Offsets.SectionSha256..]);
    }
}

/// <summary>One boot file QEMU loads at start-up (the file after -kernel or -initrd), embedded in the save file.</summary>
internal sealed record SaveImageBootFile(int ArgIndex, string Role, long Length);

/// <summary>A forwarded port as it was when saved (restore maps it to the new domain id's port).</summary>
internal sealed record SaveImageForward(string Nic, string Protocol, int HostPort, int GuestPort);

/// <summary>The JSON metadata of a save file: the domain's config and the exact QEMU argv of the saved boot.</summary>
internal sealed record SaveImageMetadata
{
    public required string Name { get; init; }
    public required string Uuid { get; init; }
    public required int MemoryMiB { get; init; }
    public required int Vcpus { get; init; }
    /// <summary>The vCPUs were stopped (pause) when the save began; restore leaves it paused.</summary>
    public required bool Paused { get; init; }
    public required string ConfigPath { get; init; }
    public required string ConfigText { get; init; }
    public IReadOnlyDictionary<string, string> Variables { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<string> Overrides { get; init; } = [];
    public required IReadOnlyList<string> QemuArgv { get; init; }
    public IReadOnlyList<SaveImageBootFile> BootFiles { get; init; } = [];
    public IReadOnlyList<SaveImageForward> Forwards { get; init; } = [];
    public string Kernel { get; init; } = "";
    public string Cmdline { get; init; } = "";
    public string? Entry { get; init; }
    public DateTimeOffset SavedUtc { get; init; }

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        MaxDepth = 8,
    };
}

/// <summary>A save file that passed every check: its header, metadata and where the stream lies.</summary>
internal sealed record SaveImage(string Path, SaveImageHeader Header, SaveImageMetadata Metadata)
{
    /// <summary>QEMU's migration stream magic (QEMU_VM_FILE_MAGIC) and version 3.</summary>
    private static ReadOnlySpan<byte> StreamMagic => [0x51, 0x45, 0x56, 0x4D, 0x00, 0x00, 0x00, 0x03];

    /// <summary>Opens and checks a save file whole (header, lengths, completion, trailer, hash, metadata); throws MalformedDataException.</summary>
    public static SaveImage Open(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"{path}: no such file", path);
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long length = f.Length;
        var head = new byte[SaveImageHeader.Size];
        if (length < SaveImageHeader.Size)
        {
            int n = f.ReadAtLeast(head, (int)length, throwOnEndOfStream: false);
            if (!SaveImageHeader.HasMagic(head.AsSpan(0, n))) throw new MalformedDataException(path, 0, "magic is not \"DOMBSAVE\"; not a domboot save file");
            throw new TruncatedDataException(path, 0, SaveImageHeader.Size, length);
        }
        f.ReadExactly(head);
        var header = SaveImageHeader.Parse(head, 0, path + ": " + SaveImageHeader.Structure);
        if (!header.Complete)
            throw new MalformedDataException(path, SaveImageHeader.Offsets.Flags, "the save is incomplete (it was interrupted); it cannot be restored");
        ulong expected = checked(header.StreamOffset + header.StreamLength + SaveImageHeader.TrailerSize);
        if ((ulong)length != expected)
        {
            if ((ulong)length < expected) throw new TruncatedDataException(path, length, (long)expected, length);
            throw new MalformedDataException(path, (long)expected, $"file is {length} bytes; the header says {expected}");
        }
        var trailer = new byte[SaveImageHeader.TrailerSize];
        f.Position = length - SaveImageHeader.TrailerSize;
        f.ReadExactly(trailer);
        if (!trailer.AsSpan(0, 8).SequenceEqual(SaveImageHeader.TrailerMagic) || BinaryPrimitives.ReadUInt64LittleEndian(trailer.AsSpan(8)) != header.StreamLength)
            throw new MalformedDataException(path, length - SaveImageHeader.TrailerSize, "trailer does not match the header; the file is damaged");
        if (header.StreamLength < (ulong)StreamMagic.Length) throw new MalformedDataException(path, (long)header.StreamOffset, $"migration stream is {header.StreamLength} bytes; too short");
        var streamHead = new byte[StreamMagic.Length];
        f.Position = (long)header.StreamOffset;
        f.ReadExactly(streamHead);
        if (!streamHead.AsSpan().SequenceEqual(StreamMagic))
            throw new MalformedDataException(path, (long)header.StreamOffset, "migration stream does not start with QEMU's \"QEVM\" magic, version 3");

        // The section hash covers the metadata and the boot files, so a flipped bit there is caught before QEMU starts.
        f.Position = SaveImageHeader.Size;
        var metadataBytes = new byte[header.MetadataLength];
        f.ReadExactly(metadataBytes);
        using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            hash.AppendData(metadataBytes);
            CopyRange(f, (long)header.BootFilesLength, hash.AppendData);
            if (!hash.GetHashAndReset().AsSpan().SequenceEqual(header.SectionSha256))
                throw new MalformedDataException(path, SaveImageHeader.Offsets.SectionSha256, "metadata and boot files do not match their SHA-256; the file is damaged");
        }
        var metadata = ParseMetadata(metadataBytes, path, header);
        return new SaveImage(path, header, metadata);
    }

    internal static SaveImageMetadata ParseMetadata(byte[] bytes, string path, SaveImageHeader header)
    {
        SaveImageMetadata m;
        try
        {
            m = JsonSerializer.Deserialize<SaveImageMetadata>(bytes, SaveImageMetadata.Json)
                ?? throw new MalformedDataException(path, SaveImageHeader.Size, "metadata is null");
        }
        catch (JsonException ex)
        {
            throw new MalformedDataException(path, SaveImageHeader.Size + (ex.BytePositionInLine ?? 0), "metadata is not valid JSON: " + Quote.Text(ex.Message));
        }
        long at = SaveImageHeader.Size;
        if (m.Name is null || m.QemuArgv is null || m.ConfigText is null || m.ConfigPath is null || m.Uuid is null)
            throw new MalformedDataException(path, at, "metadata lacks name, uuid, config or argv");
        try { DomainStore.ValidateName(m.Name); }
        catch (InvalidRequestException ex) { throw new MalformedDataException(path, at, ex.Message); }
        if (!Guid.TryParse(m.Uuid, out _)) throw new MalformedDataException(path, at, $"uuid {Quote.Text(m.Uuid)} is not a UUID");
        if (m.QemuArgv.Count < 2 || m.QemuArgv.Count > SaveImageHeader.Limits.MaxArgs)
            throw new MalformedDataException(path, at, $"QEMU argv has {m.QemuArgv.Count} entries; expected 2 to {SaveImageHeader.Limits.MaxArgs}");
        if (m.QemuArgv.Any(a => a is null)) throw new MalformedDataException(path, at, "QEMU argv has a null entry");
        if (!m.QemuArgv.Contains("-qmp") || !m.QemuArgv.Contains("-chardev"))
            throw new MalformedDataException(path, at, "QEMU argv has no -qmp or -chardev; not a domain's argv");
        var files = m.BootFiles ?? [];
        if (files.Count > SaveImageHeader.Limits.MaxBootFiles)
            throw new MalformedDataException(path, at, $"{files.Count} boot files; expected at most {SaveImageHeader.Limits.MaxBootFiles}");
        ulong total = 0;
        var seen = new HashSet<int>();
        foreach (var b in files)
        {
            if (b is null || b.ArgIndex < 1 || b.ArgIndex >= m.QemuArgv.Count || !seen.Add(b.ArgIndex)
                || m.QemuArgv[b.ArgIndex - 1] is not ("-kernel" or "-initrd") || b.Length < 0)
                throw new MalformedDataException(path, at, "a boot file entry does not name a -kernel or -initrd argument");
            total = checked(total + (ulong)b.Length);
        }
        if (total != header.BootFilesLength)
            throw new MalformedDataException(path, SaveImageHeader.Offsets.BootFilesLength, $"boot files add up to {total} bytes; the header says {header.BootFilesLength}");
        if (m.MemoryMiB <= 0 || m.Vcpus <= 0) throw new MalformedDataException(path, at, "memory and vcpus must be positive");
        return m with { BootFiles = files, Variables = m.Variables ?? new Dictionary<string, string>(), Overrides = m.Overrides ?? [], Forwards = m.Forwards ?? [] };
    }

    /// <summary>Writes each embedded boot file into <paramref name="folder"/>; returns the argv index → new path.</summary>
    public Dictionary<int, string> ExtractBootFiles(string folder)
    {
        var result = new Dictionary<int, string>();
        using var f = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read);
        f.Position = SaveImageHeader.Size + Header.MetadataLength;
        int i = 0;
        foreach (var b in Metadata.BootFiles)
        {
            string target = System.IO.Path.Combine(folder, $"restored-{i++}-{(b.Role == "-kernel" ? "kernel" : "initrd")}");
            using (var o = new FileStream(target, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                CopyRange(f, b.Length, span => o.Write(span));
            }
            result[b.ArgIndex] = target;
        }
        return result;
    }

    internal static void CopyRange(Stream from, long count, Action<ReadOnlySpan<byte>> sink)
    {
        var buffer = new byte[1 << 20];
        while (count > 0)
        {
            int n = from.Read(buffer, 0, (int)Math.Min(buffer.Length, count));
            if (n == 0) throw new EndOfStreamException("save file ended early");
            sink(buffer.AsSpan(0, n));
            count -= n;
        }
    }
}
