using System.Buffers.Binary;
using System.Text;
using DomBoot.Formats.Kernel;
using DomBoot.TestSupport;

namespace DomBoot.Formats.Tests.Kernel;

/// <summary>The Debian cloud bzImage, compared field by field with reads at the boot.rst offsets done here.</summary>
public sealed class BzImageTests
{
    private static readonly byte[] Kernel = File.ReadAllBytes(Cache.Kernel);

    private static ushort U16(int o) => BinaryPrimitives.ReadUInt16LittleEndian(Kernel.AsSpan(o));
    private static uint U32(int o) => BinaryPrimitives.ReadUInt32LittleEndian(Kernel.AsSpan(o));
    private static ulong U64(int o) => BinaryPrimitives.ReadUInt64LittleEndian(Kernel.AsSpan(o));

    [Fact]
    public void Parse_ReadsEverySetupHeaderFieldAtTheBootProtocolOffsets()
    {
        var h = BzImageSetupHeader.Parse(Kernel, 0);
        Assert.Equal(Kernel[0x1F1], h.SetupSects);
        Assert.Equal(Kernel[0x1F1] == 0 ? 4 : Kernel[0x1F1], h.EffectiveSetupSects);
        Assert.Equal(U16(0x1F2), h.RootFlags);
        Assert.Equal(U32(0x1F4), h.SysSize);
        Assert.Equal(U16(0x1F8), h.RamSize);
        Assert.Equal(U16(0x1FA), h.VidMode);
        Assert.Equal(U16(0x1FC), h.RootDev);
        Assert.Equal(0xAA55, h.BootFlag);
        Assert.Equal(U16(0x200), h.Jump);
        Assert.Equal(U32(0x202), h.Header);
        Assert.Equal(0x020F, h.Version);
        Assert.Equal(U32(0x208), h.RealmodeSwtch);
        Assert.Equal(U16(0x20C), h.StartSysSeg);
        Assert.Equal(U16(0x20E), h.KernelVersionPointer);
        Assert.Equal(Kernel[0x210], h.TypeOfLoader);
        Assert.Equal(Kernel[0x211], (byte)h.LoadFlags);
        Assert.Equal(U16(0x212), h.SetupMoveSize);
        Assert.Equal(U32(0x214), h.Code32Start);
        Assert.Equal(U32(0x218), h.RamdiskImage);
        Assert.Equal(U32(0x21C), h.RamdiskSize);
        Assert.Equal(U32(0x220), h.BootsectKludge);
        Assert.Equal(U16(0x224), h.HeapEndPtr);
        Assert.Equal(Kernel[0x226], h.ExtLoaderVer);
        Assert.Equal(Kernel[0x227], h.ExtLoaderType);
        Assert.Equal(U32(0x228), h.CmdLinePtr);
        Assert.Equal(U32(0x22C), h.InitrdAddrMax);
        Assert.Equal(U32(0x230), h.KernelAlignment);
        Assert.Equal(Kernel[0x234] != 0, h.RelocatableKernel);
        Assert.Equal(Kernel[0x235], h.MinAlignment);
        Assert.Equal(U16(0x236), (ushort)h.XLoadFlags);
        Assert.Equal(U32(0x238), h.CmdlineSize);
        Assert.Equal(U32(0x23C), h.HardwareSubarch);
        Assert.Equal(U64(0x240), h.HardwareSubarchData);
        Assert.Equal(U32(0x248), h.PayloadOffset);
        Assert.Equal(U32(0x24C), h.PayloadLength);
        Assert.Equal(U64(0x250), h.SetupData);
        Assert.Equal(U64(0x258), h.PrefAddress);
        Assert.Equal(U32(0x260), h.InitSize);
        Assert.Equal(U32(0x264), h.HandoverOffset);
        Assert.Equal(U32(0x268), h.KernelInfoOffset);

        Assert.Equal("2.15", h.ProtocolText);
        Assert.True(h.IsBzImage);
        Assert.True(h.IsRelocatable);
        Assert.Equal(0x202 + Kernel[0x201], h.HeaderEndOffset);
        Assert.Equal((Kernel[0x1F1] + 1) * 512, h.ProtectedModeOffset);
        Assert.True(h.LoadFlags.HasFlag(LoadFlags.LoadedHigh));
        Assert.True(h.XLoadFlags.HasFlag(XLoadFlags.Kernel64));
        Assert.True(h.XLoadFlags.HasFlag(XLoadFlags.CanBeLoadedAbove4G));
    }

    [Fact]
    public void Parse_ReadsVersionStringPayloadKernelInfoAndPe()
    {
        var bz = BzImage.Parse(Kernel, 0);
        string release = File.ReadAllText(Path.Combine(Path.GetDirectoryName(Cache.Kernel)!, "release")).Trim();

        int at = U16(0x20E) + 0x200;
        int nul = Array.IndexOf(Kernel, (byte)0, at);
        Assert.Equal(Encoding.Latin1.GetString(Kernel, at, nul - at), bz.KernelVersionString);
        Assert.StartsWith(release + " ", bz.KernelVersionString, StringComparison.Ordinal);
        Assert.Equal(release, bz.KernelRelease);

        long pm = (Kernel[0x1F1] + 1) * 512;
        long payload = pm + U32(0x248);
        Assert.Equal(pm, bz.ProtectedModeFileOffset);
        Assert.Equal(payload, bz.PayloadFileOffset);
        Assert.Equal(PayloadCompression.Lz4, bz.PayloadCompression);
        Assert.Equal(U32((int)(payload + U32(0x24C) - 4)), bz.UncompressedPayloadSize);

        Assert.NotNull(bz.KernelInfo);
        long ki = pm + U32(0x268);
        Assert.Equal(ki, bz.KernelInfo.FileOffset);
        Assert.Equal("LToP", Encoding.ASCII.GetString(Kernel, (int)ki, 4));
        Assert.Equal(U32((int)ki + 4), bz.KernelInfo.Size);
        Assert.Equal(U32((int)ki + 8), bz.KernelInfo.SizeTotal);
        Assert.Equal(U32((int)ki + 12), bz.KernelInfo.SetupTypeMax);

        Assert.True(bz.IsEfiPe);
        var pe = bz.Pe!;
        int lfanew = (int)U32(0x3C);
        Assert.Equal((uint)lfanew, pe.PeHeaderOffset);
        Assert.Equal(U16(lfanew + 4), pe.Machine);
        Assert.Equal(0x8664, pe.Machine);
        Assert.Equal(U16(lfanew + 6), pe.NumberOfSections);
        Assert.True(pe.IsPe32Plus);
        Assert.Equal(10, pe.Subsystem);
        int table = lfanew + 24 + U16(lfanew + 20);
        for (int i = 0; i < pe.Sections.Count; i++)
        {
            int s = table + i * 40;
            Assert.Equal(Encoding.ASCII.GetString(Kernel, s, 8).TrimEnd('\0'), pe.Sections[i].Name);
            Assert.Equal(U32(s + 8), pe.Sections[i].VirtualSize);
            Assert.Equal(U32(s + 12), pe.Sections[i].VirtualAddress);
            Assert.Equal(U32(s + 16), pe.Sections[i].SizeOfRawData);
            Assert.Equal(U32(s + 20), pe.Sections[i].PointerToRawData);
        }
        Assert.Contains(pe.Sections, s => s.Name == ".text");
    }

    [Fact]
    public void Inspect_ReportsBzImageAndRendersTextAndJson()
    {
        var image = KernelInspector.Inspect(Cache.Kernel);
        Assert.Equal(KernelKind.BzImage, image.Kind);
        Assert.Equal(Kernel.Length, image.FileSizeInBytes);
        Assert.False(image.WasGzipWrapped);
        Assert.Null(image.Elf);
        Assert.Null(image.Uki);

        string text = KernelImageText.Render(image);
        Assert.Contains("Protocol: 2.15\n", text, StringComparison.Ordinal);
        Assert.Contains("Relocatable: yes\n", text, StringComparison.Ordinal);
        Assert.Contains("Kernel version: " + image.BzImage!.KernelRelease + " (", text, StringComparison.Ordinal);
        Assert.Contains("Payload: LZ4 at 0x", text, StringComparison.Ordinal);
        Assert.Contains(FormattableString.Invariant($"init_size: 0x{U32(0x260):X}\n"), text, StringComparison.Ordinal);
        Assert.Contains(FormattableString.Invariant($"pref_address: 0x{U64(0x258):X}\n"), text, StringComparison.Ordinal);

        using var doc = System.Text.Json.JsonDocument.Parse(KernelImageJson.ToJson(image));
        var root = doc.RootElement;
        Assert.Equal("BzImage", root.GetProperty("kind").GetString());
        var bz = root.GetProperty("bzImage");
        Assert.Equal("2.15", bz.GetProperty("protocol").GetString());
        Assert.Equal("Lz4", bz.GetProperty("payloadCompression").GetString());
        Assert.Equal(U32(0x260), bz.GetProperty("setupHeader").GetProperty("initSize").GetUInt32());
        Assert.Equal(FormattableString.Invariant($"0x{U64(0x258):X}"), bz.GetProperty("setupHeader").GetProperty("prefAddressHex").GetString());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, root.GetProperty("elf").ValueKind);
    }

    [Fact]
    public void Parse_ReportsDefaultsForFieldsNewerThanTheProtocol()
    {
        // a 2.02 header: fields from 2.03 on are defaults or null, whatever bytes lie at their offsets
        var bytes = Kernel.AsSpan(0, 0x8000).ToArray();
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(0x206), 0x0202);
        bytes[0] = 0; // no "MZ": the cut-off copy's PE sections would point past its end
        var h = BzImageSetupHeader.Parse(bytes, 0);
        Assert.Equal("2.02", h.ProtocolText);
        Assert.Equal(0x37FFFFFFu, h.InitrdAddrMax);
        Assert.Equal(255u, h.CmdlineSize);
        Assert.Null(h.KernelAlignment);
        Assert.False(h.RelocatableKernel);
        Assert.False(h.IsRelocatable);
        Assert.Null(h.MinAlignment);
        Assert.Equal(XLoadFlags.None, h.XLoadFlags);
        Assert.Null(h.PayloadOffset);
        Assert.Null(h.PayloadLength);
        Assert.Null(h.PrefAddress);
        Assert.Null(h.InitSize);
        Assert.Null(h.KernelInfoOffset);
        Assert.NotNull(h.CmdLinePtr);
        Assert.Equal(U16(0x1F4), h.SysSize); // before 2.04 only the low 16 bits of syssize
        var bz = BzImage.Parse(bytes, 0);
        Assert.Equal(PayloadCompression.Unknown, bz.PayloadCompression);
        Assert.Null(bz.KernelInfo);
        Assert.False(bz.IsEfiPe);
    }
}
