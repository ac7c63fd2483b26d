using System.Buffers.Binary;
using System.IO.Compression;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Images;

/// <summary>
/// The guest-visible disk of a qcow2 image (QEMU docs/interop/qcow2.txt, "Cluster mapping"): L1/L2 lookup,
/// zero and unallocated clusters, zlib-compressed clusters, extended L2 entries (subclusters) and backing files.
/// Thread-safe: the L1 table is immutable, L2 tables sit in a small locked cache, file reads are positional.
/// </summary>
public sealed class Qcow2BlockReader : IBlockReader, IDisposable
{
    public static class Limits
    {
        /// <summary>Backing chain length QEMU would also find unreasonable.</summary>
        public const int MaxBackingDepth = 16;
        public const int MaxCachedL2Tables = 16;
        public const long MaxL2CacheBytes = 8L << 20;
    }

    private const ulong L1OffsetMask = 0x00FF_FFFF_FFFF_FE00UL;
    private const ulong L2OffsetMask = 0x00FF_FFFF_FFFF_FE00UL;
    private const ulong L2Compressed = 1UL << 62;
    private const ulong L2ZeroFlag = 1UL;
    private const int Subclusters = 32;

    private readonly FileBlockReader _file;
    private readonly ulong[] _l1;
    private readonly IBlockReader? _backing;
    private readonly int _clusterBits;
    private readonly int _clusterSize;
    private readonly int _l2Bits;
    private readonly int _l2Capacity;
    private readonly Lock _l2Lock = new();
    private readonly LinkedList<(long Offset, byte[] Table)> _l2Lru = new();
    private readonly Dictionary<long, LinkedListNode<(long Offset, byte[] Table)>> _l2Map = [];
    private readonly Lock _compressedLock = new();
    private (long Offset, byte[]? Data) _lastCompressed = (-1, null);
    private long _clustersRead;

    public Qcow2Header Header { get; }
    public string Path { get; }
    public long Length => Header.Size;

    /// <summary>The backing image's path as resolved, or null.</summary>
    public string? BackingPath { get; }

    /// <summary>The backing image, if any (a <see cref="Qcow2BlockReader"/> or a <see cref="FileBlockReader"/>).</summary>
    public IBlockReader? Backing => _backing;

    /// <summary>Host clusters fetched from this file so far (L2 tables, data and compressed clusters); backing files count their own.</summary>
    public long ClustersRead => Interlocked.Read(ref _clustersRead);

    private Qcow2BlockReader(FileBlockReader file, Qcow2Header header, ulong[] l1, IBlockReader? backing, string? backingPath)
    {
        _file = file;
        Header = header;
        Path = file.Path;
        _l1 = l1;
        _backing = backing;
        BackingPath = backingPath;
        _clusterBits = header.ClusterBits;
        _clusterSize = header.ClusterSize;
        _l2Bits = header.L2Bits;
        _l2Capacity = (int)Math.Max(1, Math.Min(Limits.MaxCachedL2Tables, Limits.MaxL2CacheBytes / _clusterSize));
    }

    /// <summary>Opens a qcow2 image and its backing chain.</summary>
    public static Qcow2BlockReader Open(string path) => Open(path, 0, new HashSet<string>(StringComparer.Ordinal));

    internal static Qcow2BlockReader Open(string path, int depth, HashSet<string> visited)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (!visited.Add(full))
            throw new MalformedDataException("qcow2 backing chain", Qcow2Header.Offsets.BackingFileOffset,
                $"loops back to {Quote.Text(full)}");
        var file = new FileBlockReader(full);
        try
        {
            var header = ReadHeader(file);
            var l1 = ReadL1(file, header);
            IBlockReader? backing = null;
            string? backingPath = null;
            if (header.BackingFileName is { } name)
            {
                if (depth + 1 >= Limits.MaxBackingDepth)
                    throw new MalformedDataException("qcow2 backing chain", (long)header.BackingFileOffset,
                        $"is deeper than {Limits.MaxBackingDepth} images at {Quote.Text(full)}");
                backingPath = ResolveBacking(full, name, (long)header.BackingFileOffset);
                if (visited.Contains(backingPath))
                    throw new MalformedDataException($"qcow2 image {Quote.Text(System.IO.Path.GetFileName(full))}", (long)header.BackingFileOffset,
                        $"backing file {Quote.Text(name)} loops back to {Quote.Text(backingPath)}");
                backing = OpenBacking(backingPath, header.BackingFormat, depth + 1, visited);
            }
            return new Qcow2BlockReader(file, header, l1, backing, backingPath);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static Qcow2Header ReadHeader(FileBlockReader file)
    {
        var head = new byte[(int)Math.Min(file.Length, 4096)];
        file.ReadExactly(0, head);
        int bits = Qcow2Header.PeekClusterBits(head, 0);
        if (bits is >= Qcow2Header.Limits.MinClusterBits and <= Qcow2Header.Limits.MaxClusterBits && (1L << bits) > head.Length
            && file.Length > head.Length)
        {
            head = new byte[(int)Math.Min(file.Length, 1L << bits)];
            file.ReadExactly(0, head);
        }
        return Qcow2Header.Parse(head, 0);
    }

    private static ulong[] ReadL1(FileBlockReader file, Qcow2Header header)
    {
        long bytes = (long)header.L1Size * 8;
        if (header.L1TableOffset > file.Length || bytes > file.Length - header.L1TableOffset)
            throw new MalformedDataException("qcow2 header", Qcow2Header.Offsets.L1TableOffset,
                $"L1 table of {header.L1Size} entries at 0x{header.L1TableOffset:X} extends past the end of the {file.Length}-byte file");
        var raw = new byte[bytes];
        file.ReadExactly(header.L1TableOffset, raw);
        var l1 = new ulong[header.L1Size];
        for (int i = 0; i < l1.Length; i++) l1[i] = BinaryPrimitives.ReadUInt64BigEndian(raw.AsSpan(i * 8));
        return l1;
    }

    /// <summary>QEMU's rule: an absolute name is used as is; a relative one is relative to the directory of the image naming it.</summary>
    private static string ResolveBacking(string imagePath, string name, long nameOffset)
    {
        if (name.StartsWith("json:", StringComparison.Ordinal) || name.Contains("://", StringComparison.Ordinal))
            throw new UnsupportedFeatureException(
                $"qcow2 header at offset 0x{nameOffset:X}: backing file {Quote.Text(name)} uses a protocol; only local files are supported");
        if (name.StartsWith("file:", StringComparison.Ordinal)) name = name["file:".Length..];
        if (System.IO.Path.IsPathRooted(name)) return System.IO.Path.GetFullPath(name);
        string dir = System.IO.Path.GetDirectoryName(imagePath) ?? ".";
        return System.IO.Path.GetFullPath(System.IO.Path.Combine(dir, name));
    }

    private static IBlockReader OpenBacking(string path, string? format, int depth, HashSet<string> visited)
    {
        if (format is null)
        {
            using var probe = new FileBlockReader(path);
            format = IsQcow2(probe) ? "qcow2" : "raw";
        }
        return format switch
        {
            "qcow2" => Open(path, depth, visited),
            "raw" => OpenRaw(path, visited),
            _ => throw new UnsupportedFeatureException($"backing file {Quote.Text(path)} has format {Quote.Text(format)}; only qcow2 and raw are supported"),
        };
    }

    private static FileBlockReader OpenRaw(string path, HashSet<string> visited)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (!visited.Add(full))
            throw new MalformedDataException("qcow2 backing chain", Qcow2Header.Offsets.BackingFileOffset, $"loops back to {Quote.Text(full)}");
        return new FileBlockReader(full);
    }

    internal static bool IsQcow2(IBlockReader reader)
    {
        if (reader.Length < 4) return false;
        Span<byte> magic = stackalloc byte[4];
        reader.ReadExactly(0, magic);
        return BinaryPrimitives.ReadUInt32BigEndian(magic) == Qcow2Header.Magic;
    }

    public void ReadExactly(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset > Length || destination.Length > Length - offset)
            throw new TruncatedDataException($"qcow2 image {System.IO.Path.GetFileName(Path)}", Math.Max(0, offset), destination.Length, Length - offset);
        while (!destination.IsEmpty)
        {
            long vcluster = offset >> _clusterBits;
            int inCluster = (int)(offset & (_clusterSize - 1));
            int chunk = Math.Min(_clusterSize - inCluster, destination.Length);
            var (entry, bitmap, entryOffset) = LookupL2(vcluster);
            if (!Header.ExtendedL2)
            {
                int done = ReadStandard(vcluster, entry, entryOffset, offset, inCluster, destination, chunk);
                offset += done;
                destination = destination[done..];
                continue;
            }
            ReadExtended(entry, bitmap, entryOffset, offset, inCluster, destination[..chunk]);
            offset += chunk;
            destination = destination[chunk..];
        }
    }

    /// <summary>Reads one cluster's part of a request, or more when following clusters are host-contiguous; returns bytes done.</summary>
    private int ReadStandard(long vcluster, ulong entry, long entryOffset, long offset, int inCluster, Span<byte> destination, int chunk)
    {
        if ((entry & L2Compressed) != 0)
        {
            if (inCluster == 0 && chunk == _clusterSize)
            {
                // A whole cluster (sequential reads): inflate straight into the caller's buffer, no cache copy.
                Inflate(entry, entryOffset, destination[.._clusterSize]);
                return chunk;
            }
            var data = Decompress(entry, entryOffset);
            data.AsSpan(inCluster, chunk).CopyTo(destination);
            return chunk;
        }
        if ((entry & L2ZeroFlag) != 0)
        {
            destination[..chunk].Clear();
            return chunk;
        }
        long host = (long)(entry & L2OffsetMask);
        if (host == 0)
        {
            ReadBacking(offset, destination[..chunk]);
            return chunk;
        }
        CheckDataCluster(host, entryOffset);
        // Merge following clusters that sit right after this one in the file: one pread for a sequential run.
        int total = chunk;
        long nextHost = host + _clusterSize;
        long nextV = vcluster + 1;
        while (total < destination.Length)
        {
            var (e2, _, eo2) = LookupL2(nextV);
            if ((e2 & (L2Compressed | L2ZeroFlag)) != 0 || (long)(e2 & L2OffsetMask) != nextHost) break;
            CheckDataCluster(nextHost, eo2);
            total += Math.Min(_clusterSize, destination.Length - total);
            nextHost += _clusterSize;
            nextV++;
        }
        ReadHost(host + inCluster, destination[..total], entryOffset);
        Interlocked.Add(ref _clustersRead, nextV - vcluster);
        return total;
    }

    private void ReadExtended(ulong entry, ulong bitmap, long entryOffset, long offset, int inCluster, Span<byte> destination)
    {
        if ((entry & L2Compressed) != 0)
        {
            Decompress(entry, entryOffset).AsSpan(inCluster, destination.Length).CopyTo(destination);
            return;
        }
        long host = (long)(entry & L2OffsetMask);
        uint alloc = (uint)bitmap, zero = (uint)(bitmap >> 32);
        if ((alloc & zero) != 0)
            throw new MalformedDataException("qcow2 extended L2 entry", entryOffset + 8,
                $"subcluster bitmap {FieldReader.Hex(bitmap)} marks a subcluster both allocated and zero");
        if (host == 0 && alloc != 0)
            throw new MalformedDataException("qcow2 extended L2 entry", entryOffset + 8,
                $"subcluster bitmap {FieldReader.Hex(bitmap)} allocates subclusters of an unallocated cluster");
        if (host != 0) CheckDataCluster(host, entryOffset);
        int subSize = _clusterSize / Subclusters;
        bool touched = false;
        while (!destination.IsEmpty)
        {
            int sub = inCluster / subSize;
            int n = Math.Min(subSize - inCluster % subSize, destination.Length);
            uint bit = 1u << sub;
            if ((alloc & bit) != 0) { ReadHost(host + inCluster, destination[..n], entryOffset); touched = true; }
            else if ((zero & bit) != 0) destination[..n].Clear();
            else ReadBacking(offset, destination[..n]);
            inCluster += n;
            offset += n;
            destination = destination[n..];
        }
        if (touched) Interlocked.Increment(ref _clustersRead);
    }

    private void CheckDataCluster(long host, long entryOffset)
    {
        if ((host & (_clusterSize - 1)) != 0)
            throw new MalformedDataException("qcow2 L2 entry", entryOffset, $"data cluster offset 0x{host:X} is not cluster-aligned");
        if (host >= _file.Length)
            throw new MalformedDataException("qcow2 L2 entry", entryOffset,
                $"data cluster offset 0x{host:X} lies past the end of the {_file.Length}-byte file");
    }

    /// <summary>Reads host bytes; the tail of a last cluster that the file does not fully contain reads as zeros, as in QEMU.</summary>
    private void ReadHost(long host, Span<byte> destination, long entryOffset)
    {
        long available = _file.Length - host;
        if (available <= 0)
            throw new MalformedDataException("qcow2 L2 entry", entryOffset, $"data at 0x{host:X} lies past the end of the file");
        if (available >= destination.Length)
        {
            _file.ReadExactly(host, destination);
            return;
        }
        _file.ReadExactly(host, destination[..(int)available]);
        destination[(int)available..].Clear();
    }

    private void ReadBacking(long offset, Span<byte> destination)
    {
        if (_backing is null)
        {
            destination.Clear();
            return;
        }
        long available = Math.Max(0, _backing.Length - offset);
        int n = (int)Math.Min(available, destination.Length);
        if (n > 0) _backing.ReadExactly(offset, destination[..n]);
        destination[n..].Clear();
    }

    /// <summary>The L2 entry (and extended bitmap) mapping a virtual cluster, with the entry's file offset for errors.</summary>
    private (ulong Entry, ulong Bitmap, long EntryOffset) LookupL2(long vcluster)
    {
        long l1Index = vcluster >> _l2Bits;
        if (l1Index >= _l1.Length) return (0, 0, Header.L1TableOffset);
        ulong l1e = _l1[l1Index];
        long l1EntryOffset = Header.L1TableOffset + l1Index * 8;
        long l2Offset = (long)(l1e & L1OffsetMask);
        if (l2Offset == 0) return (0, 0, l1EntryOffset);
        var table = GetL2Table(l2Offset, l1EntryOffset);
        int index = (int)(vcluster & ((1L << _l2Bits) - 1));
        int at = index * Header.L2EntryBytes;
        ulong entry = BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(at));
        ulong bitmap = Header.ExtendedL2 ? BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(at + 8)) : 0;
        return (entry, bitmap, l2Offset + at);
    }

    private byte[] GetL2Table(long l2Offset, long l1EntryOffset)
    {
        lock (_l2Lock)
        {
            if (_l2Map.TryGetValue(l2Offset, out var node))
            {
                _l2Lru.Remove(node);
                _l2Lru.AddFirst(node);
                return node.Value.Table;
            }
        }
        if ((l2Offset & (_clusterSize - 1)) != 0 || l2Offset > _file.Length - _clusterSize)
            throw new MalformedDataException("qcow2 L1 entry", l1EntryOffset,
                $"L2 table offset 0x{l2Offset:X} is not a cluster-aligned offset inside the {_file.Length}-byte file");
        var table = new byte[_clusterSize];
        _file.ReadExactly(l2Offset, table);
        Interlocked.Increment(ref _clustersRead);
        lock (_l2Lock)
        {
            if (_l2Map.TryGetValue(l2Offset, out var existing)) return existing.Value.Table;
            var node = _l2Lru.AddFirst((l2Offset, table));
            _l2Map[l2Offset] = node;
            while (_l2Lru.Count > _l2Capacity)
            {
                var last = _l2Lru.Last!;
                _l2Lru.RemoveLast();
                _l2Map.Remove(last.Value.Offset);
            }
        }
        return table;
    }

    /// <summary>One compressed cluster, inflated, through a one-entry cache (partial reads of the same cluster are common).</summary>
    private byte[] Decompress(ulong entry, long entryOffset)
    {
        long coffset = CompressedOffset(entry);
        lock (_compressedLock)
        {
            if (_lastCompressed.Offset == coffset && _lastCompressed.Data is { } cached) return cached;
        }
        var output = new byte[_clusterSize];
        Inflate(entry, entryOffset, output);
        lock (_compressedLock) _lastCompressed = (coffset, output);
        return output;
    }

    private long CompressedOffset(ulong entry) => (long)(entry & ((1UL << (62 - (_clusterBits - 8))) - 1));

    /// <summary>Inflates one compressed cluster (raw deflate) into <paramref name="output"/>; it must fill exactly one cluster.</summary>
    private void Inflate(ulong entry, long entryOffset, Span<byte> output)
    {
        int x = 62 - (_clusterBits - 8);
        long coffset = CompressedOffset(entry);
        long sectors = (long)((entry >> x) & ((1UL << (_clusterBits - 8)) - 1)) + 1;
        long csize = sectors * 512 - (coffset & 511);
        if (coffset >= _file.Length)
            throw new MalformedDataException("qcow2 L2 entry", entryOffset,
                $"compressed cluster at 0x{coffset:X} lies past the end of the {_file.Length}-byte file");
        int inputLength = (int)Math.Min(csize, _file.Length - coffset);
        var input = System.Buffers.ArrayPool<byte>.Shared.Rent(inputLength);
        try
        {
            _file.ReadExactly(coffset, input.AsSpan(0, inputLength));
            Interlocked.Increment(ref _clustersRead);
            int got = 0;
            try
            {
                using var ms = new MemoryStream(input, 0, inputLength, writable: false);
                using var inflater = new DeflateStream(ms, CompressionMode.Decompress);
                while (got < output.Length)
                {
                    int n = inflater.Read(output[got..]);
                    if (n == 0) break;
                    got += n;
                }
                if (got == output.Length && HasMoreOutput(inflater))
                    throw new MalformedDataException("qcow2 compressed cluster", coffset,
                        $"inflates past the cluster size of {_clusterSize} bytes");
            }
            catch (InvalidDataException ex)
            {
                throw new MalformedDataException("qcow2 compressed cluster", coffset, $"is not valid deflate data ({ex.Message})");
            }
            if (got != output.Length)
                throw new MalformedDataException("qcow2 compressed cluster", coffset,
                    $"inflates to {got} bytes; expected the cluster size of {_clusterSize}");
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(input);
        }
    }

    private static bool HasMoreOutput(DeflateStream inflater)
    {
        Span<byte> one = stackalloc byte[1];
        try
        {
            return inflater.Read(one) > 0;
        }
        catch (InvalidDataException)
        {
            return false; // QEMU accepts a full cluster even if the stream has no proper end
        }
    }

    public void Dispose()
    {
        _file.Dispose();
        (_backing as IDisposable)?.Dispose();
    }
}
