using System.Text;
using DomBoot.Boot.Model;
using DomBoot.Formats.Errors;

namespace DomBoot.Boot.Tests.GrubLegacy;

/// <summary>In-memory guest files for config evaluator tests. Keys are "device|path"; device null = DefaultDevice.</summary>
internal sealed class FakeGuestFiles : IGuestFiles
{
    private readonly Dictionary<string, byte[]> _files = [];

    public string DefaultDevice { get; init; } = "(hd0,msdos1)";
    public IReadOnlyList<GuestVolumeInfo> Volumes { get; init; } = [];
    public List<string> Reads { get; } = [];

    public FakeGuestFiles Add(string path, string text, string? device = null) => Add(path, Encoding.UTF8.GetBytes(text), device);

    public FakeGuestFiles Add(string path, byte[] bytes, string? device = null)
    {
        _files[Key(new GuestPath(device, path))] = bytes;
        return this;
    }

    private string Key(GuestPath p) => (p.Device ?? DefaultDevice) + "|" + p.Path;

    public bool FileExists(GuestPath path) => _files.ContainsKey(Key(path));

    public bool DirectoryExists(GuestPath path) => _files.Keys.Any(k => k.StartsWith(Key(path).TrimEnd('/') + "/", StringComparison.Ordinal));

    public long? FileSize(GuestPath path) => _files.TryGetValue(Key(path), out byte[]? b) ? b.Length : null;

    public byte[]? ReadFile(GuestPath path, long maxBytes)
    {
        Reads.Add(path.ToString());
        if (!_files.TryGetValue(Key(path), out byte[]? b)) return null;
        if (b.Length > maxBytes) throw new MalformedDataException(path.Path, -1, $"file larger than {maxBytes} bytes");
        return b;
    }

    public IReadOnlyList<string> ListDirectory(GuestPath path)
    {
        string prefix = Key(path).TrimEnd('/') + "/";
        return [.. _files.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal))
            .Select(k => k[prefix.Length..]).Where(n => !n.Contains('/', StringComparison.Ordinal))];
    }
}
