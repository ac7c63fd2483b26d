using System.Collections;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Filesystems.Fat;

/// <summary>
/// Read-only FAT12/16/32 (Microsoft FAT spec v1.03) with VFAT long names, read the way Linux vfat presents it:
/// long name when its checksum matches the short entry, else the 8.3 name with the NT case bits; lookups are
/// ASCII-case-insensitive (vfat with iocharset=utf8) and match either the long or the short name; trailing dots
/// of a looked-up name are ignored. Every cluster chain is bounded by the cluster count and checked for loops.
/// </summary>
public sealed class FatFileSystem : IFileSystem
{
    public static class Limits
    {
        /// <summary>Spec section 6: a directory holds at most 65536 32-byte entries.</summary>
        public const int MaxDirectoryEntries = 65536;
        public const int MaxDirectoryBytes = MaxDirectoryEntries * FatDirectoryEntry.Size;
        /// <summary>Bytes of the FAT read at once while following a chain.</summary>
        public const int FatWindowBytes = 4096;
    }

    private const uint RootId = 0;

    private readonly IBlockReader _volume;
    private readonly long _fatOffset;
    private readonly long _dataOffset;
    private readonly int _clusterBytes;
    private readonly uint _maxCluster;

    public FatBootSector BootSector { get; }
    public FatType Type => BootSector.Type;
    public string TypeName => "vfat";
    public string? Label { get; }
    public string? Uuid => BootSector.SerialText;
    public FsNode Root { get; }

    /// <summary>The label in the root directory's volume-label entry, if any (blkid's LABEL).</summary>
    public string? RootDirectoryLabel { get; }

    private FatFileSystem(IBlockReader volume, FatBootSector bs)
    {
        _volume = volume;
        BootSector = bs;
        int activeFat = (bs.ExtFlags & 0x80) != 0 ? bs.ExtFlags & 0xF : 0; // FAT32 BPB_ExtFlags: mirroring disabled
        _fatOffset = checked(((long)bs.RsvdSecCnt + (long)activeFat * bs.FatSizeInSectors) * bs.BytsPerSec);
        _dataOffset = checked((long)bs.FirstDataSector * bs.BytsPerSec);
        _clusterBytes = bs.ClusterSizeInBytes;
        _maxCluster = checked(bs.CountOfClusters + 1);
        Root = new FsNode(RootId, FsNodeType.Directory, 0, 0x41ED, 0, 0, 1, null,
            new Handle(bs.Type == FatType.Fat32 ? bs.RootClus : 0, IsFixedRoot: bs.Type != FatType.Fat32, -1, null));

        RootDirectoryLabel = ReadDirectory(Root).Label;
        string? bootLabel = bs.HasVolumeLabel && bs.VolLab.Length > 0 && bs.VolLab != "NO NAME" ? bs.VolLab : null;
        Label = RootDirectoryLabel ?? bootLabel;
    }

    public static bool HasMagic(ReadOnlySpan<byte> firstSector) => FatBootSector.HasMagic(firstSector);

    public static FatFileSystem Open(IBlockReader volume)
    {
        ArgumentNullException.ThrowIfNull(volume);
        var sector = new byte[FatBootSector.Limits.SectorBytes];
        volume.ReadExactly(0, sector);
        var bs = FatBootSector.Parse(sector, 0, volume.Length);
        return new FatFileSystem(volume, bs);
    }

    private sealed record Handle(uint FirstCluster, bool IsFixedRoot, long EntryOffset, FsNode? Parent)
    {
        public Lazy<ClusterRuns>? Runs { get; init; }
    }

    /// <summary>A file's clusters as contiguous runs: run i starts at file cluster index StartIndex[i].</summary>
    private sealed record ClusterRuns(long[] StartIndex, uint[] FirstCluster, long ClusterCount);

    private sealed record DirItem(string Name, string ShortName, FatDirectoryEntry Entry);

    private sealed record DirContents(List<DirItem> Items, string? Label);

    public IReadOnlyList<FsDirEntry> ListDirectory(FsNode directory)
    {
        RequireDirectory(directory);
        var list = new List<FsDirEntry>();
        foreach (var item in ReadDirectory(directory).Items)
            list.Add(new FsDirEntry(item.Name, (ulong)item.Entry.ImageOffset, item.Entry.IsDirectory ? FsNodeType.Directory : FsNodeType.Regular));
        return list;
    }

    public FsNode? Lookup(FsNode directory, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        RequireDirectory(directory);
        string wanted = name.TrimEnd('.'); // vfat_striptail_len
        if (wanted.Length == 0) return null;
        foreach (var item in ReadDirectory(directory).Items)
        {
            if (AsciiEqualsIgnoreCase(item.Name, wanted) || AsciiEqualsIgnoreCase(item.ShortName, wanted))
                return MakeNode(item.Entry, directory);
        }
        return null;
    }

    public FsNode Parent(FsNode directory)
    {
        var h = RequireDirectory(directory);
        return h.Parent ?? Root;
    }

    public int Read(FsNode file, long offset, Span<byte> destination)
    {
        var h = RequireHandle(file);
        if (file.Type != FsNodeType.Regular) throw new ArgumentException("not a regular file", nameof(file));
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (offset >= file.SizeInBytes || destination.IsEmpty) return 0;
        int total = (int)Math.Min(destination.Length, file.SizeInBytes - offset);
        var runs = h.Runs!.Value;
        int done = 0;
        while (done < total)
        {
            long pos = offset + done;
            long clusterIndex = pos / _clusterBytes;
            int inCluster = (int)(pos % _clusterBytes);
            int run = Array.BinarySearch(runs.StartIndex, clusterIndex);
            if (run < 0) run = ~run - 1;
            long runEnd = run + 1 < runs.StartIndex.Length ? runs.StartIndex[run + 1] : runs.ClusterCount;
            long clustersLeft = runEnd - clusterIndex;
            long cluster = runs.FirstCluster[run] + (clusterIndex - runs.StartIndex[run]);
            long bytesLeftInRun = clustersLeft * _clusterBytes - inCluster;
            int n = (int)Math.Min(total - done, bytesLeftInRun);
            _volume.ReadExactly(ClusterOffset((uint)cluster) + inCluster, destination.Slice(done, n));
            done += n;
        }
        return total;
    }

    public string ReadLink(FsNode symlink) => throw new ArgumentException("FAT has no symbolic links", nameof(symlink));

    private static Handle RequireHandle(FsNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return node.Handle as Handle ?? throw new ArgumentException("node does not belong to a FAT filesystem", nameof(node));
    }

    private static Handle RequireDirectory(FsNode node)
    {
        var h = RequireHandle(node);
        if (node.Type != FsNodeType.Directory) throw new ArgumentException("not a directory", nameof(node));
        return h;
    }

    private FsNode MakeNode(FatDirectoryEntry e, FsNode parent)
    {
        uint first = e.FirstCluster;
        long clusterField = e.ImageOffset + FatDirectoryEntry.Offsets.FstClusHI;
        if (e.IsDirectory)
        {
            // ".." of a root child holds 0; a directory entry itself must name a data cluster.
            if (first < 2 || first > _maxCluster)
                throw MalformedDataException.Field("FAT directory entry", clusterField, "first cluster", first, $"2 to {_maxCluster}");
            var h = new Handle(first, false, e.ImageOffset, parent);
            return new FsNode((ulong)e.ImageOffset, FsNodeType.Directory, 0, 0x41ED, 0, 0, 1, e.ModifiedTime, h);
        }

        long size = e.FileSize;
        long dataBytes = (long)BootSector.CountOfClusters * _clusterBytes;
        if (size > dataBytes)
            throw MalformedDataException.Field("FAT directory entry", e.ImageOffset + FatDirectoryEntry.Offsets.FileSize,
                "DIR_FileSize", size, $"at most the {dataBytes}-byte data region");
        if (size > 0 && (first < 2 || first > _maxCluster))
            throw MalformedDataException.Field("FAT directory entry", clusterField, "first cluster", first, $"2 to {_maxCluster}");
        uint mode = (e.Attr & FatDirectoryEntry.Attributes.ReadOnly) != 0 ? 0x816DU : 0x81EDU; // 0555 / 0755 as vfat with umask 022
        var fh = new Handle(first, false, e.ImageOffset, parent);
        fh = fh with { Runs = new Lazy<ClusterRuns>(() => BuildRuns(first, size, e.ImageOffset), LazyThreadSafetyMode.ExecutionAndPublication) };
        return new FsNode((ulong)e.ImageOffset, FsNodeType.Regular, size, mode, 0, 0, 1, e.ModifiedTime, fh);
    }

    private long ClusterOffset(uint cluster)
    {
        long off = checked(_dataOffset + (long)(cluster - 2) * _clusterBytes);
        if (off > _volume.Length - _clusterBytes)
            throw new MalformedDataException("FAT data region", off, $"cluster {cluster} ends past the {_volume.Length}-byte volume");
        return off;
    }

    private ClusterRuns BuildRuns(uint first, long size, long entryOffset)
    {
        long needed = (size + _clusterBytes - 1) / _clusterBytes;
        var starts = new List<long>();
        var clusters = new List<uint>();
        if (needed == 0) return new ClusterRuns([], [], 0);
        var chain = new ChainWalker(this);
        uint c = first;
        uint prev = 0;
        for (long i = 0; i < needed; i++)
        {
            if (i > 0)
            {
                uint next = chain.Next(prev);
                if (IsEndOfChain(next))
                    throw MalformedDataException.Field("FAT directory entry", entryOffset + FatDirectoryEntry.Offsets.FileSize,
                        "DIR_FileSize", size, $"at most {i * (long)_clusterBytes} bytes (its cluster chain ends after {i} clusters)");
                chain.CheckLink(prev, next);
                c = next;
            }
            chain.Visit(c, prev);
            if (i > 0 && c == prev + 1) { prev = c; continue; }
            starts.Add(i);
            clusters.Add(c);
            prev = c;
        }
        return new ClusterRuns(starts.ToArray(), clusters.ToArray(), needed);
    }

    private bool IsEndOfChain(uint value) => BootSector.Type switch
    {
        FatType.Fat12 => value >= 0xFF8,
        FatType.Fat16 => value >= 0xFFF8,
        _ => value >= 0x0FFFFFF8,
    };

    /// <summary>Follows one chain: FAT reads through a small window, links range-checked, clusters visited once.</summary>
    private sealed class ChainWalker(FatFileSystem fs)
    {
        private readonly byte[] _window = new byte[Limits.FatWindowBytes];
        private long _windowStart = -1;
        private int _windowLength;
        private const int SmallSetLimit = 4096;
        private readonly HashSet<uint> _small = [];
        private BitArray? _visited;
        private long _steps;

        public long EntryOffset(uint cluster) => fs.BootSector.Type switch
        {
            FatType.Fat12 => fs._fatOffset + cluster + cluster / 2,
            FatType.Fat16 => fs._fatOffset + 2L * cluster,
            _ => fs._fatOffset + 4L * cluster,
        };

        public uint Next(uint cluster)
        {
            long at = EntryOffset(cluster);
            int width = fs.BootSector.Type == FatType.Fat32 ? 4 : 2;
            Span<byte> b = stackalloc byte[4];
            Fetch(at, b[..width]);
            return fs.BootSector.Type switch
            {
                FatType.Fat12 => (cluster & 1) != 0 ? (uint)(b[0] | b[1] << 8) >> 4 : (uint)(b[0] | b[1] << 8) & 0xFFF,
                FatType.Fat16 => (uint)(b[0] | b[1] << 8),
                _ => (uint)(b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24) & 0x0FFFFFFF,
            };
        }

        /// <summary>A link must name a data cluster: not free (0), reserved (1), bad, or past the cluster count.</summary>
        public void CheckLink(uint from, uint next)
        {
            if (next < 2 || next > fs._maxCluster)
                throw MalformedDataException.Field($"FAT entry for cluster {from}", EntryOffset(from), "next cluster",
                    FieldReader.Hex(next), $"a cluster from 2 to {fs._maxCluster} or end of chain");
        }

        public void Visit(uint cluster, uint from)
        {
            if (++_steps > fs.BootSector.CountOfClusters)
                throw new MalformedDataException($"FAT entry for cluster {from}", EntryOffset(from),
                    $"cluster chain is longer than the {fs.BootSector.CountOfClusters} clusters of the volume");
            // Short chains use a small set; long ones a bitmap over the cluster numbers (at most 32 MiB).
            bool seen;
            if (_visited is null && _small.Count < SmallSetLimit) seen = !_small.Add(cluster);
            else
            {
                if (_visited is null)
                {
                    _visited = new BitArray(checked((int)fs._maxCluster + 1));
                    foreach (var v in _small) _visited[(int)v] = true;
                }
                seen = _visited[(int)cluster];
                _visited[(int)cluster] = true;
            }
            if (seen)
                throw new MalformedDataException($"FAT entry for cluster {from}", EntryOffset(from),
                    $"cluster chain loops back to cluster {cluster}");
        }

        private void Fetch(long at, Span<byte> dest)
        {
            if (_windowStart < 0 || at < _windowStart || at + dest.Length > _windowStart + _windowLength)
            {
                long fatEnd = fs._fatOffset + (long)fs.BootSector.FatSizeInSectors * fs.BootSector.BytsPerSec;
                _windowStart = at - (at - fs._fatOffset) % Limits.FatWindowBytes;
                _windowLength = (int)Math.Min(Limits.FatWindowBytes, fatEnd - _windowStart);
                if (at + dest.Length > _windowStart + _windowLength)
                {
                    // A FAT12 entry straddling the window edge: read it on its own.
                    _windowStart = -1;
                    fs._volume.ReadExactly(at, dest);
                    return;
                }
                fs._volume.ReadExactly(_windowStart, _window.AsSpan(0, _windowLength));
            }
            _window.AsSpan((int)(at - _windowStart), dest.Length).CopyTo(dest);
        }
    }

    /// <summary>The bytes of a directory with the image offset of each of its byte ranges (one per cluster, or one for a fixed root).</summary>
    private (byte[] Bytes, long[] SegmentOffsets, int SegmentBytes) ReadDirectoryBytes(Handle h)
    {
        var bs = BootSector;
        if (h.IsFixedRoot)
        {
            long rootOffset = checked((bs.RsvdSecCnt + (long)bs.NumFATs * bs.FatSizeInSectors) * bs.BytsPerSec);
            int len = bs.RootEntCnt * FatDirectoryEntry.Size;
            var buf = new byte[len];
            _volume.ReadExactly(rootOffset, buf);
            return (buf, [rootOffset], len);
        }

        int maxClusters = Math.Max(1, Limits.MaxDirectoryBytes / _clusterBytes);
        var offsets = new List<long>();
        var chain = new ChainWalker(this);
        uint c = h.FirstCluster;
        uint prev = 0;
        while (true)
        {
            chain.Visit(c, prev);
            if (offsets.Count >= maxClusters)
                throw new MalformedDataException($"FAT entry for cluster {prev}", chain.EntryOffset(prev),
                    $"directory cluster chain is longer than {Limits.MaxDirectoryBytes} bytes");
            offsets.Add(ClusterOffset(c));
            uint next = chain.Next(c);
            if (IsEndOfChain(next)) break;
            chain.CheckLink(c, next);
            prev = c;
            c = next;
        }
        var bytes = new byte[offsets.Count * _clusterBytes];
        for (int i = 0; i < offsets.Count; i++)
            _volume.ReadExactly(offsets[i], bytes.AsSpan(i * _clusterBytes, _clusterBytes));
        return (bytes, offsets.ToArray(), _clusterBytes);
    }

    private DirContents ReadDirectory(FsNode directory)
    {
        var h = (Handle)directory.Handle!;
        bool isRoot = directory.Id == RootId;
        var (bytes, segments, segmentBytes) = ReadDirectoryBytes(h);
        var items = new List<DirItem>();
        string? label = null;

        var lfn = new char[FatLongNameEntry.MaxEntries * FatLongNameEntry.CharsPerEntry];
        int lfnExpected = -1; // next sequence number wanted; 0 once complete; -1 when none pending
        int lfnCount = 0;
        byte lfnSum = 0;

        for (int pos = 0; pos + FatDirectoryEntry.Size <= bytes.Length; pos += FatDirectoryEntry.Size)
        {
            var raw = bytes.AsSpan(pos, FatDirectoryEntry.Size);
            long abs = segments[pos / segmentBytes] + pos % segmentBytes;
            byte first = raw[0];
            if (first == 0x00) break;
            if (first == FatDirectoryEntry.FreeMarker) { lfnExpected = -1; continue; }
            byte attr = raw[FatDirectoryEntry.Offsets.Attr];
            if ((attr & 0x3F) == (byte)FatDirectoryEntry.Attributes.LongName)
            {
                var l = FatLongNameEntry.Parse(raw, abs);
                if (l.IsLast && l.Sequence is >= 1 and <= FatLongNameEntry.MaxEntries)
                {
                    lfnCount = l.Sequence;
                    lfnSum = l.Chksum;
                    Array.Fill(lfn, '\uFFFF');
                    l.Chars.Span.CopyTo(lfn.AsSpan((l.Sequence - 1) * FatLongNameEntry.CharsPerEntry));
                    lfnExpected = l.Sequence - 1;
                }
                else if (!l.IsLast && lfnExpected > 0 && l.Sequence == lfnExpected && l.Chksum == lfnSum)
                {
                    l.Chars.Span.CopyTo(lfn.AsSpan((l.Sequence - 1) * FatLongNameEntry.CharsPerEntry));
                    lfnExpected--;
                }
                else
                {
                    lfnExpected = -1; // an orphan or out-of-order piece: Linux drops the long name
                }
                continue;
            }

            var e = FatDirectoryEntry.Parse(raw, abs);
            bool haveLong = lfnExpected == 0 && FatDirectoryEntry.ShortNameChecksum(e.Name.Span) == lfnSum;
            lfnExpected = -1;
            if ((attr & (byte)FatDirectoryEntry.Attributes.VolumeId) != 0)
            {
                if (isRoot && label is null && e.IsVolumeLabel && e.FirstCluster == 0) label = e.LabelText;
                continue;
            }
            var nameBytes = e.Name.Span;
            if (nameBytes[0] == (byte)'.' && (nameBytes[1..].IndexOfAnyExcept((byte)' ') < 0 || (nameBytes[1] == (byte)'.' && nameBytes[2..].IndexOfAnyExcept((byte)' ') < 0)))
                continue; // "." and ".."
            string shortName = e.ShortName;
            string name = shortName;
            if (haveLong)
            {
                var span = lfn.AsSpan(0, lfnCount * FatLongNameEntry.CharsPerEntry);
                int end = span.IndexOf('\0');
                if (end >= 0) span = span[..end];
                else span = span.TrimEnd('\uFFFF');
                if (span.Length > 0 && span.Length <= 255) name = new string(span);
            }
            if (name.Length == 0) continue;
            items.Add(new DirItem(name, shortName, e));
        }
        return new DirContents(items, label);
    }

    private static bool AsciiEqualsIgnoreCase(string a, string b)
    {
        if (a.Length != b.Length) return false;
        for (int i = 0; i < a.Length; i++)
        {
            char x = a[i], y = b[i];
            if (x == y) continue;
            if (x is >= 'A' and <= 'Z') x = (char)(x + 32);
            if (y is >= 'A' and <= 'Z') y = (char)(y + 32);
            if (x != y) return false;
        }
        return true;
    }
}
