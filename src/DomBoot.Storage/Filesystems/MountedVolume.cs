using System.Globalization;
using DomBoot.Formats.Errors;
using DomBoot.Storage.Images;
using DomBoot.Storage.Partitions;

namespace DomBoot.Storage.Filesystems;

/// <summary>
/// A guest filesystem opened read-only from "IMAGE[:VOLUME]" (VOLUME = partition number as Linux numbers it, "1",
/// "5", or its Linux name "vda5"). Without VOLUME: the whole disk when it has no partition table, else the only
/// volume holding a filesystem. Nothing is mounted and nothing is written.
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
            if (volumeText is not null)
            {
                volume = candidates.FirstOrDefault(v =>
                    v.LinuxName == volumeText || v.Index.ToString(CultureInfo.InvariantCulture) == volumeText)
                    ?? throw new FileNotFoundException(
                        $"{path}: no volume {Quote.Text(volumeText)}; it has {string.Join(", ", candidates.Select(v => v.Index + " (" + v.LinuxName + ")"))}");
                fs = FileSystemOpener.Open(volume.Open(image.Reader), $"{path}:{volume.Index}");
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

    public void Dispose() => _image.Dispose();
}
