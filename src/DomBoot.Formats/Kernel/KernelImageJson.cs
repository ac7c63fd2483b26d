using System.Globalization;
using System.Text;
using System.Text.Json;

namespace DomBoot.Formats.Kernel;

/// <summary>
/// <see cref="KernelImage"/> as JSON for `domboot kernel inspect --json`: camelCase names, numbers as numbers, and for
/// addresses and offsets a twin "...Hex" string ("0x1000000"). Absent (null) parts are written as null.
/// </summary>
public static class KernelImageJson
{
    public static string ToJson(KernelImage image, bool indented = true)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = indented }))
            Write(w, image);
        return Encoding.UTF8.GetString(stream.GetBuffer(), 0, (int)stream.Length);
    }

    public static void Write(Utf8JsonWriter w, KernelImage image)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(image);
        w.WriteStartObject();
        w.WriteString("fileName", image.FileName);
        w.WriteString("kind", image.Kind.ToString());
        w.WriteNumber("fileSizeInBytes", image.FileSizeInBytes);
        w.WriteBoolean("wasGzipWrapped", image.WasGzipWrapped);
        Num(w, "inflatedSizeInBytes", image.InflatedSizeInBytes);
        w.WritePropertyName("bzImage");
        if (image.BzImage is { } bz) WriteBzImage(w, bz); else w.WriteNullValue();
        w.WritePropertyName("elf");
        if (image.Elf is { } elf) WriteElf(w, elf); else w.WriteNullValue();
        w.WritePropertyName("multiboot1");
        if (image.Multiboot1 is { } m1) WriteMultiboot1(w, m1); else w.WriteNullValue();
        w.WritePropertyName("multiboot2");
        if (image.Multiboot2 is { } m2) WriteMultiboot2(w, m2); else w.WriteNullValue();
        w.WritePropertyName("uki");
        if (image.Uki is { } uki) WriteUki(w, uki); else w.WriteNullValue();
        w.WriteEndObject();
    }

    private static string Hex(ulong v) => "0x" + v.ToString("X", CultureInfo.InvariantCulture);

    private static void Num(Utf8JsonWriter w, string name, long? v)
    {
        if (v is { } x) w.WriteNumber(name, x); else w.WriteNull(name);
    }

    private static void NumU(Utf8JsonWriter w, string name, ulong? v, bool hex = false)
    {
        if (v is { } x) w.WriteNumber(name, x); else w.WriteNull(name);
        if (hex)
        {
            if (v is { } y) w.WriteString(name + "Hex", Hex(y)); else w.WriteNull(name + "Hex");
        }
    }

    private static void WriteBzImage(Utf8JsonWriter w, BzImage bz)
    {
        var h = bz.Header;
        w.WriteStartObject();
        w.WriteString("protocol", h.ProtocolText);
        w.WriteBoolean("isBzImage", h.IsBzImage);
        w.WriteBoolean("isRelocatable", h.IsRelocatable);
        w.WriteString("kernelVersionString", bz.KernelVersionString);
        w.WriteString("kernelRelease", bz.KernelRelease);
        w.WriteString("payloadCompression", bz.PayloadCompression.ToString());
        NumU(w, "payloadFileOffset", (ulong?)bz.PayloadFileOffset, hex: true);
        NumU(w, "payloadLengthInBytes", bz.PayloadLengthInBytes);
        NumU(w, "uncompressedPayloadSize", bz.UncompressedPayloadSize);
        NumU(w, "protectedModeFileOffset", (ulong)bz.ProtectedModeFileOffset, hex: true);
        w.WriteBoolean("isEfiPe", bz.IsEfiPe);

        w.WriteStartObject("setupHeader");
        NumU(w, "setupSects", h.SetupSects);
        NumU(w, "effectiveSetupSects", (ulong)h.EffectiveSetupSects);
        NumU(w, "rootFlags", h.RootFlags, hex: true);
        NumU(w, "sysSize", h.SysSize, hex: true);
        NumU(w, "ramSize", h.RamSize, hex: true);
        NumU(w, "vidMode", h.VidMode, hex: true);
        NumU(w, "rootDev", h.RootDev, hex: true);
        NumU(w, "bootFlag", h.BootFlag, hex: true);
        NumU(w, "jump", h.Jump, hex: true);
        NumU(w, "header", h.Header, hex: true);
        NumU(w, "version", h.Version, hex: true);
        NumU(w, "realmodeSwtch", h.RealmodeSwtch, hex: true);
        NumU(w, "startSysSeg", h.StartSysSeg, hex: true);
        NumU(w, "kernelVersionPointer", h.KernelVersionPointer, hex: true);
        NumU(w, "typeOfLoader", h.TypeOfLoader, hex: true);
        NumU(w, "loadFlags", (ulong)h.LoadFlags, hex: true);
        w.WriteString("loadFlagsText", h.LoadFlags.ToString());
        NumU(w, "setupMoveSize", h.SetupMoveSize, hex: true);
        NumU(w, "code32Start", h.Code32Start, hex: true);
        NumU(w, "ramdiskImage", h.RamdiskImage, hex: true);
        NumU(w, "ramdiskSize", h.RamdiskSize, hex: true);
        NumU(w, "bootsectKludge", h.BootsectKludge, hex: true);
        NumU(w, "heapEndPtr", h.HeapEndPtr, hex: true);
        NumU(w, "extLoaderVer", h.ExtLoaderVer);
        NumU(w, "extLoaderType", h.ExtLoaderType);
        NumU(w, "cmdLinePtr", h.CmdLinePtr, hex: true);
        NumU(w, "initrdAddrMax", h.InitrdAddrMax, hex: true);
        NumU(w, "kernelAlignment", h.KernelAlignment, hex: true);
        w.WriteBoolean("relocatableKernel", h.RelocatableKernel);
        NumU(w, "minAlignment", h.MinAlignment);
        NumU(w, "xLoadFlags", (ulong)h.XLoadFlags, hex: true);
        w.WriteString("xLoadFlagsText", h.XLoadFlags.ToString());
        NumU(w, "cmdlineSize", h.CmdlineSize, hex: true);
        NumU(w, "hardwareSubarch", h.HardwareSubarch);
        NumU(w, "hardwareSubarchData", h.HardwareSubarchData, hex: true);
        NumU(w, "payloadOffset", h.PayloadOffset, hex: true);
        NumU(w, "payloadLength", h.PayloadLength, hex: true);
        NumU(w, "setupData", h.SetupData, hex: true);
        NumU(w, "prefAddress", h.PrefAddress, hex: true);
        NumU(w, "initSize", h.InitSize, hex: true);
        NumU(w, "handoverOffset", h.HandoverOffset, hex: true);
        NumU(w, "kernelInfoOffset", h.KernelInfoOffset, hex: true);
        NumU(w, "headerEndOffset", (ulong)h.HeaderEndOffset, hex: true);
        w.WriteEndObject();

        w.WritePropertyName("kernelInfo");
        if (bz.KernelInfo is { } ki)
        {
            w.WriteStartObject();
            NumU(w, "fileOffset", (ulong)ki.FileOffset, hex: true);
            NumU(w, "size", ki.Size);
            NumU(w, "sizeTotal", ki.SizeTotal);
            NumU(w, "setupTypeMax", ki.SetupTypeMax, hex: true);
            w.WriteEndObject();
        }
        else w.WriteNullValue();
        w.WritePropertyName("pe");
        if (bz.Pe is { } pe) WritePe(w, pe); else w.WriteNullValue();
        w.WriteEndObject();
    }

    private static void WritePe(Utf8JsonWriter w, PeImage pe)
    {
        w.WriteStartObject();
        NumU(w, "machine", pe.Machine, hex: true);
        w.WriteString("machineName", pe.MachineName);
        w.WriteString("format", pe.IsPe32Plus ? "PE32+" : "PE32");
        NumU(w, "subsystem", pe.Subsystem);
        NumU(w, "addressOfEntryPoint", pe.AddressOfEntryPoint, hex: true);
        NumU(w, "imageBase", pe.ImageBase, hex: true);
        NumU(w, "sizeOfImage", pe.SizeOfImage, hex: true);
        NumU(w, "sizeOfHeaders", pe.SizeOfHeaders, hex: true);
        NumU(w, "certificateTableOffset", pe.CertificateTableOffset, hex: true);
        NumU(w, "certificateTableSize", pe.CertificateTableSize, hex: true);
        w.WriteStartArray("sections");
        foreach (var s in pe.Sections)
        {
            w.WriteStartObject();
            w.WriteString("name", s.Name);
            NumU(w, "virtualSize", s.VirtualSize, hex: true);
            NumU(w, "virtualAddress", s.VirtualAddress, hex: true);
            NumU(w, "sizeOfRawData", s.SizeOfRawData, hex: true);
            NumU(w, "pointerToRawData", s.PointerToRawData, hex: true);
            NumU(w, "characteristics", s.Characteristics, hex: true);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteElf(Utf8JsonWriter w, ElfKernel elf)
    {
        w.WriteStartObject();
        w.WriteNumber("class", elf.Class);
        NumU(w, "machine", elf.Machine);
        w.WriteString("machineName", elf.MachineName);
        NumU(w, "type", elf.Type);
        w.WriteString("typeName", elf.TypeName);
        NumU(w, "entry", elf.Entry, hex: true);
        NumU(w, "phys32Entry", elf.Phys32Entry, hex: true);
        w.WriteString("linuxBuildSalt", elf.LinuxBuildSalt);
        w.WriteStartArray("programHeaders");
        foreach (var p in elf.ProgramHeaders)
        {
            w.WriteStartObject();
            NumU(w, "type", p.Type);
            w.WriteString("typeName", p.TypeName);
            NumU(w, "offset", p.Offset, hex: true);
            NumU(w, "vAddr", p.VAddr, hex: true);
            NumU(w, "pAddr", p.PAddr, hex: true);
            NumU(w, "fileSize", p.FileSize, hex: true);
            NumU(w, "memSize", p.MemSize, hex: true);
            NumU(w, "align", p.Align, hex: true);
            NumU(w, "flags", p.Flags);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteString("xenNotesSource", elf.XenNotesSource);
        w.WriteStartArray("xenNotes");
        foreach (var n in elf.XenNotes)
        {
            w.WriteStartObject();
            NumU(w, "type", n.Type);
            w.WriteString("typeName", n.TypeName);
            NumU(w, "descriptorSizeInBytes", n.DescriptorSizeInBytes);
            NumU(w, "numericValue", n.NumericValue, hex: true);
            w.WriteString("stringValue", n.StringValue);
            w.WriteStartArray("values");
            foreach (var v in n.Values) w.WriteNumberValue(v);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteString("xenGuestString", elf.XenGuestString);
        w.WriteStartObject("xenGuest");
        foreach (var p in elf.XenGuest) w.WriteString(p.Key, p.Value);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteMultiboot1(Utf8JsonWriter w, Multiboot1Header m)
    {
        w.WriteStartObject();
        NumU(w, "offset", (ulong)m.Offset, hex: true);
        NumU(w, "flags", m.Flags, hex: true);
        NumU(w, "checksum", m.Checksum, hex: true);
        NumU(w, "unknownRequiredFlags", m.UnknownRequiredFlags, hex: true);
        NumU(w, "headerAddr", m.HeaderAddr, hex: true);
        NumU(w, "loadAddr", m.LoadAddr, hex: true);
        NumU(w, "loadEndAddr", m.LoadEndAddr, hex: true);
        NumU(w, "bssEndAddr", m.BssEndAddr, hex: true);
        NumU(w, "entryAddr", m.EntryAddr, hex: true);
        NumU(w, "modeType", m.ModeType);
        NumU(w, "width", m.Width);
        NumU(w, "height", m.Height);
        NumU(w, "depth", m.Depth);
        w.WriteEndObject();
    }

    private static void WriteMultiboot2(Utf8JsonWriter w, Multiboot2Header m)
    {
        w.WriteStartObject();
        NumU(w, "offset", (ulong)m.Offset, hex: true);
        NumU(w, "architecture", m.Architecture);
        NumU(w, "headerLength", m.HeaderLength);
        NumU(w, "checksum", m.Checksum, hex: true);
        w.WriteStartArray("tags");
        foreach (var t in m.Tags)
        {
            w.WriteStartObject();
            NumU(w, "type", t.Type);
            w.WriteString("typeName", t.TypeName);
            NumU(w, "flags", t.Flags);
            w.WriteBoolean("optional", t.IsOptional);
            NumU(w, "sizeInBytes", t.SizeInBytes);
            w.WriteStartArray("values");
            foreach (var v in t.Values) w.WriteNumberValue(v);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteUki(Utf8JsonWriter w, UkiImage uki)
    {
        w.WriteStartObject();
        w.WriteString("cmdline", uki.Cmdline);
        w.WriteString("uname", uki.Uname);
        w.WriteString("osRelease", uki.OsRelease);
        w.WriteStartArray("sections");
        foreach (var s in uki.Sections)
        {
            w.WriteStartObject();
            w.WriteString("name", s.Name);
            NumU(w, "fileOffset", (ulong)s.FileOffset, hex: true);
            NumU(w, "sizeInBytes", s.SizeInBytes);
            NumU(w, "virtualAddress", s.VirtualAddress, hex: true);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WritePropertyName("pe");
        WritePe(w, uki.Pe);
        w.WritePropertyName("linux");
        Write(w, uki.Linux);
        w.WriteEndObject();
    }
}
