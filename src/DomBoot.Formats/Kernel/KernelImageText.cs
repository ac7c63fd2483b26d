using System.Globalization;
using System.Text;

namespace DomBoot.Formats.Kernel;

/// <summary>Human-readable rendering of a <see cref="KernelImage"/> for `domboot kernel inspect`: "Key: value" lines.</summary>
public static class KernelImageText
{
    public static string Render(KernelImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var sb = new StringBuilder();
        Render(sb, image, "");
        return sb.ToString();
    }

    private static string Hex(ulong v) => "0x" + v.ToString("X", CultureInfo.InvariantCulture);
    private static string Dec(ulong v) => v.ToString(CultureInfo.InvariantCulture);
    private static string YesNo(bool b) => b ? "yes" : "no";

    public static string CompressionName(PayloadCompression c) => c switch
    {
        PayloadCompression.Gzip => "gzip",
        PayloadCompression.Bzip2 => "bzip2",
        PayloadCompression.Lzma => "LZMA",
        PayloadCompression.Xz => "XZ",
        PayloadCompression.Lzo => "LZO",
        PayloadCompression.Lz4 => "LZ4",
        PayloadCompression.Zstd => "zstd",
        PayloadCompression.None => "none (ELF)",
        _ => "unknown",
    };

    private static void Render(StringBuilder sb, KernelImage image, string indent)
    {
        void Line(string key, string value) => sb.Append(indent).Append(key).Append(": ").Append(value).Append('\n');

        Line("File", FormattableString.Invariant($"{image.FileName} ({image.FileSizeInBytes} bytes)"));
        Line("Kind", image.Kind switch
        {
            KernelKind.BzImage => "bzImage (Linux x86 boot protocol)",
            KernelKind.Elf => "ELF kernel",
            KernelKind.Multiboot => "Multiboot kernel",
            _ => "Unified Kernel Image (UKI)",
        });
        if (image.WasGzipWrapped)
            Line("Gzip-wrapped", FormattableString.Invariant($"yes ({image.InflatedSizeInBytes} bytes inflated)"));

        if (image.BzImage is { } bz) RenderBzImage(Line, bz);
        if (image.Elf is { } elf) RenderElf(Line, elf);
        if (image.Multiboot1 is { } m1)
        {
            var s = new StringBuilder(FormattableString.Invariant($"at {Hex((ulong)m1.Offset)}, flags {Hex(m1.Flags)}"));
            if (m1.EntryAddr is { } e) s.Append(FormattableString.Invariant($", entry {Hex(e)}, load {Hex(m1.LoadAddr ?? 0)}-{Hex(m1.LoadEndAddr ?? 0)}"));
            if (m1.UnknownRequiredFlags != 0) s.Append(FormattableString.Invariant($", UNKNOWN required flags {Hex(m1.UnknownRequiredFlags)}"));
            Line("Multiboot 1 header", s.ToString());
        }
        if (image.Multiboot2 is { } m2)
        {
            var tags = string.Join(", ", m2.Tags.Where(t => t.Type != 0).Select(t => t.TypeName + (t.IsOptional ? " (optional)" : "")));
            Line("Multiboot 2 header", FormattableString.Invariant(
                $"at {Hex((ulong)m2.Offset)}, architecture {m2.Architecture}, {m2.HeaderLength} bytes, tags: {(tags.Length == 0 ? "none" : tags)}"));
        }
        if (image.Uki is { } uki)
        {
            Line("PE", PeSummary(uki.Pe));
            foreach (var s in uki.Sections)
                Line("Section " + s.Name, FormattableString.Invariant($"{s.SizeInBytes} bytes at {Hex((ulong)s.FileOffset)}"));
            if (uki.Uname is { } u) Line("uname", Clean(u));
            if (uki.Cmdline is { } c) Line("Command line", Clean(c.TrimEnd('\n')));
            if (uki.OsRelease is { } o)
            {
                var pretty = o.Split('\n').FirstOrDefault(l => l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal))
                    ?? o.Split('\n').FirstOrDefault(l => l.Length > 0) ?? "";
                Line("os-release", Clean(pretty));
            }
            sb.Append(indent).Append("Linux (.linux section):\n");
            Render(sb, uki.Linux, indent + "  ");
        }
    }

    private static void RenderBzImage(Action<string, string> line, BzImage bz)
    {
        var h = bz.Header;
        line("Protocol", h.ProtocolText);
        line("Kernel version", bz.KernelVersionString is { } kv ? Clean(kv) : "(none)");
        line("bzImage (loaded high)", YesNo(h.IsBzImage));
        line("Relocatable", YesNo(h.IsRelocatable));
        line("setup_sects", FormattableString.Invariant($"{h.EffectiveSetupSects} (protected-mode code at {Hex((ulong)bz.ProtectedModeFileOffset)})"));
        line("loadflags", FormattableString.Invariant($"{Hex((ulong)h.LoadFlags)} ({h.LoadFlags})"));
        if (h.Version >= 0x020C) line("xloadflags", FormattableString.Invariant($"{Hex((ulong)h.XLoadFlags)} ({h.XLoadFlags})"));
        if (bz.PayloadFileOffset is { } po)
        {
            var payload = FormattableString.Invariant($"{CompressionName(bz.PayloadCompression)} at {Hex((ulong)po)}, {bz.PayloadLengthInBytes} bytes");
            if (bz.UncompressedPayloadSize is { } u) payload += FormattableString.Invariant($", {u} bytes uncompressed");
            line("Payload", payload);
        }
        line("code32_start", Hex(h.Code32Start));
        if (h.PrefAddress is { } pa) line("pref_address", Hex(pa));
        if (h.InitSize is { } isz) line("init_size", Hex(isz));
        if (h.KernelAlignment is { } ka)
            line("kernel_alignment", Hex(ka) + (h.MinAlignment is { } ma ? FormattableString.Invariant($" (min_alignment 2^{ma})") : ""));
        line("initrd_addr_max", Hex(h.InitrdAddrMax));
        line("cmdline_size", Dec(h.CmdlineSize));
        if (h.HandoverOffset is { } ho) line("handover_offset", Hex(ho));
        if (bz.KernelInfo is { } ki)
            line("kernel_info", FormattableString.Invariant($"at {Hex((ulong)ki.FileOffset)}, size {ki.Size}, size_total {ki.SizeTotal}, setup_type_max {Hex(ki.SetupTypeMax)}"));
        line("EFI PE", bz.Pe is { } pe ? "yes (" + PeSummary(pe) + ")" : "no");
    }

    private static string PeSummary(PeImage pe) => FormattableString.Invariant(
        $"{pe.MachineName} {(pe.IsPe32Plus ? "PE32+" : "PE32")}, subsystem {pe.Subsystem}, {pe.Sections.Count} sections: {string.Join(' ', pe.Sections.Select(s => s.Name))}");

    private static void RenderElf(Action<string, string> line, ElfKernel elf)
    {
        line("ELF", FormattableString.Invariant($"ELF{elf.Class} {elf.TypeName}, machine {elf.MachineName}"));
        line("Entry", Hex(elf.Entry));
        if (elf.Phys32Entry is { } p) line("PVH entry (PHYS32_ENTRY)", Hex(p));
        if (elf.LinuxBuildSalt is { } salt) line("Linux build salt", Clean(salt));
        foreach (var ph in elf.ProgramHeaders.Where(p => p.Type == 1))
            line("LOAD", FormattableString.Invariant(
                $"offset {Hex(ph.Offset)} paddr {Hex(ph.PAddr)} vaddr {Hex(ph.VAddr)} filesz {Hex(ph.FileSize)} memsz {Hex(ph.MemSize)} align {Hex(ph.Align)}"));
        foreach (var n in elf.XenNotes)
            line("Xen note " + n.TypeName, n.StringValue is { } s ? Quote(s)
                : n.NumericValue is { } v ? Hex(v)
                : string.Join(",", n.Values.Select(Hex)));
        if (elf.XenGuestString is { } g) line("__xen_guest", Quote(g));
    }

    /// <summary>Guest-supplied text with control characters replaced, so it cannot drive the terminal.</summary>
    private static string Clean(string s)
    {
        var b = new StringBuilder(s.Length);
        foreach (char c in s) b.Append(char.IsControl(c) ? '?' : c);
        return b.ToString();
    }

    private static string Quote(string s) => Errors.Quote.Text(s);
}
