using System.Text;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Filesystems.Iso9660;

/// <summary>
/// Read-only ISO9660 (ECMA-119) read the way Linux isofs presents it by default: Rock Ridge names, symlinks and
/// modes when the root carries a SUSP "SP" entry; otherwise the Joliet tree (UCS-2, case-insensitive lookup);
/// otherwise plain names mapped to lower case with ";1" dropped. Directories are walked through their records
/// (not the path table); multi-extent files are concatenated; relocated deep directories (RRIP CL/RE) are put
/// back where they belong. The El Torito boot catalog is listed in <see cref="BootCatalog"/>.
/// </summary>
public sealed class Iso9660FileSystem : IFileSystem
{
    public static class Limits
    {
        /// <summary>Largest directory read (a 16 MiB directory holds over 100,000 records).</summary>
        public const int MaxDirectoryBytes = 16 << 20;
        /// <summary>Sections of one multi-extent file (each below 4 GiB): 1024 allow files of about 4 TiB.</summary>
        public const int MaxExtentsPerFile = 1024;
    }

    public enum NameMode { RockRidge, Joliet, Plain }

    private readonly IBlockReader _volume;
    private readonly int _blockSize;
    private readonly long _volumeBytes;
    private readonly int _lenSkp;
    private readonly Lazy<IReadOnlyList<ElToritoBootEntry>> _bootCatalog;

    public IReadOnlyList<Iso9660VolumeDescriptor> VolumeDescriptors { get; }
    public Iso9660VolumeDescriptor Primary { get; }
    /// <summary>The Joliet supplementary descriptor, if any.</summary>
    public Iso9660VolumeDescriptor? Joliet { get; }
    public Iso9660VolumeDescriptor? BootRecord { get; }
    public NameMode Names { get; }
    public string TypeName => "iso9660";
    public string? Label { get; }
    public string? Uuid { get; }
    public FsNode Root { get; }

    /// <summary>The El Torito boot images (empty without an "EL TORITO SPECIFICATION" boot record); parsed on first use.</summary>
    public IReadOnlyList<ElToritoBootEntry> BootCatalog => _bootCatalog.Value;

    private sealed record Extent(long Offset, long Length);

    private sealed record Handle(Extent[] Extents, FsNode? Parent, string? SymlinkTarget);

    private sealed record Item(string Name, FsNodeType Type, Iso9660DirectoryRecord First, Extent[] Extents, long Size, Iso9660RockRidge? Rock);

    private Iso9660FileSystem(IBlockReader volume, List<Iso9660VolumeDescriptor> descriptors)
    {
        _volume = volume;
        VolumeDescriptors = descriptors;
        Primary = descriptors.FirstOrDefault(d => d.Type == Iso9660VolumeDescriptorType.Primary)
            ?? throw new MalformedDataException("ISO9660 volume descriptor set", (long)Iso9660VolumeDescriptor.FirstSector * Iso9660VolumeDescriptor.Size,
                "has no primary volume descriptor");
        Joliet = descriptors.FirstOrDefault(d => d.Type == Iso9660VolumeDescriptorType.Supplementary && d.JolietLevel > 0);
        BootRecord = descriptors.FirstOrDefault(d => d.Type == Iso9660VolumeDescriptorType.BootRecord);
        _blockSize = Primary.LogicalBlockSize;
        _volumeBytes = (long)Primary.VolumeSpaceSize * _blockSize;

        var pvdRoot = Primary.RootDirectoryRecord!;
        var rootExtent = DirectoryExtent(pvdRoot);
        // The root's "." record is the first record of the root directory; its System Use field holds "SP".
        var first = new byte[Math.Min(_blockSize, rootExtent.Length)];
        _volume.ReadExactly(rootExtent.Offset, first);
        var dot = Iso9660DirectoryRecord.Parse(first, rootExtent.Offset);
        if (Iso9660RockRidge.TryReadSp(dot.SystemUse.Span, out int lenSkp))
        {
            Names = NameMode.RockRidge;
            _lenSkp = lenSkp;
        }
        else
        {
            Names = Joliet is not null ? NameMode.Joliet : NameMode.Plain;
        }
        var rootRecord = Names == NameMode.Joliet ? Joliet!.RootDirectoryRecord! : pvdRoot;
        var ext = DirectoryExtent(rootRecord);
        Root = new FsNode((ulong)rootRecord.ImageOffset, FsNodeType.Directory, ext.Length, 0x416D, 0, 0, 2, rootRecord.RecordingTime,
            new Handle([ext], null, null));

        Label = MakeLabel();
        Uuid = UuidFrom(Primary.VolumeModificationDateAndTime.Span) ?? UuidFrom(Primary.VolumeCreationDateAndTime.Span);
        _bootCatalog = new Lazy<IReadOnlyList<ElToritoBootEntry>>(ReadBootCatalog, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>Probe on the first descriptor (image bytes 32768..34815).</summary>
    public static bool HasMagic(ReadOnlySpan<byte> firstVolumeDescriptor) => Iso9660VolumeDescriptor.HasMagic(firstVolumeDescriptor);

    public static Iso9660FileSystem Open(IBlockReader volume)
    {
        ArgumentNullException.ThrowIfNull(volume);
        var list = new List<Iso9660VolumeDescriptor>();
        var buf = new byte[Iso9660VolumeDescriptor.Size];
        for (int i = 0; ; i++)
        {
            long at = (long)(Iso9660VolumeDescriptor.FirstSector + i) * Iso9660VolumeDescriptor.Size;
            if (i >= Iso9660VolumeDescriptor.Limits.MaxDescriptors)
                throw new MalformedDataException("ISO9660 volume descriptor set", at,
                    $"no terminator within {Iso9660VolumeDescriptor.Limits.MaxDescriptors} descriptors");
            volume.ReadExactly(at, buf);
            var d = Iso9660VolumeDescriptor.Parse(buf, at);
            list.Add(d);
            if (d.Type == Iso9660VolumeDescriptorType.Terminator) break;
        }
        return new Iso9660FileSystem(volume, list);
    }

    public IReadOnlyList<FsDirEntry> ListDirectory(FsNode directory)
    {
        var h = RequireDirectory(directory);
        return ReadDirectory(h).Select(i => new FsDirEntry(i.Name, (ulong)i.First.ImageOffset, i.Type)).ToList();
    }

    public FsNode? Lookup(FsNode directory, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var h = RequireDirectory(directory);
        bool relaxed = Names == NameMode.Joliet; // isofs: check=relaxed is the default for Joliet only
        string wanted = relaxed ? name.TrimEnd('.') : name;
        if (wanted.Length == 0) return null;
        foreach (var item in ReadDirectory(h))
        {
            bool match = relaxed ? AsciiEqualsIgnoreCase(item.Name.TrimEnd('.'), wanted) : string.Equals(item.Name, wanted, StringComparison.Ordinal);
            if (match) return MakeNode(item, directory);
        }
        return null;
    }

    public FsNode Parent(FsNode directory) => RequireDirectory(directory).Parent ?? Root;

    public int Read(FsNode file, long offset, Span<byte> destination)
    {
        var h = RequireHandle(file);
        if (file.Type != FsNodeType.Regular) throw new ArgumentException("not a regular file", nameof(file));
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (offset >= file.SizeInBytes || destination.IsEmpty) return 0;
        int total = (int)Math.Min(destination.Length, file.SizeInBytes - offset);
        int done = 0;
        long extentStart = 0;
        foreach (var e in h.Extents)
        {
            if (done == total) break;
            long pos = offset + done;
            if (pos < extentStart + e.Length)
            {
                long within = pos - extentStart;
                int n = (int)Math.Min(total - done, e.Length - within);
                _volume.ReadExactly(e.Offset + within, destination.Slice(done, n));
                done += n;
            }
            extentStart += e.Length;
        }
        return done;
    }

    public string ReadLink(FsNode symlink)
    {
        var h = RequireHandle(symlink);
        if (symlink.Type != FsNodeType.Symlink || h.SymlinkTarget is null) throw new ArgumentException("not a symbolic link", nameof(symlink));
        return h.SymlinkTarget;
    }

    private static Handle RequireHandle(FsNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return node.Handle as Handle ?? throw new ArgumentException("node does not belong to an ISO9660 filesystem", nameof(node));
    }

    private static Handle RequireDirectory(FsNode node)
    {
        var h = RequireHandle(node);
        if (node.Type != FsNodeType.Directory) throw new ArgumentException("not a directory", nameof(node));
        return h;
    }

    private static FsNode MakeNode(Item item, FsNode parent)
    {
        var rock = item.Rock;
        uint mode = rock?.Mode is uint m ? m & 0xFFFF : item.Type == FsNodeType.Directory ? 0x416DU : 0x816DU; // 0555 without Rock Ridge
        var h = new Handle(item.Extents, parent, item.Type == FsNodeType.Symlink ? rock?.SymlinkTarget ?? "" : null);
        return new FsNode((ulong)item.First.ImageOffset, item.Type, item.Size, mode, rock?.Uid ?? 0, rock?.Gid ?? 0,
            rock?.Links ?? (item.Type == FsNodeType.Directory ? 2U : 1U), rock?.ModifyTime ?? item.First.RecordingTime, h);
    }

    /// <summary>Where a record's data lives, checked against the volume (ECMA-119 9.1.3, 9.1.4; extended attribute blocks skipped).</summary>
    private Extent DataExtent(Iso9660DirectoryRecord r, uint? lbaOverride = null)
    {
        long offset = checked(((long)(lbaOverride ?? r.LocationOfExtent) + r.ExtendedAttributeRecordLength) * _blockSize);
        long end = checked(offset + r.DataLength);
        if (end > _volumeBytes)
            throw MalformedDataException.Field("ISO9660 directory record", r.ImageOffset + Iso9660DirectoryRecord.Offsets.DataLength,
                "extent end (location + data length)", end, $"within the {_volumeBytes}-byte volume");
        return new Extent(offset, r.DataLength);
    }

    private Extent DirectoryExtent(Iso9660DirectoryRecord r)
    {
        var e = DataExtent(r);
        if (e.Length > Limits.MaxDirectoryBytes)
            throw MalformedDataException.Field("ISO9660 directory record", r.ImageOffset + Iso9660DirectoryRecord.Offsets.DataLength,
                "directory data length", e.Length, $"at most {Limits.MaxDirectoryBytes}");
        if (e.Length == 0)
            throw MalformedDataException.Field("ISO9660 directory record", r.ImageOffset + Iso9660DirectoryRecord.Offsets.DataLength,
                "directory data length", 0, "at least one record");
        return e;
    }

    private List<Item> ReadDirectory(Handle h)
    {
        var ext = h.Extents[0];
        var bytes = new byte[ext.Length];
        _volume.ReadExactly(ext.Offset, bytes);
        var items = new List<Item>();
        List<Iso9660DirectoryRecord>? pending = null;
        int pos = 0;
        while (pos < bytes.Length)
        {
            if (bytes[pos] == 0)
            {
                pos = (pos / _blockSize + 1) * _blockSize; // 6.8.1.1: records do not cross a block; zeros pad to its end
                continue;
            }
            var rec = Iso9660DirectoryRecord.Parse(bytes.AsSpan(pos), ext.Offset + pos);
            pos += rec.Length;
            if (rec.FileUnitSize != 0 || rec.InterleaveGapSize != 0)
                throw new UnsupportedFeatureException($"ISO9660 directory record at offset 0x{rec.ImageOffset:X}: interleaved files are not supported");
            if (pending is not null || rec.IsMultiExtent)
            {
                pending ??= [];
                if (pending.Count >= Limits.MaxExtentsPerFile)
                    throw MalformedDataException.Field("ISO9660 directory record", rec.ImageOffset, "multi-extent sections", pending.Count + 1, $"at most {Limits.MaxExtentsPerFile}");
                pending.Add(rec);
                if (rec.IsMultiExtent) continue;
                var group = pending;
                pending = null;
                AddItem(items, group);
                continue;
            }
            AddItem(items, [rec]);
        }
        if (pending is not null)
            throw new MalformedDataException("ISO9660 directory record", pending[^1].ImageOffset + Iso9660DirectoryRecord.Offsets.FileFlags,
                "multi-extent flag set on the directory's last record");
        return items;
    }

    private void AddItem(List<Item> items, List<Iso9660DirectoryRecord> records)
    {
        var first = records[0];
        if (first.IsSelf || first.IsParent) return;
        if ((first.FileFlags & Iso9660DirectoryRecord.FileFlagBits.AssociatedFile) != 0) return; // isofs hides associated files
        Iso9660RockRidge? rock = null;
        if (Names == NameMode.RockRidge)
        {
            long suOffset = first.ImageOffset + first.Length - first.SystemUse.Length;
            rock = Iso9660RockRidge.Parse(first.SystemUse.Span, suOffset, _lenSkp, _volume, _blockSize, _volumeBytes);
            if (rock.Relocated) return; // listed through its CL placeholder instead
        }

        string name = Names switch
        {
            NameMode.Joliet => JolietName(first.FileIdentifier.Span),
            _ => rock?.Name ?? PlainName(first.FileIdentifier.Span),
        };
        if (name.Length == 0 || name is "." or ".." || name.Contains('/')) return;

        FsNodeType type;
        Extent[] extents;
        long size;
        if (rock?.ChildLink is uint cl)
        {
            // A deep directory moved elsewhere (RRIP 4.1.5.1): its own "." record gives its size.
            long at = checked((long)cl * _blockSize);
            if (at + Iso9660DirectoryRecord.Limits.MinLength > _volumeBytes)
                throw MalformedDataException.Field("RRIP CL entry", first.ImageOffset, "child link block", cl, $"within the {_volumeBytes}-byte volume");
            var head = new byte[Math.Min(_blockSize, 255)];
            _volume.ReadExactly(at, head);
            var dot = Iso9660DirectoryRecord.Parse(head, at);
            extents = [DirectoryExtent(dot)];
            type = FsNodeType.Directory;
            size = extents[0].Length;
        }
        else if (first.IsDirectory)
        {
            extents = [DirectoryExtent(first)];
            type = FsNodeType.Directory;
            size = extents[0].Length;
        }
        else
        {
            extents = new Extent[records.Count];
            size = 0;
            for (int i = 0; i < records.Count; i++)
            {
                extents[i] = DataExtent(records[i]);
                size = checked(size + extents[i].Length);
            }
            type = FsNodeType.Regular;
        }
        if (rock?.Mode is uint mode && type != FsNodeType.Directory)
        {
            type = (mode & 0xF000) switch
            {
                0xA000 => FsNodeType.Symlink,
                0x8000 => FsNodeType.Regular,
                0x2000 => FsNodeType.CharDevice,
                0x6000 => FsNodeType.BlockDevice,
                0x1000 => FsNodeType.Fifo,
                0xC000 => FsNodeType.Socket,
                _ => type,
            };
        }
        else if (rock?.SymlinkTarget is not null && type != FsNodeType.Directory)
        {
            type = FsNodeType.Symlink;
        }
        if (type == FsNodeType.Symlink) size = rock?.SymlinkTarget is { } t ? Encoding.UTF8.GetByteCount(t) : 0;
        else if (type != FsNodeType.Regular && type != FsNodeType.Directory) size = 0;
        items.Add(new Item(name, type, first, extents, size, rock));
    }

    /// <summary>isofs map=normal: A-Z to lower case, a final ";1" (or ".;1") dropped, other ';' become '.'.</summary>
    internal static string PlainName(ReadOnlySpan<byte> id)
    {
        var sb = new StringBuilder(id.Length);
        for (int i = 0; i < id.Length; i++)
        {
            byte c = id[i];
            if (c == 0) break;
            if (c is >= (byte)'A' and <= (byte)'Z') c |= 0x20;
            if (c == '.' && i == id.Length - 3 && id[i + 1] == ';' && id[i + 2] == '1') break;
            if (c == ';' && i == id.Length - 2 && id[i + 1] == '1') break;
            if (c is (byte)';' or (byte)'/') c = (byte)'.';
            sb.Append((char)c);
        }
        return sb.ToString();
    }

    /// <summary>Joliet: UCS-2 big-endian, a final ";1" and trailing dots dropped (as isofs get_joliet_filename).</summary>
    internal static string JolietName(ReadOnlySpan<byte> id)
    {
        var s = Encoding.BigEndianUnicode.GetString(id[..(id.Length & ~1)]);
        int nul = s.IndexOf('\0', StringComparison.Ordinal);
        if (nul >= 0) s = s[..nul];
        if (s.Length > 2 && s.EndsWith(";1", StringComparison.Ordinal)) s = s[..^2];
        while (s.Length >= 2 && s[^1] == '.') s = s[..^1];
        return s;
    }

    private IReadOnlyList<ElToritoBootEntry> ReadBootCatalog()
    {
        if (BootRecord is null || BootRecord.BootSystemIdentifier != "EL TORITO SPECIFICATION") return [];
        long at = checked((long)BootRecord.BootCatalogPointer * 2048); // El Torito counts 2048-byte CD sectors
        long limit = Math.Min(_volumeBytes, _volume.Length);
        if (at + ElToritoBootEntry.EntrySize > limit)
            throw MalformedDataException.Field("El Torito boot record", BootRecord.ImageOffset + Iso9660VolumeDescriptor.Offsets.BootCatalogPointer,
                "boot catalog pointer", BootRecord.BootCatalogPointer, $"a sector within the {limit}-byte volume");
        var bytes = new byte[(int)Math.Min(ElToritoBootEntry.Limits.MaxCatalogBytes, limit - at)];
        _volume.ReadExactly(at, bytes);
        return ElToritoBootEntry.ParseCatalog(bytes, at);
    }

    /// <summary>blkid: the Joliet label merged with the PVD's longer ASCII one where they agree, else Joliet's, else the PVD's.</summary>
    private string? MakeLabel()
    {
        var ascii = Primary.VolumeIdentifierBytes.Span;
        string? label = null;
        if (Joliet is not null)
            label = MergeJolietLabel(Joliet.VolumeIdentifierBytes.Span, ascii) ?? Joliet.VolumeIdentifier;
        label ??= Encoding.Latin1.GetString(ascii);
        label = label.TrimEnd().TrimEnd('\0').TrimEnd();
        return label.Length == 0 ? null : label;
    }

    private static string? MergeJolietLabel(ReadOnlySpan<byte> utf16, ReadOnlySpan<byte> ascii)
    {
        int len = Math.Min(utf16.Length, ascii.Length);
        var sb = new StringBuilder();
        int a = 0, u = 0;
        for (; u + 1 < len && a < len; a++, u += 2)
        {
            if (utf16[u] is >= 0xD8 and <= 0xDB && u + 3 < len && utf16[u + 2] is >= 0xDC and <= 0xDF)
            {
                sb.Append((char)(utf16[u] << 8 | utf16[u + 1]));
                u += 2;
            }
            char uc = (char)(utf16[u] << 8 | utf16[u + 1]);
            byte ac = ascii[a];
            if (ac == '_') sb.Append(uc);
            else if (utf16[u] == 0 && utf16[u + 1] == '_') sb.Append((char)ac);
            else if (utf16[u] == 0 && AsciiUpper(ac) == AsciiUpper(utf16[u + 1])) sb.Append(ac is >= (byte)'A' and <= (byte)'Z' ? (char)utf16[u + 1] : (char)ac);
            else return null;
        }
        for (; a < ascii.Length; a++) sb.Append((char)ascii[a]);
        return sb.ToString();
    }

    private static byte AsciiUpper(byte b) => b is >= (byte)'a' and <= (byte)'z' ? (byte)(b - 32) : b;

    /// <summary>blkid's iso9660 UUID: the date digits as "YYYY-MM-DD-HH-MM-SS-CC"; none when all zero.</summary>
    private static string? UuidFrom(ReadOnlySpan<byte> date)
    {
        if (date.Length < 17) return null;
        if (date[..16].IndexOfAnyExcept((byte)'0') < 0 && date[16] == 0) return null;
        var sb = new StringBuilder(22);
        for (int i = 0; i < 16; i++)
        {
            if (i is 4 or 6 or 8 or 10 or 12 or 14) sb.Append('-');
            sb.Append((char)date[i]);
        }
        return sb.ToString();
    }

    private static bool AsciiEqualsIgnoreCase(string a, string b)
    {
        if (a.Length != b.Length) return false;
        for (int i = 0; i < a.Length; i++)
        {
            char x = a[i], y = b[i];
            if (x is >= 'A' and <= 'Z') x = (char)(x + 32);
            if (y is >= 'A' and <= 'Z') y = (char)(y + 32);
            if (x != y) return false;
        }
        return true;
    }
}
