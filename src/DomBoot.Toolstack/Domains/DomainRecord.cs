using System.Text.Json;
using System.Text.Json.Serialization;
using DomBoot.Formats.Errors;

namespace DomBoot.Toolstack.Domains;

/// <summary>One disk as a running domain holds it (for block-list, and to name the holder of a lock).</summary>
internal sealed record DomainDisk(string Target, string Vdev, string Format, bool Writable, bool Cdrom, string? Identity);

/// <summary>One forwarded port of a domain (network-list).</summary>
internal sealed record DomainForward(string Nic, string Protocol, int HostPort, int GuestPort);

/// <summary>One NIC of a domain (network-list).</summary>
internal sealed record DomainNic(string Id, string Mac, string Model, IReadOnlyList<string> Ips);

/// <summary>
/// domain.json: what the supervisor knows about its domain, written whole (temporary file + rename) by the
/// supervisor only; everyone else reads it. States: starting, running, paused, shutdown, crashed, rebooting,
/// saving, dying (xl list's r, p, s, c letters are derived from these plus QMP).
/// </summary>
internal sealed record DomainRecord
{
    public required string Name { get; init; }
    public required int Id { get; init; }
    public required string Uuid { get; init; }
    public required string State { get; init; }
    public required DateTimeOffset CreatedUtc { get; init; }

    /// <summary>The config as given: path (for messages), the text, -D variables and key=value overrides, so a reboot re-plans the same domain.</summary>
    public string ConfigPath { get; init; } = "";
    public string ConfigText { get; init; } = "";
    public IReadOnlyDictionary<string, string> Variables { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<string> Overrides { get; init; } = [];

    public int SupervisorPid { get; init; }
    public long? SupervisorStartTime { get; init; }
    public int QemuPid { get; init; }
    public long? QemuStartTime { get; init; }

    public int MemoryMiB { get; init; }
    public int Vcpus { get; init; }
    public int Boots { get; init; }

    /// <summary>What the last boot ran: kernel file (or URL, or "firmware"), command line, and the bootloader's entry title if any.</summary>
    public string Kernel { get; init; } = "";
    public string Cmdline { get; init; } = "";
    public string? Entry { get; init; }
    public string? LastShutdownReason { get; init; }
    public IReadOnlyList<DomainDisk> Disks { get; init; } = [];
    public IReadOnlyList<DomainNic> Nics { get; init; } = [];
    public IReadOnlyList<DomainForward> Forwards { get; init; } = [];
    public IReadOnlyList<string> QemuArgv { get; init; } = [];

    /// <summary>The vCPU pinning asked for (index = vCPU; null = all CPUs), kept so a restart pins again.</summary>
    public IReadOnlyList<string?> Pinning { get; init; } = [];

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public const int MaxFileBytes = 4 << 20;

    public static DomainRecord Load(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"{path}: no such file", path);
        if (info.Length > MaxFileBytes) throw new MalformedDataException(path, -1, $"is {info.Length} bytes; expected at most {MaxFileBytes}");
        try
        {
            return JsonSerializer.Deserialize<DomainRecord>(File.ReadAllBytes(path), Json)
                ?? throw new MalformedDataException(path, -1, "is null; expected a domain record");
        }
        catch (JsonException ex)
        {
            throw new MalformedDataException(path, ex.BytePositionInLine ?? -1, "is not a domain record: " + ex.Message);
        }
    }

    /// <summary>Writes whole or not at all: temporary name in the same folder, flush, rename.</summary>
    public void Save(string path)
    {
        var tmp = path + ".tmp-" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(f, this, Json);
            f.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }
}
