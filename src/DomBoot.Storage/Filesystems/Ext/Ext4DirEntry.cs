using DomBoot.Formats.Binary;

namespace DomBoot.Storage.Filesystems.Ext;

/// <summary>
/// A linear directory entry (ext4 disk layout, "Linear (Classic) Directories", struct ext4_dir_entry_2, or
/// ext4_dir_entry with a 16-bit name_len without the filetype feature). Parse applies the kernel's
/// __ext4_check_dir_entry rules: rec_len at least 12, 4-aligned, within the block, and large enough for the name.
/// </summary>
internal sealed record Ext4DirEntry(uint Inode, int RecLen, byte FileType, ReadOnlyMemory<byte> Name, long ImageOffset)
{
    public const int HeaderSize = 8;
    public const int MinRecLen = 12;
    public const int MaxNameLen = 255;

    public static class Offsets
    {
        public const int Inode = 0x0;
        public const int RecLen = 0x4;
        public const int NameLen = 0x6;
        public const int FileType = 0x7;
        public const int Name = 0x8;
    }

    /// <summary>ext4_dir_entry_2 file_type values (EXT4_FT_*).</summary>
    public static class FileTypes
    {
        public const byte Unknown = 0;
        public const byte Regular = 1;
        public const byte Directory = 2;
        public const byte CharDevice = 3;
        public const byte BlockDevice = 4;
        public const byte Fifo = 5;
        public const byte Socket = 6;
        public const byte Symlink = 7;
    }

    /// <summary>
    /// Parses the entry at the start of <paramref name="bytes"/>, which runs to the end of its block (or inline
    /// region). <paramref name="blockSize"/> selects the 64 KiB rec_len encoding (ext4_rec_len_from_disk).
    /// </summary>
    public static Ext4DirEntry Parse(ReadOnlySpan<byte> bytes, long imageOffset, bool hasFileType, int blockSize)
    {
        var r = new FieldReader(bytes, imageOffset, "ext4 directory entry");
        r.Require(0, HeaderSize);
        int recLen = r.U16(Offsets.RecLen);
        if (blockSize >= 65536 && (recLen == 65535 || recLen == 0)) recLen = blockSize;
        else if (blockSize >= 65536) recLen = (recLen & 65532) | ((recLen & 3) << 16);
        int nameLen = hasFileType ? r.U8(Offsets.NameLen) : r.U16(Offsets.NameLen);
        if (recLen < MinRecLen || recLen % 4 != 0 || recLen > bytes.Length)
            throw r.FieldError(Offsets.RecLen, "rec_len", recLen, $"a multiple of 4 in {MinRecLen}..{bytes.Length} (the rest of the block)");
        if (nameLen > MaxNameLen || nameLen > recLen - HeaderSize)
            throw r.FieldError(Offsets.NameLen, "name_len", nameLen, $"at most {Math.Min(MaxNameLen, recLen - HeaderSize)} (rec_len - 8)");
        return new Ext4DirEntry(
            r.U32(Offsets.Inode),
            recLen,
            hasFileType ? r.U8(Offsets.FileType) : FileTypes.Unknown,
            r.Bytes(Offsets.Name, nameLen).ToArray(),
            imageOffset);
    }
}
