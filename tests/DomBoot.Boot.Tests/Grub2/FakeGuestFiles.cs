using System.Text;
using DomBoot.Boot.Model;
using DomBoot.Formats.Errors;

namespace DomBoot.Boot.Tests.Grub2;

/// <summary>In-memory guest disks: (GRUB device, path) -> bytes, plus synthetic huge files known only by size.</summary>
internal sealed class FakeGuestFiles : IGuestFiles
{
    private readonly Dictionary<(string Device, string Path), byte[]> _files = [];
    private readonly Dictionary<(string Device, string Path), long> _hugeSizes = [];
    private readonly List<GuestVolumeInfo> _volumes = [];

    public FakeGuestFiles(string defaultDevice = "(hd0,gpt2)") => DefaultDevice = defaultDevice;

    public string DefaultDevice { get; }

    public IReadOnlyList<GuestVolumeInfo> Volumes => _volumes;

    public List<string> Reads { get; } = [];

    public FakeGuestFiles Volume(string grubDevice, string linuxName, string? uuid, string? label = null, string fsType = "ext4")
    {
        _volumes.Add(new GuestVolumeInfo(grubDevice, linuxName, fsType, uuid, label, null, null));
        return this;
    }

    public FakeGuestFiles Add(string device, string path, string text) => Add(device, path, Encoding.UTF8.GetBytes(text));

    public FakeGuestFiles Add(string device, string path, byte[] bytes)
    {
        _files[(device, path)] = bytes;
        return this;
    }

    public FakeGuestFiles AddHuge(string device, string path, long size)
    {
        _hugeSizes[(device, path)] = size;
        return this;
    }

    private (string, string) Key(GuestPath p) => (p.Device ?? DefaultDevice, p.Path);

    public bool FileExists(GuestPath path) => _files.ContainsKey(Key(path)) || _hugeSizes.ContainsKey(Key(path));

    public bool DirectoryExists(GuestPath path)
    {
        var (dev, dir) = Key(path);
        string prefix = dir.TrimEnd('/') + "/";
        return _files.Keys.Any(k => k.Device == dev && k.Path.StartsWith(prefix, StringComparison.Ordinal));
    }

    public long? FileSize(GuestPath path)
    {
        if (_files.TryGetValue(Key(path), out var b)) return b.Length;
        if (_hugeSizes.TryGetValue(Key(path), out var s)) return s;
        return null;
    }

    public byte[]? ReadFile(GuestPath path, long maxBytes)
    {
        Reads.Add(path.ToString());
        long? size = FileSize(path);
        if (size is null) return null;
        if (size > maxBytes) throw new MalformedDataException(path.ToString(), -1, $"file is {size} bytes; limit {maxBytes}");
        return _files[Key(path)];
    }

    public IReadOnlyList<string> ListDirectory(GuestPath path)
    {
        var (dev, dir) = Key(path);
        string prefix = dir.TrimEnd('/') + "/";
        return _files.Keys
            .Where(k => k.Device == dev && k.Path.StartsWith(prefix, StringComparison.Ordinal))
            .Select(k => k.Path[prefix.Length..].Split('/')[0])
            .Distinct()
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>A 1024-byte grubenv as grub-editenv writes it.</summary>
    public static byte[] GrubEnv(params string[] assignments)
    {
        var sb = new StringBuilder("# GRUB Environment Block\n");
        foreach (var a in assignments) sb.Append(a).Append('\n');
        while (sb.Length < 1024) sb.Append('#');
        return Encoding.UTF8.GetBytes(sb.ToString());
    }
}
