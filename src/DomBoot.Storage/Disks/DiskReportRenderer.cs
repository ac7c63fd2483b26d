using System.Globalization;
using System.Text.Json;
using DomBoot.Storage.Partitions;
using DomBoot.Storage.Probing;

namespace DomBoot.Storage.Disks;

/// <summary>Human text and JSON forms of <see cref="DiskReport"/>s.</summary>
public static class DiskReportRenderer
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private static readonly string[] Columns = ["DEVICE", "GRUB", "START", "SIZE", "TYPE", "NAME", "FLAGS", "FS", "UUID", "LABEL"];

    public static void WriteText(TextWriter w, IReadOnlyList<DiskReport> reports)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(reports);
        for (int i = 0; i < reports.Count; i++)
        {
            if (i > 0) w.WriteLine();
            WriteText(w, reports[i]);
        }
    }

    public static void WriteText(TextWriter w, DiskReport r)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(r);
        w.WriteLine($"{r.Path}: {r.Format}, {HumanSize(r.VirtualSize)} ({r.VirtualSize.ToString(Inv)} bytes)");
        if (r.Qcow2Version is { } ver) w.WriteLine($"  qcow2 version {ver.ToString(Inv)}, cluster size {r.ClusterSize?.ToString(Inv)}, file size {r.FileSize.ToString(Inv)}");
        foreach (var b in r.BackingChain) w.WriteLine($"  backing file: {b}");
        var l = r.Layout;
        string id = l.DiskId is null ? "" : l.Scheme == "dos" ? $", disk identifier 0x{l.DiskId}" : $", disk identifier {l.DiskId}";
        w.WriteLine(l.Scheme == "none" ? "  partition table: none (whole disk)"
            : $"  partition table: {l.Scheme}{id}, sector size {l.SectorSize.ToString(Inv)}{(l.UsedBackupGpt ? " (read from the backup GPT header)" : "")}");
        if (r.WholeDisk is { } wd) w.WriteLine($"  whole disk: {Fs(wd)}");
        var rows = new List<string[]> { (string[])Columns.Clone() };
        foreach (var vr in r.Volumes)
        {
            var v = vr.Volume;
            rows.Add([v.LinuxName, v.GrubName, v.StartInBytes.ToString(Inv), HumanSize(v.SizeInBytes),
                v.Kind == VolumeKind.WholeDisk ? "-" : $"{v.TypeName} ({v.TypeCode})", v.Name ?? "", v.Flags,
                vr.FileSystem?.Type ?? "", vr.FileSystem?.Uuid ?? "", vr.FileSystem?.Label ?? ""]);
        }
        var widths = Enumerable.Range(0, rows[0].Length).Select(c => rows.Max(row => row[c].Length)).ToArray();
        foreach (var row in rows)
            w.WriteLine("  " + string.Join("  ", row.Select((cell, c) => c is 2 or 3 ? cell.PadLeft(widths[c]) : cell.PadRight(widths[c]))).TrimEnd());
    }

    public static void WriteJson(Stream output, IReadOnlyList<DiskReport> reports)
    {
        ArgumentNullException.ThrowIfNull(reports);
        using var j = new Utf8JsonWriter(output, new JsonWriterOptions { Indented = true });
        j.WriteStartObject();
        j.WriteStartArray("images");
        foreach (var r in reports) WriteJson(j, r);
        j.WriteEndArray();
        j.WriteEndObject();
        j.Flush();
    }

    private static void WriteJson(Utf8JsonWriter j, DiskReport r)
    {
        j.WriteStartObject();
        j.WriteString("path", r.Path);
        j.WriteString("format", r.Format);
        j.WriteNumber("virtual-size", r.VirtualSize);
        j.WriteNumber("file-size", r.FileSize);
        if (r.ClusterSize is { } cs) j.WriteNumber("cluster-size", cs);
        if (r.Qcow2Version is { } v) j.WriteNumber("qcow2-version", v);
        j.WriteStartArray("backing-chain");
        foreach (var b in r.BackingChain) j.WriteStringValue(b);
        j.WriteEndArray();
        j.WriteStartObject("partition-table");
        j.WriteString("type", r.Layout.Scheme);
        if (r.Layout.DiskId is { } id) j.WriteString("id", id); else j.WriteNull("id");
        j.WriteNumber("sector-size", r.Layout.SectorSize);
        j.WriteBoolean("backup-gpt-used", r.Layout.UsedBackupGpt);
        j.WriteEndObject();
        WriteFs(j, "filesystem", r.WholeDisk);
        j.WriteStartArray("volumes");
        foreach (var vr in r.Volumes)
        {
            var vol = vr.Volume;
            j.WriteStartObject();
            j.WriteNumber("number", vol.Index);
            j.WriteString("kind", vol.Kind switch
            {
                VolumeKind.WholeDisk => "whole-disk",
                VolumeKind.Primary => "primary",
                VolumeKind.Extended => "extended",
                VolumeKind.Logical => "logical",
                _ => "gpt",
            });
            j.WriteString("linux-name", vol.LinuxName);
            j.WriteString("grub-name", vol.GrubName);
            j.WriteNumber("start", vol.StartInBytes);
            j.WriteNumber("size", vol.SizeInBytes);
            j.WriteString("type", vol.TypeCode);
            j.WriteString("type-name", vol.TypeName);
            if (vol.Name is { } n) j.WriteString("name", n); else j.WriteNull("name");
            j.WriteBoolean("active", vol.Active);
            if (vol.Kind == VolumeKind.Gpt) j.WriteNumber("attributes", vol.GptAttributes);
            j.WriteString("flags", vol.Flags);
            if (vol.PartUuid is { } pu) j.WriteString("partuuid", pu); else j.WriteNull("partuuid");
            WriteFs(j, "filesystem", vr.FileSystem);
            j.WriteEndObject();
        }
        j.WriteEndArray();
        j.WriteEndObject();
    }

    private static void WriteFs(Utf8JsonWriter j, string name, ProbeResult? fs)
    {
        if (fs is null)
        {
            j.WriteNull(name);
            return;
        }
        j.WriteStartObject(name);
        j.WriteString("type", fs.Type);
        if (fs.Uuid is { } u) j.WriteString("uuid", u); else j.WriteNull("uuid");
        if (fs.Label is { } l) j.WriteString("label", l); else j.WriteNull("label");
        if (fs.Version is { } v) j.WriteString("version", v);
        j.WriteEndObject();
    }

    private static string Fs(ProbeResult p) =>
        $"{p.Type}{(p.Uuid is null ? "" : $" UUID={p.Uuid}")}{(p.Label is null ? "" : $" LABEL=\"{p.Label}\"")}";

    public static string HumanSize(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.Length - 1) { v /= 1024; u++; }
        return u == 0 ? $"{bytes.ToString(Inv)} B" : $"{v.ToString("0.#", Inv)} {units[u]}";
    }
}
