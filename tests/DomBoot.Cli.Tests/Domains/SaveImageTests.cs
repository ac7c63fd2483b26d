using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json;
using DomBoot.Formats.Errors;
using DomBoot.TestSupport;
using DomBoot.Toolstack.Supervision;

// In a SaveRestore namespace so the save/restore filter (FullyQualifiedName~SaveRestore) runs these too.
namespace DomBoot.Cli.Tests.Domains.SaveRestore;

/// <summary>The save file format (SaveImageHeader, SaveImage.Open) on small synthetic images: round trip, bad headers, every truncation, bit flips.</summary>
public sealed class SaveImageTests
{
    private const int BootFileLength = 100;

    private static SaveImageMetadata Metadata() => new()
    {
        Name = "t1",
        Uuid = "6f1c2d9e-0000-4000-8000-000000000001",
        MemoryMiB = 64,
        Vcpus = 1,
        Paused = true,
        ConfigPath = "/cfg/t1.cfg",
        ConfigText = "name = \"t1\"\n",
        QemuArgv = ["qemu-system-x86_64", "-chardev", "socket,id=console0,path=/x", "-qmp", "unix:/q,server=on,wait=off", "-kernel", "/boot/k"],
        BootFiles = [new SaveImageBootFile(6, "-kernel", BootFileLength)],
        Forwards = [new SaveImageForward("net0", "tcp", 2201, 22)],
    };

    /// <summary>A complete image: header, metadata, one boot file, a stream starting with QEVM v3, the trailer.</summary>
    private static byte[] Image(SaveImageMetadata? metadata = null)
    {
        byte[] meta = JsonSerializer.SerializeToUtf8Bytes(metadata ?? Metadata(), SaveImageMetadata.Json);
        byte[] boot = Enumerable.Repeat((byte)0xAB, BootFileLength).ToArray();
        byte[] stream = [0x51, 0x45, 0x56, 0x4D, 0, 0, 0, 3, .. Enumerable.Range(0, 56).Select(i => (byte)i)];
        byte[] sha = SHA256.HashData([.. meta, .. boot]);
        var header = new SaveImageHeader(1, SaveImageHeader.FlagComplete, (uint)meta.Length, BootFileLength, (ulong)(96 + meta.Length + BootFileLength), (ulong)stream.Length, sha);
        var h = new byte[SaveImageHeader.Size];
        header.WriteTo(h);
        var trailer = new byte[16];
        "DOMBEND\0"u8.CopyTo(trailer);
        BinaryPrimitives.WriteUInt64LittleEndian(trailer.AsSpan(8), (ulong)stream.Length);
        return [.. h, .. meta, .. boot, .. stream, .. trailer];
    }

    private static SaveImage OpenBytes(TempDir dir, byte[] bytes, string name = "x.save")
    {
        var path = dir.File(name);
        File.WriteAllBytes(path, bytes);
        return SaveImage.Open(path);
    }

    [Fact]
    public void Open_RoundTripsAnIntactImage()
    {
        using var dir = new TempDir();
        var image = OpenBytes(dir, Image());
        Assert.True(image.Header.Complete);
        Assert.Equal(64UL, image.Header.StreamLength);
        Assert.Equal("t1", image.Metadata.Name);
        Assert.True(image.Metadata.Paused);
        Assert.Equal(Metadata().QemuArgv, image.Metadata.QemuArgv);
        Assert.Equal(2201, Assert.Single(image.Metadata.Forwards).HostPort);
        var extracted = image.ExtractBootFiles(dir.Path);
        Assert.Equal(Enumerable.Repeat((byte)0xAB, BootFileLength), File.ReadAllBytes(extracted[6]));
    }

    public static TheoryData<string, int, ulong, int, long> BadHeaders => new()
    {
        // name, field offset, value, width, expected exception offset
        { "magic", 0x00, 0x58, 1, 0x00 },
        { "version", 0x08, 2, 4, 0x08 },
        { "unknown flag", 0x0C, 3, 4, 0x0C },
        { "header size", 0x10, 95, 4, 0x10 },
        { "metadata length zero", 0x14, 0, 4, 0x14 },
        { "metadata length huge", 0x14, 5u << 20, 4, 0x14 },
        { "boot files huge", 0x18, 1UL << 31, 8, 0x18 },
        { "stream offset", 0x20, 7, 8, 0x20 },
        { "stream length huge", 0x28, 1UL << 41, 8, 0x28 },
        { "reserved", 0x50, 1, 1, 0x50 },
    };

    [Theory]
    [MemberData(nameof(BadHeaders))]
    public void Parse_RejectsBadHeaderField(string name, int offset, ulong value, int width, long expectedOffset)
    {
        var bytes = Image().AsSpan(0, SaveImageHeader.Size).ToArray();
        switch (width)
        {
            case 1: bytes[offset] = (byte)value; break;
            case 4: BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(offset), (uint)value); break;
            default: BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(offset), value); break;
        }
        var ex = Assert.Throws<MalformedDataException>(() => SaveImageHeader.Parse(bytes, 0));
        Assert.True(ex.Offset == expectedOffset, $"{name}: offset {ex.Offset}: {ex.Message}");
    }

    [Fact]
    public void Parse_RejectsShortHeader()
    {
        var ex = Assert.Throws<TruncatedDataException>(() => SaveImageHeader.Parse(Image().AsSpan(0, 60), 0));
        Assert.Equal(0, ex.Offset);
    }

    [Fact]
    public void Open_RejectsEveryTruncation()
    {
        using var dir = new TempDir();
        var bytes = Image();
        for (int cut = 0; cut < bytes.Length; cut++)
        {
            var ex = Record.Exception(() => OpenBytes(dir, bytes[..cut]));
            Assert.True(ex is MalformedDataException, $"cut at {cut}: {ex?.GetType().Name ?? "accepted"} {ex?.Message}");
        }
    }

    [Fact]
    public void Open_RejectsIncompleteFlag()
    {
        using var dir = new TempDir();
        var bytes = Image();
        bytes[0x0C] = 0;
        var ex = Assert.Throws<MalformedDataException>(() => OpenBytes(dir, bytes));
        Assert.Equal(0x0C, ex.Offset);
        Assert.Contains("incomplete", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_BitFlipsOutsideTheStreamBodyAreAllCaught()
    {
        using var dir = new TempDir();
        var bytes = Image();
        long streamOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(0x20));
        var random = new Random(1234);
        var positions = Enumerable.Range(0, SaveImageHeader.Size * 8).Select(b => (long)b)
            .Concat(Enumerable.Range(0, 300).Select(_ => (long)random.Next(bytes.Length * 8)));
        foreach (long bit in positions)
        {
            var copy = (byte[])bytes.Clone();
            copy[bit / 8] ^= (byte)(1 << (int)(bit % 8));
            var ex = Record.Exception(() => OpenBytes(dir, copy));
            bool inStreamBody = bit / 8 >= streamOffset + 8 && bit / 8 < bytes.Length - 16;
            if (inStreamBody) Assert.True(ex is null or MalformedDataException, $"bit {bit}: {ex}");
            else Assert.True(ex is MalformedDataException, $"bit {bit} (byte 0x{bit / 8:X}): {ex?.GetType().Name ?? "accepted"} {ex?.Message}");
        }
    }

    public static TheoryData<string, string> BadMetadata => new()
    {
        { "name", "bad name" },
        { "argv", "short" },
        { "bootfile", "index" },
        { "memory", "zero" },
        { "uuid", "x" },
    };

    [Theory]
    [MemberData(nameof(BadMetadata))]
    public void Open_RejectsInconsistentMetadata(string field, string how)
    {
        var m = Metadata();
        m = field switch
        {
            "name" => m with { Name = "../evil" },
            "argv" => m with { QemuArgv = ["qemu"], BootFiles = [] },
            "bootfile" => m with { BootFiles = [new SaveImageBootFile(2, "-kernel", BootFileLength)] },
            "memory" => m with { MemoryMiB = 0 },
            _ => m with { Uuid = "not-a-uuid" },
        };
        using var dir = new TempDir();
        // Metadata errors point at the metadata's start (its JSON has no finer byte positions after binding).
        var ex = Assert.Throws<MalformedDataException>(() => OpenBytes(dir, Image(m)));
        Assert.True(ex.Offset == SaveImageHeader.Size, $"{field}/{how}: {ex.Message}");
    }
}
