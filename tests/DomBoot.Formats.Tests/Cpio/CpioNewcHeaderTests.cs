using System.Text;
using DomBoot.Formats.Cpio;
using DomBoot.Formats.Errors;

namespace DomBoot.Formats.Tests.Cpio;

public sealed class CpioNewcHeaderTests
{
    // GNU cpio's header for "d/f" (6 bytes, mode 0100644) from `find . | cpio -o -H newc`
    private const string GnuHeader = "070701" + "00B20038" + "000081A4" + "00000000" + "00000000" + "00000001" + "6B021A8C" + "00000006"
        + "000000FE" + "00000000" + "00000000" + "00000000" + "00000004" + "00000000";

    private static byte[] Header(string text = GnuHeader) => Encoding.ASCII.GetBytes(text.Replace(" ", "", StringComparison.Ordinal));

    [Fact]
    public void Parse_ReadsEveryField()
    {
        var h = CpioNewcHeader.Parse(Header(), 0);
        Assert.Equal(CpioFormat.Newc, h.Format);
        Assert.Equal(0x00B20038u, h.Ino);
        Assert.Equal(0x81A4u, h.Mode);
        Assert.Equal(CpioFileType.Regular, h.Type);
        Assert.Equal((UnixFileMode)0x1A4, h.Permissions);
        Assert.Equal(0u, h.Uid);
        Assert.Equal(0u, h.Gid);
        Assert.Equal(1u, h.NLink);
        Assert.Equal(0x6B021A8Cu, h.MTime);
        Assert.Equal(6u, h.FileSize);
        Assert.Equal(0xFEu, h.DevMajor);
        Assert.Equal(0u, h.DevMinor);
        Assert.Equal(0u, h.RDevMajor);
        Assert.Equal(0u, h.RDevMinor);
        Assert.Equal(4u, h.NameSize);
        Assert.Equal(0u, h.Check);
    }

    [Fact]
    public void Parse_AcceptsLowerCaseHexAndCrcMagic()
    {
        var text = "070702" + "0000abcd" + "000081a4" + string.Concat(Enumerable.Repeat("00000000", 9)) + "00000002" + "0000021e";
        var h = CpioNewcHeader.Parse(Encoding.ASCII.GetBytes(text), 0);
        Assert.Equal(CpioFormat.Crc, h.Format);
        Assert.Equal(0xABCDu, h.Ino);
        Assert.Equal(0x21Eu, h.Check);
    }

    [Fact]
    public void WriteTo_RoundTripsGnuHeaderByteForByte()
    {
        var bytes = Header();
        var h = CpioNewcHeader.Parse(bytes, 0);
        var written = new byte[CpioNewcHeader.Size];
        h.WriteTo(written);
        Assert.Equal(bytes, written);
        Assert.Equal(h, CpioNewcHeader.Parse(written, 0));
    }

    [Fact]
    public void Parse_RejectsOdcMagicWithSpecificMessage()
    {
        var bytes = Header();
        "070707"u8.CopyTo(bytes);
        var ex = Assert.Throws<MalformedDataException>(() => CpioNewcHeader.Parse(bytes, 0x200));
        Assert.Equal(0x200, ex.Offset);
        Assert.Contains("old binary/odc cpio; expected newc", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_RejectsBadMagic()
    {
        var bytes = Header();
        "070703"u8.CopyTo(bytes);
        var ex = Assert.Throws<MalformedDataException>(() => CpioNewcHeader.Parse(bytes, 4));
        Assert.Equal(4, ex.Offset);
        Assert.Contains("c_magic is \"070703\"", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(CpioNewcHeader.Offsets.Ino, "c_ino")]
    [InlineData(CpioNewcHeader.Offsets.Mode + 7, "c_mode")]
    [InlineData(CpioNewcHeader.Offsets.FileSize + 3, "c_filesize")]
    [InlineData(CpioNewcHeader.Offsets.RDevMinor + 1, "c_rdevminor")]
    [InlineData(CpioNewcHeader.Offsets.Check + 7, "c_chksum")]
    public void Parse_RejectsNonHexDigitNamingFieldAndOffset(int position, string field)
    {
        var bytes = Header();
        bytes[position] = (byte)'g';
        var ex = Assert.Throws<MalformedDataException>(() => CpioNewcHeader.Parse(bytes, 0x1000));
        int fieldStart = position - (position - CpioNewcHeader.Offsets.Ino) % CpioNewcHeader.Offsets.FieldLength;
        Assert.Equal(0x1000 + fieldStart, ex.Offset);
        Assert.Contains(field + " is", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(" 0000000")] // a space, as simple_strtoul would stop at
    [InlineData("-0000001")]
    [InlineData("0x000001")]
    public void Parse_RejectsNonDigitsInNameSize(string value)
    {
        var bytes = Header();
        Encoding.ASCII.GetBytes(value).CopyTo(bytes, CpioNewcHeader.Offsets.NameSize);
        var ex = Assert.Throws<MalformedDataException>(() => CpioNewcHeader.Parse(bytes, 0));
        Assert.Equal(CpioNewcHeader.Offsets.NameSize, ex.Offset);
    }

    [Theory]
    [InlineData("00000000")]
    [InlineData("00001001")]
    [InlineData("FFFFFFFF")]
    public void Parse_RejectsNameSizeOutsidePathMax(string value)
    {
        var bytes = Header();
        Encoding.ASCII.GetBytes(value).CopyTo(bytes, CpioNewcHeader.Offsets.NameSize);
        var ex = Assert.Throws<MalformedDataException>(() => CpioNewcHeader.Parse(bytes, 10));
        Assert.Equal(10 + CpioNewcHeader.Offsets.NameSize, ex.Offset);
        Assert.Contains("c_namesize", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_RejectsTruncatedHeader()
    {
        var ex = Assert.Throws<TruncatedDataException>(() => CpioNewcHeader.Parse(Header().AsSpan(0, 109), 0x40));
        Assert.Equal(0x40, ex.Offset);
    }

    [Fact]
    public void HasMagic_RecognisesNewcAndCrcOnly()
    {
        Assert.True(CpioNewcHeader.HasMagic("070701"u8));
        Assert.True(CpioNewcHeader.HasMagic("070702"u8));
        Assert.False(CpioNewcHeader.HasMagic("070707"u8));
        Assert.False(CpioNewcHeader.HasMagic("0707"u8));
    }
}
