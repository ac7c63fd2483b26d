using System.Buffers.Binary;
using System.Text.Json;
using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests;

/// <summary>`domboot kernel inspect` on the real Debian cloud kernel, checked against bytes read here at the documented offsets.</summary>
public sealed class KernelInspectCommandTests
{
    [Fact]
    public void Inspect_DebianKernel_TextMatchesTheHeaderBytes()
    {
        var bytes = File.ReadAllBytes(Cache.Kernel);
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(0x206));
        uint initSize = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(0x260));
        ulong pref = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(0x258));
        int verPtr = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(0x20E)) + 0x200;
        string versionString = System.Text.Encoding.ASCII.GetString(bytes, verPtr, Array.IndexOf(bytes, (byte)0, verPtr) - verPtr);

        var r = DombootProcess.Run("kernel", "inspect", Cache.Kernel);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(0x020F, version);
        Assert.Contains($"{version >> 8}.{version & 0xFF:D2}", r.Stdout, StringComparison.Ordinal);
        Assert.Contains(versionString, r.Stdout, StringComparison.Ordinal);
        Assert.Contains($"0x{initSize:X}", r.Stdout, StringComparison.Ordinal);
        Assert.Contains($"0x{pref:X}", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("LZ4", r.Stdout, StringComparison.Ordinal);
        Assert.Matches("(?i)relocatable\\W+yes", r.Stdout);
    }

    [Fact]
    public void Inspect_DebianKernelJson_FieldsEqualTheBytesAtTheirOffsets()
    {
        var bytes = File.ReadAllBytes(Cache.Kernel);
        var r = DombootProcess.Run("kernel", "inspect", "--json", Cache.Kernel);
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        var json = r.Stdout;
        // Each value read independently from the file must appear as that field's number in the JSON.
        AssertField(doc.RootElement, "version", BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(0x206)));
        AssertField(doc.RootElement, "initSize", BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(0x260)));
        AssertField(doc.RootElement, "prefAddress", BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(0x258)));
        AssertField(doc.RootElement, "cmdlineSize", BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(0x238)));
        AssertField(doc.RootElement, "kernelAlignment", BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(0x230)));
        AssertField(doc.RootElement, "setupSects", bytes[0x1F1]);
        Assert.Contains("\"kind\"", json, StringComparison.Ordinal);
    }

    private static void AssertField(JsonElement root, string name, ulong expected)
    {
        var found = Find(root, name);
        Assert.True(found is not null, $"JSON has no field {name}");
        Assert.Equal(expected, found!.Value.GetUInt64());
    }

    private static JsonElement? Find(JsonElement e, string name)
    {
        if (e.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in e.EnumerateObject())
            {
                if (p.NameEquals(name) && p.Value.ValueKind == JsonValueKind.Number) return p.Value;
                if (Find(p.Value, name) is { } inner) return inner;
            }
        }
        else if (e.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in e.EnumerateArray()) if (Find(item, name) is { } inner) return inner;
        }
        return null;
    }
}
