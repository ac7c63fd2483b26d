using System.Globalization;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;
using DomBoot.Storage.Filesystems.Iso9660;
using DomBoot.Storage.Images;
using DomBoot.Storage.Partitions;

namespace DomBoot.Storage.Filesystems;

/// <summary>
/// A guest filesystem opened read-only from "IMAGE[:VOLUME]" (VOLUME = partition number as Linux numbers it, "1",
/// "5", or its Linux name "vda5"; "0" is the whole disk). Without VOLUME: the whole disk when it has no partition
/// table or is a hybrid ISO (ISO9660 over the whole disk, as `mount x.iso` and blkid take it), else the only volume
/// holding a filesystem. Nothing is mounted and nothing is written.
/// </summary>
public sealed class MountedVolume : IDisposable
{
    private readonly DiskImage _image;

    public Volume Volume { get; }
    public IFileSystem FileSystem { get; }
    public string Description => $"{_image.Path}:{Volume.Index} ({Volume.LinuxName}, {FileSystem.TypeName})";

    private MountedVolume(DiskImage image, Volume volume, IFileSystem fs)
    {
        _image = image;
        Volume = volume;
        FileSystem = fs;
    }

    public static (string Image, string? Volume) ParseSpec(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        int colon = spec.LastIndexOf(':');
        if (colon > 0 && colon < spec.Length - 1)
        {
            var tail = spec[(colon + 1)..];
            if (tail.All(char.IsAsciiDigit) || (tail.Length > 2 && tail.StartsWith("vd", StringComparison.Ordinal) && char.IsAsciiDigit(tail[^1])))
                return (spec[..colon], tail);
        }
        return (spec, null);
    }

    public static MountedVolume Open(string spec)
    {
        var (path, volumeText) = ParseSpec(spec);
        var image = DiskImage.Open(path);
        try
        {
            var layout = PartitionTable.Read(image.Reader);
            var candidates = layout.Volumes.Where(v => v.Kind != VolumeKind.Extended).ToList();
            Volume volume;
            IFileSystem? fs;
            var whole = layout.Scheme == "none" ? null
                : new Volume(0, VolumeKind.WholeDisk, 0, image.Reader.Length, null, null, "whole disk", null, false, 0, null,
                    DiskNames.Linux(0), $"({DiskNames.Grub(0)})");
            if (volumeText is not null)
            {
                volume = (volumeText == "0" ? whole : null) ?? candidates.FirstOrDefault(v =>
                    v.LinuxName == volumeText || v.Index.ToString(CultureInfo.InvariantCulture) == volumeText)
                    ?? throw new FileNotFoundException(
                        $"{path}: no volume {Quote.Text(volumeText)}; it has {string.Join(", ", (whole is null ? candidates : candidates.Prepend(whole)).Select(v => v.Index + " (" + v.LinuxName + ")"))}");
                fs = FileSystemOpener.Open(volume.Open(image.Reader), $"{path}:{volume.Index}");
            }
            else if (whole is not null && WholeDiskIso(image.Reader) is { } iso)
            {
                (volume, fs) = (whole, iso);
            }
            else
            {
                var found = new List<(Volume, IFileSystem)>();
                foreach (var v in candidates)
                {
                    if (FileSystemOpener.TryOpen(v.Open(image.Reader)) is { } f) found.Add((v, f));
                }
                if (found.Count == 0)
                    throw new MalformedDataException(path, 0, $"no volume holds a filesystem domboot reads; expected one of {string.Join(", ", FileSystemOpener.ReaderNames)}");
                if (found.Count > 1)
                    throw new InvalidRequestException($"{path} has {found.Count} filesystems ({string.Join(", ", found.Select(x => x.Item1.Index + ": " + x.Item2.TypeName))}); name one as {path}:N");
                (volume, fs) = found[0];
            }
            return new MountedVolume(image, volume, fs);
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    /// <summary>A hybrid ISO: ISO9660 volume descriptors at 32 KiB of the partitioned disk itself (ECMA-119 6.2.1).</summary>
    private static Iso9660FileSystem? WholeDiskIso(IBlockReader disk)
    {
        const long SystemAreaBytes = 0x8000;
        var descriptor = new byte[2048];
        if (disk.Length < SystemAreaBytes + descriptor.Length) return null;
        disk.ReadExactly(SystemAreaBytes, descriptor);
        return Iso9660FileSystem.HasMagic(descriptor) ? Iso9660FileSystem.Open(disk) : null;
    }

    public void Dispose() => _image.Dispose();
}
