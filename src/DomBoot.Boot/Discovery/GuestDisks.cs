using DomBoot.Boot.Model;
using DomBoot.Formats.Errors;
using DomBoot.Storage.Filesystems;
using DomBoot.Storage.Images;
using DomBoot.Storage.Partitions;

namespace DomBoot.Boot.Discovery;

/// <summary>One guest volume with its filesystem open.</summary>
public sealed record GuestVolume(int DiskIndex, Volume Volume, IFileSystem FileSystem, GuestVolumeInfo Info);

/// <summary>
/// The guest's disks, opened read-only: every volume with a filesystem domboot reads, named as GRUB and Linux
/// name it. Implements <see cref="IGuestFiles"/> for config evaluators: every path resolves inside one guest
/// filesystem (symlinks included); nothing on the host is ever reached.
/// </summary>
public sealed class GuestDisks : IGuestFiles, IDisposable
{
    private readonly List<DiskImage> _images = [];
    private readonly List<GuestVolume> _volumes = [];

    public IReadOnlyList<GuestVolume> GuestVolumes => _volumes;
    public IReadOnlyList<GuestVolumeInfo> Volumes => [.. _volumes.Select(v => v.Info)];
    public IReadOnlyList<string> DiskPaths { get; }
    public string DefaultDevice { get; private set; } = "(hd0)";

    private GuestDisks(IReadOnlyList<string> paths) => DiskPaths = paths;

    /// <summary>Opens each disk (the first is hd0/vda); <paramref name="offset"/> (pygrub --offset) names one filesystem start on disk 0.</summary>
    public static GuestDisks Open(IReadOnlyList<string> paths, long? offset = null)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var disks = new GuestDisks(paths);
        try
        {
            for (int d = 0; d < paths.Count; d++)
            {
                var image = DiskImage.Open(paths[d]);
                disks._images.Add(image);
                IReadOnlyList<Volume> volumes;
                if (d == 0 && offset is { } off)
                {
                    if (off < 0 || off >= image.VirtualSize)
                        throw new MalformedDataException(paths[d], off, $"--offset {off} is outside the disk of {image.VirtualSize} bytes");
                    volumes = [new Volume(0, VolumeKind.WholeDisk, off, image.VirtualSize - off, null, null, "offset", null, false, 0, null,
                        DiskNames.Linux(d), $"({DiskNames.Grub(d)})")];
                }
                else
                {
                    volumes = PartitionTable.Read(image.Reader, d).Volumes;
                }
                foreach (var v in volumes.Where(v => v.Kind != VolumeKind.Extended))
                {
                    IFileSystem? fs;
                    try { fs = FileSystemOpener.TryOpen(v.Open(image.Reader)); }
                    catch (Exception ex) when (ex is MalformedDataException or UnsupportedFeatureException)
                    {
                        // A damaged or unsupported volume is skipped, as GRUB skips what it cannot read.
                        disks.Warnings.Add($"{v.LinuxName}: {ex.Message}");
                        continue;
                    }
                    if (fs is null) continue;
                    var info = new GuestVolumeInfo(v.GrubName, v.LinuxName, fs.TypeName, fs.Uuid, fs.Label, v.PartUuid, v.Name);
                    disks._volumes.Add(new GuestVolume(d, v, fs, info));
                }
            }
            if (disks._volumes.Count > 0) disks.DefaultDevice = disks._volumes[0].Info.GrubDevice;
            return disks;
        }
        catch
        {
            disks.Dispose();
            throw;
        }
    }

    public List<string> Warnings { get; } = [];

    /// <summary>
    /// Reopens a btrfs volume at a subvolume (fstab's subvol= or subvolid=), so its paths are the ones the guest
    /// sees at that mount point. Returns the volume as reopened.
    /// </summary>
    public GuestVolume UseBtrfsSubvolume(GuestVolume volume, string? subvolumePath, ulong? subvolumeId)
    {
        ArgumentNullException.ThrowIfNull(volume);
        if (volume.FileSystem is not Storage.Filesystems.Btrfs.BtrfsFileSystem)
            throw new InvalidRequestException($"{volume.Info.LinuxName} is {volume.Info.FsType}, not btrfs; subvol= does not apply");
        var reader = volume.Volume.Open(_images[volume.DiskIndex].Reader);
        IFileSystem fs = subvolumeId is { } id
            ? Storage.Filesystems.Btrfs.BtrfsFileSystem.Open(reader, id)
            : Storage.Filesystems.Btrfs.BtrfsFileSystem.Open(reader, subvolumePath);
        var reopened = volume with { FileSystem = fs };
        _volumes[_volumes.IndexOf(volume)] = reopened;
        return reopened;
    }

    /// <summary>Makes <paramref name="grubDevice"/> the device that device-less paths refer to.</summary>
    public void SetDefaultDevice(string grubDevice) => DefaultDevice = grubDevice;

    public GuestVolume? FindVolume(string grubDevice) =>
        _volumes.FirstOrDefault(v => string.Equals(v.Info.GrubDevice, NormalizeDevice(grubDevice), StringComparison.Ordinal));

    /// <summary>"(hd0,1)" (GRUB legacy/2 without a scheme) becomes the scheme-qualified name when the disk has one.</summary>
    private string NormalizeDevice(string device)
    {
        if (_volumes.Any(v => v.Info.GrubDevice == device)) return device;
        var inner = device.Trim('(', ')');
        var parts = inner.Split(',');
        if (parts.Length == 2 && int.TryParse(parts[1], System.Globalization.CultureInfo.InvariantCulture, out int n))
        {
            var match = _volumes.FirstOrDefault(v => v.Info.GrubDevice.StartsWith("(" + parts[0] + ",", StringComparison.Ordinal) && v.Volume.Index == n);
            if (match is not null) return match.Info.GrubDevice;
        }
        if (parts.Length == 1)
        {
            var whole = _volumes.FirstOrDefault(v => v.Info.GrubDevice == "(" + parts[0] + ")");
            if (whole is not null) return whole.Info.GrubDevice;
        }
        return device;
    }

    private (GuestVolume Volume, FsNode Node)? Resolve(GuestPath path)
    {
        var vol = FindVolume(path.Device ?? DefaultDevice);
        if (vol is null) return null;
        try
        {
            var node = PathResolver.TryResolve(vol.FileSystem, path.Path);
            return node is null ? null : (vol, node);
        }
        catch (DirectoryNotFoundException) { return null; }
    }

    public bool FileExists(GuestPath path) => Resolve(path) is { Node.Type: FsNodeType.Regular };

    public bool DirectoryExists(GuestPath path) => Resolve(path) is { Node.Type: FsNodeType.Directory };

    public long? FileSize(GuestPath path) => Resolve(path) is { Node.Type: FsNodeType.Regular } r ? r.Node.SizeInBytes : null;

    public byte[]? ReadFile(GuestPath path, long maxBytes)
    {
        if (Resolve(path) is not { Node.Type: FsNodeType.Regular } r) return null;
        if (r.Node.SizeInBytes > maxBytes)
            throw new MalformedDataException(path.ToString(), 0, $"file is {r.Node.SizeInBytes} bytes; expected at most {maxBytes}");
        var bytes = new byte[r.Node.SizeInBytes];
        int done = 0;
        while (done < bytes.Length)
        {
            int n = r.Volume.FileSystem.Read(r.Node, done, bytes.AsSpan(done));
            if (n <= 0) throw new TruncatedDataException(path.ToString(), done, bytes.Length - done, 0);
            done += n;
        }
        return bytes;
    }

    /// <summary>Streams a guest file to <paramref name="output"/>, at most <paramref name="maxBytes"/>.</summary>
    public long CopyFile(GuestPath path, Stream output, long maxBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (Resolve(path) is not { Node.Type: FsNodeType.Regular } r)
            throw new FileNotFoundException($"{path}: no such file in the guest");
        if (r.Node.SizeInBytes > maxBytes)
            throw new MalformedDataException(path.ToString(), 0, $"file is {r.Node.SizeInBytes} bytes; expected at most {maxBytes}");
        var buffer = new byte[1 << 20];
        long offset = 0;
        while (offset < r.Node.SizeInBytes)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int n = r.Volume.FileSystem.Read(r.Node, offset, buffer.AsSpan(0, (int)Math.Min(buffer.Length, r.Node.SizeInBytes - offset)));
            if (n <= 0) throw new TruncatedDataException(path.ToString(), offset, r.Node.SizeInBytes - offset, 0);
            output.Write(buffer, 0, n);
            offset += n;
        }
        return offset;
    }

    public IReadOnlyList<string> ListDirectory(GuestPath path)
    {
        if (Resolve(path) is not { Node.Type: FsNodeType.Directory } r) return [];
        return [.. r.Volume.FileSystem.ListDirectory(r.Node).Select(e => e.Name)];
    }

    public void Dispose()
    {
        foreach (var i in _images) i.Dispose();
        _images.Clear();
    }
}
