using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;
using DomBoot.Storage.Images;

namespace DomBoot.Storage.Tests.Images;

public class SliceBlockReaderTests
{
    [Fact]
    public void Read_IsRelativeToTheSlice()
    {
        var data = Enumerable.Range(0, 4096).Select(i => (byte)i).ToArray();
        var s = new SliceBlockReader(new MemoryBlockReader(data), 1000, 100);
        var buf = new byte[10];
        s.ReadExactly(90, buf);
        Assert.Equal(data.AsSpan(1090, 10).ToArray(), buf);
        Assert.Throws<TruncatedDataException>(() => s.ReadExactly(95, buf));
        Assert.Throws<TruncatedDataException>(() => s.ReadExactly(-1, buf));
    }

    [Fact]
    public void Constructor_RejectsRangeOutsideParent()
    {
        var parent = new MemoryBlockReader(new byte[4096]);
        Assert.Throws<MalformedDataException>(() => new SliceBlockReader(parent, 4000, 200));
        Assert.Throws<MalformedDataException>(() => new SliceBlockReader(parent, -1, 2));
        Assert.Throws<MalformedDataException>(() => new SliceBlockReader(parent, long.MaxValue, long.MaxValue));
    }
}
