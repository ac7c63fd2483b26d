using DomBoot.Formats.Binary;
using DomBoot.Storage.Images;

namespace DomBoot.Storage.Partitions;

public enum VolumeKind { WholeDisk, Primary, Extended, Logical, Gpt }

/// <summary>
/// One volume of a disk: a partition, or the whole disk when there is no partition table.
/// <see cref="Index"/> is the partition number Linux and GRUB use (1-4 primaries, 5+ logicals, GPT slot+1; 0 for the whole disk).
/// </summary>
public sealed record Volume(
    int Index,
    VolumeKind Kind,
    long StartInBytes,
    long SizeInBytes,
    byte? MbrType,
    Guid? GptType,
    string TypeName,
    string? Name,
    bool Active,
    ulong GptAttributes,
    string? PartUuid,
    string LinuxName,
    string GrubName)
{
    /// <summary>The type as sfdisk --json prints it: "83" for MBR, the upper-case GUID for GPT.</summary>
    public string TypeCode => MbrType is { } b ? b.ToString("x", System.Globalization.CultureInfo.InvariantCulture)
        : GptType is { } g ? g.ToString().ToUpperInvariant() : "";

    /// <summary>Flags in words: "active" for MBR, sfdisk's attribute names for GPT.</summary>
    public string Flags => Kind == VolumeKind.Gpt ? PartitionTypes.GptAttributeText(GptAttributes) : Active ? "active" : "";

    /// <summary>The volume's bytes as their own reader.</summary>
    public IBlockReader Open(IBlockReader disk) => new SliceBlockReader(disk, StartInBytes, SizeInBytes);
}

/// <summary>A disk's partitioning: the scheme ("dos", "gpt" or "none", as blkid's PTTYPE) and its volumes in number order.</summary>
public sealed record PartitionLayout(
    string Scheme,
    int SectorSize,
    string? DiskId,
    bool UsedBackupGpt,
    IReadOnlyList<Volume> Volumes);

/// <summary>Names of a disk as the guest sees it.</summary>
public static class DiskNames
{
    /// <summary>"vda", "vdb", ..., "vdz", "vdaa" (Linux's sd_format_disk_name scheme) for 0, 1, ...</summary>
    public static string Linux(int diskIndex, string prefix = "vd")
    {
        ArgumentOutOfRangeException.ThrowIfNegative(diskIndex);
        var letters = new Stack<char>();
        int n = diskIndex;
        do
        {
            letters.Push((char)('a' + n % 26));
            n = n / 26 - 1;
        } while (n >= 0);
        return prefix + new string(letters.ToArray());
    }

    public static string Grub(int diskIndex) => $"hd{diskIndex}";
}
