using System.Buffers.Binary;
using System.Text;

namespace DomBoot.Formats.Tests.Kernel;

/// <summary>Small synthetic kernel images for edge cases, built byte by byte from the specs' offsets.</summary>
internal static class Synth
{
    private static void W16(byte[] b, int o, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(o), v);
    private static void W32(byte[] b, int o, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(o), v);
    private static void W64(byte[] b, int o, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(o), v);

    public const int BzSetupSects = 3;
    public const int BzPm = (BzSetupSects + 1) * 512; // 0x800
    public const int BzPayloadOffset = 0x100;
    public const int BzPayloadLength = 0x200;
    public const int BzKernelInfoOffset = 0x400;
    public const int BzVersionPointer = 0x300; // string at 0x500

    /// <summary>A 4096-byte protocol 2.15 bzImage: LZ4 payload at 0x900, kernel_info at 0xC00, version string at 0x500.</summary>
    public static byte[] BzImage(int size = 4096)
    {
        var b = new byte[size];
        b[0x1F1] = BzSetupSects;
        W16(b, 0x1FE, 0xAA55);
        b[0x200] = 0xEB; b[0x201] = 0x6A;
        "HdrS"u8.CopyTo(b.AsSpan(0x202));
        W16(b, 0x206, 0x020F);
        W16(b, 0x20E, BzVersionPointer);
        b[0x211] = 0x01;
        W32(b, 0x214, 0x100000);
        W32(b, 0x22C, 0x7FFFFFFF);
        W32(b, 0x230, 0x200000);
        b[0x234] = 1;
        b[0x235] = 21;
        W16(b, 0x236, 0x3);
        W32(b, 0x238, 2047);
        W32(b, 0x248, BzPayloadOffset);
        W32(b, 0x24C, BzPayloadLength);
        W64(b, 0x258, 0x1000000);
        W32(b, 0x260, 0x3000000);
        W32(b, 0x268, BzKernelInfoOffset);
        "1.2.3-synthetic (test) #1"u8.CopyTo(b.AsSpan(BzVersionPointer + 0x200));
        int payload = BzPm + BzPayloadOffset;
        new byte[] { 0x02, 0x21, 0x4C, 0x18 }.CopyTo(b, payload);
        W32(b, payload + BzPayloadLength - 4, 0x123456);
        int ki = BzPm + BzKernelInfoOffset;
        "LToP"u8.CopyTo(b.AsSpan(ki));
        W32(b, ki + 4, 16);
        W32(b, ki + 8, 16);
        W32(b, ki + 12, 0x80000009);
        return b;
    }

    public sealed record Note(string Name, uint Type, byte[] Desc);

    /// <summary>
    /// A little-endian ELF (32 or 64) with one PT_LOAD, optionally a PT_NOTE over the notes (or only an SHT_NOTE
    /// section), an optional __xen_guest section and a .shstrtab. Layout: ehdr, phdrs, notes, guest, shstrtab, shdrs.
    /// </summary>
    public static byte[] Elf(bool is64, IReadOnlyList<Note> notes, string? xenGuest = null, bool notesInProgramHeader = true,
        ulong entry = 0x100000, ushort machine = 3, byte[]? prefix = null)
    {
        int ehsize = is64 ? 64 : 52, phentsize = is64 ? 56 : 32, shentsize = is64 ? 64 : 40;
        var noteBytes = new MemoryStream();
        foreach (var n in notes)
        {
            var name = Encoding.ASCII.GetBytes(n.Name + "\0");
            var hdr = new byte[12];
            W32(hdr, 0, (uint)name.Length); W32(hdr, 4, (uint)n.Desc.Length); W32(hdr, 8, n.Type);
            noteBytes.Write(hdr);
            noteBytes.Write(name); noteBytes.Write(new byte[(4 - name.Length % 4) % 4]);
            noteBytes.Write(n.Desc); noteBytes.Write(new byte[(4 - n.Desc.Length % 4) % 4]);
        }
        var noteArr = noteBytes.ToArray();
        int phnum = 1 + (notesInProgramHeader && noteArr.Length > 0 ? 1 : 0);
        int phoff = ehsize;
        int payloadAt = phoff + phnum * phentsize;
        var body = new MemoryStream();
        prefix ??= [];
        body.Write(prefix);
        int notesAt = payloadAt + (int)body.Length;
        body.Write(noteArr);
        int guestAt = payloadAt + (int)body.Length;
        var guestBytes = xenGuest is null ? [] : Encoding.ASCII.GetBytes(xenGuest + "\0");
        body.Write(guestBytes);
        var shstr = Encoding.ASCII.GetBytes("\0__xen_guest\0.shstrtab\0.note\0");
        int shstrAt = payloadAt + (int)body.Length;
        body.Write(shstr);
        while (body.Length % 8 != 0) body.WriteByte(0);
        int shoff = payloadAt + (int)body.Length;
        var sections = new List<(uint name, uint type, int off, int size)> { (0, 0, 0, 0) };
        if (xenGuest is not null) sections.Add((1, 1, guestAt, guestBytes.Length));
        if (noteArr.Length > 0) sections.Add((23, 7, notesAt, noteArr.Length));
        sections.Add((13, 3, shstrAt, shstr.Length));
        int total = shoff + sections.Count * shentsize;
        var b = new byte[total];
        "\x7F"u8.CopyTo(b); "ELF"u8.CopyTo(b.AsSpan(1));
        b[4] = (byte)(is64 ? 2 : 1); b[5] = 1; b[6] = 1;
        W16(b, 16, 2); W16(b, 18, machine); W32(b, 20, 1);
        if (is64)
        {
            W64(b, 24, entry); W64(b, 32, (ulong)phoff); W64(b, 40, (ulong)shoff);
            W16(b, 52, (ushort)ehsize); W16(b, 54, (ushort)phentsize); W16(b, 56, (ushort)phnum);
            W16(b, 58, (ushort)shentsize); W16(b, 60, (ushort)sections.Count); W16(b, 62, (ushort)(sections.Count - 1));
        }
        else
        {
            W32(b, 24, (uint)entry); W32(b, 28, (uint)phoff); W32(b, 32, (uint)shoff);
            W16(b, 40, (ushort)ehsize); W16(b, 42, (ushort)phentsize); W16(b, 44, (ushort)phnum);
            W16(b, 46, (ushort)shentsize); W16(b, 48, (ushort)sections.Count); W16(b, 50, (ushort)(sections.Count - 1));
        }
        body.ToArray().CopyTo(b, payloadAt);
        void Ph(int i, uint type, int off, int size, uint flags)
        {
            int p = phoff + i * phentsize;
            if (is64)
            {
                W32(b, p, type); W32(b, p + 4, flags); W64(b, p + 8, (ulong)off); W64(b, p + 16, 0x100000 + (ulong)off);
                W64(b, p + 24, 0x100000 + (ulong)off); W64(b, p + 32, (ulong)size); W64(b, p + 40, (ulong)size); W64(b, p + 48, 4);
            }
            else
            {
                W32(b, p, type); W32(b, p + 4, (uint)off); W32(b, p + 8, 0x100000 + (uint)off); W32(b, p + 12, 0x100000 + (uint)off);
                W32(b, p + 16, (uint)size); W32(b, p + 20, (uint)size); W32(b, p + 24, flags); W32(b, p + 28, 4);
            }
        }
        Ph(0, 1, 0, total, 7);
        if (phnum == 2) Ph(1, 4, notesAt, noteArr.Length, 4);
        for (int i = 0; i < sections.Count; i++)
        {
            var (name, type, off, size) = sections[i];
            int s = shoff + i * shentsize;
            W32(b, s, name); W32(b, s + 4, type);
            if (is64) { W64(b, s + 24, (ulong)off); W64(b, s + 32, (ulong)size); }
            else { W32(b, s + 16, (uint)off); W32(b, s + 20, (uint)size); }
        }
        return b;
    }

    public static byte[] U32Bytes(uint v) { var b = new byte[4]; W32(b, 0, v); return b; }
    public static byte[] U64Bytes(ulong v) { var b = new byte[8]; W64(b, 0, v); return b; }

    /// <summary>A raw (non-ELF) Multiboot 1 image with the a.out kludge: header at <paramref name="at"/>.</summary>
    public static byte[] Multiboot1(int at = 0x40, uint flags = 0x00010003, int size = 4096)
    {
        var b = new byte[size];
        b[0] = 0xFA; // cli: anything that is not a known magic
        W32(b, at, 0x1BADB002);
        W32(b, at + 4, flags);
        W32(b, at + 8, unchecked(0u - 0x1BADB002u - flags));
        W32(b, at + 12, 0x100000 + (uint)at);
        W32(b, at + 16, 0x100000);
        W32(b, at + 20, 0x100000 + (uint)size);
        W32(b, at + 24, 0x200000);
        W32(b, at + 28, 0x100080);
        W32(b, at + 32, 1); W32(b, at + 36, 80); W32(b, at + 40, 25); W32(b, at + 44, 0);
        return b;
    }

    /// <summary>A raw Multiboot 2 image: header at <paramref name="at"/> with address, entry, optional framebuffer and end tags.</summary>
    public static byte[] Multiboot2(int at = 0x1000, int size = 8192)
    {
        var b = new byte[size];
        b[0] = 0xFA;
        int p = at + 16;
        // address tag (type 2, 24 bytes)
        W16(b, p, 2); W16(b, p + 2, 0); W32(b, p + 4, 24);
        W32(b, p + 8, 0x100000 + (uint)at); W32(b, p + 12, 0x100000); W32(b, p + 16, 0x100000 + (uint)size); W32(b, p + 20, 0x300000);
        p += 24;
        // entry address tag (type 3, 12 bytes, padded to 16)
        W16(b, p, 3); W16(b, p + 2, 0); W32(b, p + 4, 12); W32(b, p + 8, 0x100200);
        p += 16;
        // framebuffer tag (type 5, optional, 20 bytes, padded to 24)
        W16(b, p, 5); W16(b, p + 2, 1); W32(b, p + 4, 20); W32(b, p + 8, 1024); W32(b, p + 12, 768); W32(b, p + 16, 32);
        p += 24;
        // end tag
        W16(b, p, 0); W16(b, p + 2, 0); W32(b, p + 4, 8);
        p += 8;
        uint length = (uint)(p - at);
        W32(b, at, 0xE85250D6); W32(b, at + 4, 0); W32(b, at + 8, length);
        W32(b, at + 12, unchecked(0u - 0xE85250D6u - 0 - length));
        return b;
    }

    public static byte[] Gzip(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var gz = new System.IO.Compression.GZipStream(ms, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
            gz.Write(data);
        return ms.ToArray();
    }
}
