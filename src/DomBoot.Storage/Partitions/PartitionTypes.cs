namespace DomBoot.Storage.Partitions;

/// <summary>Friendly names for partition types, as fdisk/sfdisk print them.</summary>
public static class PartitionTypes
{
    private static readonly Dictionary<byte, string> Mbr = new()
    {
        [0x00] = "Empty", [0x01] = "FAT12", [0x04] = "FAT16 <32M", [0x05] = "Extended", [0x06] = "FAT16",
        [0x07] = "HPFS/NTFS/exFAT", [0x0B] = "W95 FAT32", [0x0C] = "W95 FAT32 (LBA)", [0x0E] = "W95 FAT16 (LBA)",
        [0x0F] = "W95 Ext'd (LBA)", [0x11] = "Hidden FAT12", [0x17] = "Hidden HPFS/NTFS", [0x1B] = "Hidden W95 FAT32",
        [0x27] = "Hidden NTFS WinRE", [0x42] = "SFS", [0x82] = "Linux swap / Solaris", [0x83] = "Linux",
        [0x85] = "Linux extended", [0x8E] = "Linux LVM", [0xA5] = "FreeBSD", [0xA6] = "OpenBSD", [0xA9] = "NetBSD",
        [0xAF] = "HFS / HFS+", [0xCD] = "ISO9660 (CHRP)", [0xDA] = "Non-FS data", [0xEE] = "GPT", [0xEF] = "EFI (FAT-12/16/32)",
        [0xFD] = "Linux raid autodetect",
    };

    private static readonly Dictionary<Guid, string> Gpt = new()
    {
        [new Guid("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")] = "EFI System",
        [new Guid("21686148-6449-6E6F-744E-656564454649")] = "BIOS boot",
        [new Guid("024DEE41-33E7-11D3-9D69-0008C781F39F")] = "MBR partition scheme",
        [new Guid("0FC63DAF-8483-4772-8E79-3D69D8477DE4")] = "Linux filesystem",
        [new Guid("0657FD6D-A4AB-43C4-84E5-0933C84B4F4F")] = "Linux swap",
        [new Guid("E6D6D379-F507-44C2-A23C-238F2A3DF928")] = "Linux LVM",
        [new Guid("A19D880F-05FC-4D3B-A006-743F0F84911E")] = "Linux RAID",
        [new Guid("933AC7E1-2EB4-4F13-B844-0E14E2AEF915")] = "Linux home",
        [new Guid("BC13C2FF-59E6-4262-A352-B275FD6F7172")] = "Linux extended boot",
        [new Guid("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709")] = "Linux root (x86-64)",
        [new Guid("44479540-F297-41B2-9AF7-D131D5F0458A")] = "Linux root (x86)",
        [new Guid("B921B045-1DF0-41C3-AF44-4C6F280D3FAE")] = "Linux root (ARM-64)",
        [new Guid("8484680C-9521-48C6-9C11-B0720656F69E")] = "Linux /usr (x86-64)",
        [new Guid("8DA63339-0007-60C0-C436-083AC8230908")] = "Linux reserved",
        [new Guid("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7")] = "Microsoft basic data",
        [new Guid("E3C9E316-0B5C-4DB8-817D-F92DF00215AE")] = "Microsoft reserved",
        [new Guid("DE94BBA4-06D1-4D40-A16A-BFD50179D6AC")] = "Windows recovery environment",
        [new Guid("48465300-0000-11AA-AA11-00306543ECAC")] = "Apple HFS/HFS+",
        [new Guid("516E7CB4-6ECF-11D6-8FF8-00022D09712B")] = "FreeBSD data",
        [new Guid("83BD6B9D-7F41-11DC-BE0B-001560B84F0F")] = "FreeBSD boot",
    };

    public static string MbrName(byte type) => Mbr.TryGetValue(type, out var n) ? n : "Unknown";

    public static string GptName(Guid type) => Gpt.TryGetValue(type, out var n) ? n : "Unknown";

    /// <summary>GPT attribute bits as sfdisk prints them: "RequiredPartition LegacyBIOSBootable GUID:60,63".</summary>
    public static string GptAttributeText(ulong attributes)
    {
        var parts = new List<string>();
        if ((attributes & 1) != 0) parts.Add("RequiredPartition");
        if ((attributes & 2) != 0) parts.Add("NoBlockIOProtocol");
        if ((attributes & 4) != 0) parts.Add("LegacyBIOSBootable");
        var guidBits = new List<string>();
        for (int bit = 48; bit < 64; bit++)
            if ((attributes & (1UL << bit)) != 0) guidBits.Add(bit.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (guidBits.Count > 0) parts.Add("GUID:" + string.Join(',', guidBits));
        return string.Join(' ', parts);
    }
}
