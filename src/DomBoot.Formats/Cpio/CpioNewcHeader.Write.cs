namespace DomBoot.Formats.Cpio;

public sealed partial record CpioNewcHeader
{
    /// <summary>Writes the 110 header bytes (upper-case hex, as GNU cpio does) to the start of <paramref name="destination"/>.</summary>
    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Size)
            throw new ArgumentException($"destination holds {destination.Length} bytes; a cpio header needs {Size}", nameof(destination));
        (Format == CpioFormat.Crc ? "070702"u8 : "070701"u8).CopyTo(destination[Offsets.Magic..]);
        WriteHex(destination, Offsets.Ino, Ino);
        WriteHex(destination, Offsets.Mode, Mode);
        WriteHex(destination, Offsets.Uid, Uid);
        WriteHex(destination, Offsets.Gid, Gid);
        WriteHex(destination, Offsets.NLink, NLink);
        WriteHex(destination, Offsets.MTime, MTime);
        WriteHex(destination, Offsets.FileSize, FileSize);
        WriteHex(destination, Offsets.DevMajor, DevMajor);
        WriteHex(destination, Offsets.DevMinor, DevMinor);
        WriteHex(destination, Offsets.RDevMajor, RDevMajor);
        WriteHex(destination, Offsets.RDevMinor, RDevMinor);
        WriteHex(destination, Offsets.NameSize, NameSize);
        WriteHex(destination, Offsets.Check, Check);
    }

    private static void WriteHex(Span<byte> destination, int offset, uint value)
    {
        var field = destination.Slice(offset, Offsets.FieldLength);
        for (int i = Offsets.FieldLength - 1; i >= 0; i--)
        {
            field[i] = (byte)"0123456789ABCDEF"[(int)(value & 0xF)];
            value >>= 4;
        }
    }
}
