using DomBoot.Formats.Binary;

namespace DomBoot.Storage.Partitions;

/// <summary>The GPT header (UEFI 2.10 section 5.3.2), primary at LBA 1 or backup at the last LBA.</summary>
public sealed record GptHeader(
    uint Revision,
    uint HeaderSize,
    uint HeaderCrc32,
    ulong MyLba,
    ulong AlternateLba,
    ulong FirstUsableLba,
    ulong LastUsableLba,
    Guid DiskGuid,
    ulong PartitionEntryLba,
    uint NumberOfPartitionEntries,
    uint SizeOfPartitionEntry,
    uint PartitionEntryArrayCrc32)
{
    public static ReadOnlySpan<byte> SignatureBytes => "EFI PART"u8;

    public static class Offsets
    {
        public const int Signature = 0;
        public const int Revision = 8;
        public const int HeaderSize = 12;
        public const int HeaderCrc32 = 16;
        public const int MyLba = 24;
        public const int AlternateLba = 32;
        public const int FirstUsableLba = 40;
        public const int LastUsableLba = 48;
        public const int DiskGuid = 56;
        public const int PartitionEntryLba = 72;
        public const int NumberOfPartitionEntries = 80;
        public const int SizeOfPartitionEntry = 84;
        public const int PartitionEntryArrayCrc32 = 88;
        public const int MinHeaderSize = 92;
    }

    public static class Limits
    {
        public const uint MaxEntries = 16384;
        public const uint MinEntrySize = 128;
        public const uint MaxEntrySize = 4096;
        /// <summary>The whole entry array we are willing to read (128 entries of 128 bytes is 16 KiB).</summary>
        public const long MaxEntryArrayBytes = 1 << 20;
    }

    public static bool HasMagic(ReadOnlySpan<byte> sector) => sector.Length >= 8 && sector[..8].SequenceEqual(SignatureBytes);

    /// <summary>Parses and checks one header sector: signature, revision, size, CRC32, own LBA and the entry array's bounds.</summary>
    public static GptHeader Parse(ReadOnlySpan<byte> bytes, long imageOffset, ulong expectedMyLba, ulong diskSectors)
    {
        var r = new FieldReader(bytes, imageOffset, "GPT header");
        var sig = r.Bytes(Offsets.Signature, 8);
        if (!sig.SequenceEqual(SignatureBytes))
            throw r.FieldError(Offsets.Signature, "signature", Formats.Errors.Quote.Bytes(sig), "\"EFI PART\"");
        uint revision = r.U32(Offsets.Revision);
        if (revision >> 16 != 1) throw r.FieldError(Offsets.Revision, "revision", FieldReader.Hex(revision), "1.x (0x0001xxxx)");
        uint headerSize = r.U32(Offsets.HeaderSize);
        if (headerSize < Offsets.MinHeaderSize || headerSize > bytes.Length)
            throw r.FieldError(Offsets.HeaderSize, "header size", headerSize, $"{Offsets.MinHeaderSize}..{bytes.Length}");
        uint crc = r.U32(Offsets.HeaderCrc32);
        Span<byte> copy = stackalloc byte[(int)headerSize];
        r.Bytes(0, (int)headerSize).CopyTo(copy);
        copy.Slice(Offsets.HeaderCrc32, 4).Clear();
        uint actual = Crc32.Compute(copy);
        if (actual != crc) throw r.FieldError(Offsets.HeaderCrc32, "header CRC32", FieldReader.Hex(crc), $"{FieldReader.Hex(actual)} (computed)");

        ulong myLba = r.U64(Offsets.MyLba);
        if (myLba != expectedMyLba) throw r.FieldError(Offsets.MyLba, "MyLBA", myLba, $"{expectedMyLba} (where it was read)");
        ulong firstUsable = r.U64(Offsets.FirstUsableLba), lastUsable = r.U64(Offsets.LastUsableLba);
        if (firstUsable > lastUsable + 1 || lastUsable >= diskSectors)
            throw r.FieldError(Offsets.LastUsableLba, "usable LBA range", $"{firstUsable}..{lastUsable}", $"inside the {diskSectors}-sector disk");

        uint count = r.U32(Offsets.NumberOfPartitionEntries);
        if (count > Limits.MaxEntries)
            throw r.FieldError(Offsets.NumberOfPartitionEntries, "NumberOfPartitionEntries", count, $"at most {Limits.MaxEntries}");
        uint entrySize = r.U32(Offsets.SizeOfPartitionEntry);
        // UEFI: 128 x 2^n
        if (entrySize < Limits.MinEntrySize || entrySize > Limits.MaxEntrySize || (entrySize & (entrySize - 1)) != 0)
            throw r.FieldError(Offsets.SizeOfPartitionEntry, "SizeOfPartitionEntry", entrySize,
                $"a power of two in {Limits.MinEntrySize}..{Limits.MaxEntrySize}");
        long arrayBytes = (long)count * entrySize;
        if (arrayBytes > Limits.MaxEntryArrayBytes)
            throw r.FieldError(Offsets.NumberOfPartitionEntries, "entry array size", arrayBytes, $"at most {Limits.MaxEntryArrayBytes} bytes");
        ulong entryLba = r.U64(Offsets.PartitionEntryLba);
        ulong arraySectors = (ulong)((arrayBytes + bytes.Length - 1) / bytes.Length);
        if (entryLba == 0 || entryLba >= diskSectors || arraySectors > diskSectors - entryLba
            || (entryLba <= myLba && myLba - entryLba < arraySectors))
            throw r.FieldError(Offsets.PartitionEntryLba, "PartitionEntryLBA", entryLba,
                $"an array of {arraySectors} sectors inside the {diskSectors}-sector disk, not overlapping the header");

        return new GptHeader(revision, headerSize, crc, myLba, r.U64(Offsets.AlternateLba), firstUsable, lastUsable,
            new Guid(r.Bytes(Offsets.DiskGuid, 16)), entryLba, count, entrySize, r.U32(Offsets.PartitionEntryArrayCrc32));
    }
}
