using DomBoot.Storage.Images;
using DomBoot.Storage.Partitions;
using DomBoot.Storage.Probing;

namespace DomBoot.Storage.Disks;

/// <summary>One volume of an inspected disk and what it holds.</summary>
public sealed record VolumeReport(Volume Volume, ProbeResult? FileSystem);

/// <summary>Everything `domboot disk inspect` shows about one image: sfdisk -l, qemu-img info and blkid in one.</summary>
public sealed record DiskReport(
    string Path,
    string Format,
    long VirtualSize,
    long FileSize,
    int? ClusterSize,
    uint? Qcow2Version,
    IReadOnlyList<string> BackingChain,
    PartitionLayout Layout,
    ProbeResult? WholeDisk,
    IReadOnlyList<VolumeReport> Volumes);

public static class DiskInspector
{
    /// <summary>Opens an image, reads its partitioning and probes every volume; <paramref name="diskIndex"/> picks vda/hd0, vdb/hd1, ...</summary>
    public static DiskReport Inspect(string path, int diskIndex = 0)
    {
        using var image = DiskImage.Open(path);
        var layout = PartitionTable.Read(image.Reader, diskIndex);
        var whole = FileSystemProbe.Probe(image.Reader);
        var volumes = new List<VolumeReport>();
        foreach (var v in layout.Volumes)
        {
            ProbeResult? fs = v.Kind switch
            {
                VolumeKind.Extended => null,
                VolumeKind.WholeDisk => whole,
                _ => FileSystemProbe.Probe(v.Open(image.Reader)),
            };
            volumes.Add(new VolumeReport(v, fs));
        }
        return new DiskReport(path, image.Format, image.VirtualSize, image.FileSize, image.Qcow2Header?.ClusterSize,
            image.Qcow2Header?.Version, image.BackingChain, layout, layout.Scheme == "none" ? null : whole, volumes);
    }
}
