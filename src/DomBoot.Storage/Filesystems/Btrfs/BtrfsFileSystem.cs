using System.Collections.Concurrent;
using System.IO.Compression;
using System.Text;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Filesystems.Btrfs;

/// <summary>One subvolume as `btrfs subvolume list` shows it: id, path from the top level, parent subvolume id.</summary>
public sealed record BtrfsSubvolume(ulong Id, string Path, ulong ParentId);

/// <summary>Reader-private state of a btrfs <see cref="FsNode"/>: which tree and object it is.</summary>
internal sealed record BtrfsInodeHandle(ulong TreeId, ulong ObjectId, BtrfsInodeItem Inode, long ImageOffset);

/// <summary>
/// A read-only, single-device btrfs filesystem (btrfs docs, On-disk Format): superblock, chunk tree, root tree and
/// one mounted FS tree (subvolume), with inline, regular, sparse, prealloc, zlib- and LZO-compressed extents.
/// zstd-compressed extents raise <see cref="UnsupportedFeatureException"/>. Thread-safe for reads.
/// <see cref="FsNode.Id"/> is the inode number inside the mounted subvolume, and (subvolume id &lt;&lt; 48) | inode
/// for nodes inside other (nested) subvolumes.
/// </summary>
public sealed class BtrfsFileSystem : IFileSystem
{
    private readonly BtrfsTreeReader _reader;
    private readonly BtrfsTreeRoot _rootTree;
    private readonly ConcurrentDictionary<ulong, (BtrfsTreeRoot Root, ulong RootDirId)> _trees = new();
    private readonly BtrfsLru<(ulong Bytenr, ulong DiskNum, byte Compression, ulong Ram), byte[]> _extentCache = new(BtrfsLimits.ExtentCacheCapacity);
    private readonly Lazy<IReadOnlyList<BtrfsSubvolume>> _subvolumes;

    public BtrfsSuperblock Superblock { get; }

    /// <summary>The subvolume whose root is <see cref="Root"/>.</summary>
    public ulong SubvolumeId { get; }

    /// <summary>The subvolume the kernel mounts when no subvol= is given (root tree "default" entry, else 5).</summary>
    public ulong DefaultSubvolumeId { get; }

    public string TypeName => "btrfs";
    public string? Label => Superblock.Label.Length == 0 ? null : Superblock.Label;
    public string? Uuid => Superblock.FsId.ToString("D");
    public FsNode Root { get; }

    /// <summary>Every subvolume but the top level (5), as ROOT_BACKREF items record them.</summary>
    public IReadOnlyList<BtrfsSubvolume> Subvolumes => _subvolumes.Value;

    public const ulong TopLevelSubvolumeId = BtrfsObjectId.FsTree;

    public static bool HasMagic(ReadOnlySpan<byte> volumeStart) => BtrfsSuperblock.HasMagic(volumeStart);

    private BtrfsFileSystem(BtrfsSuperblock sb, BtrfsTreeReader reader, Func<BtrfsFileSystem, ulong> chooseSubvolume)
    {
        Superblock = sb;
        _reader = reader;
        _rootTree = new BtrfsTreeRoot(BtrfsObjectId.RootTree, sb.Root, sb.RootLevel, BtrfsSuperblock.PrimaryOffset + BtrfsSuperblock.Offsets.Root);
        _subvolumes = new Lazy<IReadOnlyList<BtrfsSubvolume>>(LoadSubvolumes, LazyThreadSafetyMode.ExecutionAndPublication);
        DefaultSubvolumeId = FindDefaultSubvolume();
        SubvolumeId = chooseSubvolume(this);
        var (_, rootDir) = Tree(SubvolumeId, BtrfsSuperblock.PrimaryOffset);
        Root = LoadNode(SubvolumeId, rootDir, BtrfsSuperblock.PrimaryOffset);
        if (Root.Type != FsNodeType.Directory)
            throw new MalformedDataException("btrfs inode item", ((BtrfsInodeHandle)Root.Handle!).ImageOffset, $"the root directory of subvolume {SubvolumeId} is not a directory");
    }

    /// <summary>Opens the default subvolume (null) or the subvolume at <paramref name="subvolume"/> ("@/root", as rootflags=subvol= names it).</summary>
    public static BtrfsFileSystem Open(IBlockReader volume, string? subvolume = null)
    {
        ArgumentNullException.ThrowIfNull(volume);
        var (sb, reader) = Mount(volume);
        return new BtrfsFileSystem(sb, reader, fs => subvolume is null ? fs.DefaultSubvolumeId : fs.FindSubvolume(subvolume));
    }

    /// <summary>Opens subvolume <paramref name="subvolumeId"/> (as subvolid= names it; 5 is the top level).</summary>
    public static BtrfsFileSystem Open(IBlockReader volume, ulong subvolumeId)
    {
        ArgumentNullException.ThrowIfNull(volume);
        var (sb, reader) = Mount(volume);
        return new BtrfsFileSystem(sb, reader, fs =>
        {
            if (subvolumeId != BtrfsObjectId.FsTree && (subvolumeId < BtrfsObjectId.FirstFree || subvolumeId > BtrfsObjectId.LastFree))
                throw new FileNotFoundException($"btrfs subvolume id {subvolumeId} is not a subvolume id (5 or 256..2^64-256)");
            if (fs._reader.FindLastAtOrBefore(fs._rootTree, new BtrfsKey(subvolumeId, BtrfsItemType.RootItem, ulong.MaxValue)) is not { } it
                || it.Key.ObjectId != subvolumeId || it.Key.Type != BtrfsItemType.RootItem)
                throw new FileNotFoundException($"btrfs subvolume id {subvolumeId} does not exist");
            return subvolumeId;
        });
    }

    private static (BtrfsSuperblock, BtrfsTreeReader) Mount(IBlockReader volume)
    {
        var buf = new byte[BtrfsSuperblock.Size];
        if (volume.Length < BtrfsSuperblock.PrimaryOffset + BtrfsSuperblock.Size)
            throw new TruncatedDataException("btrfs superblock", BtrfsSuperblock.PrimaryOffset, BtrfsSuperblock.Size, volume.Length - BtrfsSuperblock.PrimaryOffset);
        volume.ReadExactly(BtrfsSuperblock.PrimaryOffset, buf);
        var sb = BtrfsSuperblock.Parse(buf, BtrfsSuperblock.PrimaryOffset);
        var boot = new BtrfsTreeReader(volume, new BtrfsChunkMap(sb.SystemChunks, sb.DevItemDevId), sb.NodeSize, sb.TreeFsId);
        var chunkRoot = new BtrfsTreeRoot(BtrfsObjectId.ChunkTree, sb.ChunkRoot, sb.ChunkRootLevel, BtrfsSuperblock.PrimaryOffset + BtrfsSuperblock.Offsets.ChunkRoot);
        var all = new List<BtrfsChunk>(sb.SystemChunks);
        foreach (var item in boot.Scan(chunkRoot, new BtrfsKey(BtrfsObjectId.FirstChunkTree, BtrfsItemType.ChunkItem, 0),
                     new BtrfsKey(BtrfsObjectId.FirstChunkTree, BtrfsItemType.ChunkItem, ulong.MaxValue)))
        {
            if (all.Count > BtrfsLimits.MaxChunks)
                throw new MalformedDataException("btrfs chunk tree", item.ItemImageOffset, $"holds more than {BtrfsLimits.MaxChunks} chunks");
            var chunk = BtrfsChunk.Parse(item.Data.Span, item.DataImageOffset, item.Key.Offset, out int used);
            if (used != item.Data.Length)
                throw MalformedDataException.Field("btrfs chunk item", item.ItemImageOffset + BtrfsItem.Offsets.Size, "size", item.Data.Length, $"{used} for {chunk.NumStripes} stripes");
            all.Add(chunk);
        }
        return (sb, new BtrfsTreeReader(volume, new BtrfsChunkMap(all, sb.DevItemDevId), sb.NodeSize, sb.TreeFsId));
    }

    private ulong FindDefaultSubvolume()
    {
        var name = "default"u8;
        var key = new BtrfsKey(Superblock.RootDirObjectId, BtrfsItemType.DirItem, BtrfsCrc32C.NameHash(name));
        if (_reader.TryGet(_rootTree, key) is not { } item) return BtrfsObjectId.FsTree;
        foreach (var d in BtrfsDirItem.ParseAll(item.Data.Span, item.DataImageOffset))
            if (d.Name.AsSpan().SequenceEqual(name))
            {
                ulong id = d.Location.ObjectId;
                if (id != BtrfsObjectId.FsTree && (id < BtrfsObjectId.FirstFree || id > BtrfsObjectId.LastFree))
                    throw MalformedDataException.Field("btrfs default subvolume dir item", item.DataImageOffset, "location objectid", id, "5 or a subvolume id (256..2^64-256)");
                return id;
            }
        return BtrfsObjectId.FsTree;
    }

    private ulong FindSubvolume(string path)
    {
        var wanted = string.Join('/', path.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != "."));
        if (wanted.Length == 0) return BtrfsObjectId.FsTree;
        foreach (var s in Subvolumes)
            if (s.Path == wanted) return s.Id;
        throw new FileNotFoundException($"btrfs subvolume {Quote.Text(path)} does not exist");
    }

    /// <summary>The root block and root directory of FS tree <paramref name="treeId"/>, from its ROOT_ITEM.</summary>
    private (BtrfsTreeRoot Root, ulong RootDirId) Tree(ulong treeId, long referenceOffset)
    {
        if (_trees.TryGetValue(treeId, out var t)) return t;
        if (treeId != BtrfsObjectId.FsTree && (treeId < BtrfsObjectId.FirstFree || treeId > BtrfsObjectId.LastFree))
            throw new MalformedDataException("btrfs subvolume reference", referenceOffset, $"tree id {treeId} is not a subvolume id (5 or 256..2^64-256)");
        if (_reader.FindLastAtOrBefore(_rootTree, new BtrfsKey(treeId, BtrfsItemType.RootItem, ulong.MaxValue)) is not { } item
            || item.Key.ObjectId != treeId || item.Key.Type != BtrfsItemType.RootItem)
            throw new MalformedDataException("btrfs subvolume reference", referenceOffset, $"tree {treeId} has no ROOT_ITEM in the root tree");
        var ri = BtrfsRootItem.Parse(item.Data.Span, item.DataImageOffset);
        t = (new BtrfsTreeRoot(treeId, ri.Bytenr, ri.Level, item.DataImageOffset + BtrfsRootItem.Offsets.Bytenr), ri.RootDirId);
        _trees.TryAdd(treeId, t);
        return t;
    }

    private ulong PackId(ulong treeId, ulong objectId) =>
        treeId == SubvolumeId ? objectId : (treeId << 48) | (objectId & 0xFFFF_FFFF_FFFF);

    private FsNode LoadNode(ulong treeId, ulong objectId, long referenceOffset)
    {
        var (root, _) = Tree(treeId, referenceOffset);
        if (_reader.TryGet(root, new BtrfsKey(objectId, BtrfsItemType.InodeItem, 0)) is not { } item)
            throw new MalformedDataException("btrfs inode reference", referenceOffset, $"inode {objectId} has no INODE_ITEM in tree {treeId}");
        var inode = BtrfsInodeItem.Parse(item.Data.Span, item.DataImageOffset);
        if (inode.Size > (ulong)BtrfsLimits.MaxFileSize)
            throw MalformedDataException.Field("btrfs inode item", item.DataImageOffset + BtrfsInodeItem.Offsets.Size, "size", FieldReader.Hex(inode.Size), "at most 2^63 - 1");
        return new FsNode(PackId(treeId, objectId), inode.NodeType, (long)inode.Size, inode.Mode, inode.Uid, inode.Gid, inode.NLink,
            inode.ModifiedTime, new BtrfsInodeHandle(treeId, objectId, inode, item.DataImageOffset));
    }

    private static BtrfsInodeHandle HandleOf(FsNode node) =>
        node.Handle as BtrfsInodeHandle ?? throw new ArgumentException("node does not belong to a btrfs filesystem", nameof(node));

    /// <summary>The (tree, object) a directory entry names: an inode in the same tree, or a subvolume's root directory.</summary>
    private (ulong Tree, ulong ObjectId) Target(ulong treeId, BtrfsDirItem d, long imageOffset)
    {
        if (d.Location.Type == BtrfsItemType.InodeItem) return (treeId, d.Location.ObjectId);
        if (d.Location.Type == BtrfsItemType.RootItem)
        {
            var (_, rootDir) = Tree(d.Location.ObjectId, imageOffset);
            return (d.Location.ObjectId, rootDir);
        }
        throw MalformedDataException.Field("btrfs dir item", imageOffset + BtrfsKey.Offsets.Type, "location type", d.Location.Type, "1 (INODE_ITEM) or 132 (ROOT_ITEM)");
    }

    public IReadOnlyList<FsDirEntry> ListDirectory(FsNode directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var h = HandleOf(directory);
        if (directory.Type != FsNodeType.Directory) throw new IOException($"btrfs inode {h.ObjectId} is not a directory");
        var (root, _) = Tree(h.TreeId, h.ImageOffset);
        var list = new List<FsDirEntry>();
        foreach (var item in _reader.Scan(root, new BtrfsKey(h.ObjectId, BtrfsItemType.DirIndex, 0), new BtrfsKey(h.ObjectId, BtrfsItemType.DirIndex, ulong.MaxValue)))
        {
            if (list.Count >= BtrfsLimits.MaxDirectoryEntries)
                throw new MalformedDataException("btrfs directory", h.ImageOffset, $"inode {h.ObjectId} has more than {BtrfsLimits.MaxDirectoryEntries} entries");
            var entries = BtrfsDirItem.ParseAll(item.Data.Span, item.DataImageOffset);
            if (entries.Count != 1)
                throw MalformedDataException.Field("btrfs DIR_INDEX item", item.ItemImageOffset, "entries", entries.Count, "1");
            var d = entries[0];
            var (tree, obj) = Target(h.TreeId, d, item.DataImageOffset);
            list.Add(new FsDirEntry(Encoding.UTF8.GetString(d.Name), PackId(tree, obj), d.NodeType));
        }
        return list;
    }

    public FsNode? Lookup(FsNode directory, string name)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(name);
        var h = HandleOf(directory);
        if (directory.Type != FsNodeType.Directory) return null;
        var bytes = Encoding.UTF8.GetBytes(name);
        if (bytes.Length == 0 || bytes.Length > BtrfsLimits.MaxNameBytes || name.Contains('/', StringComparison.Ordinal) || name.Contains('\0', StringComparison.Ordinal))
            return null;
        if (name == ".") return directory;
        if (name == "..") return Parent(directory);
        var (root, _) = Tree(h.TreeId, h.ImageOffset);
        if (_reader.TryGet(root, new BtrfsKey(h.ObjectId, BtrfsItemType.DirItem, BtrfsCrc32C.NameHash(bytes))) is not { } item) return null;
        foreach (var d in BtrfsDirItem.ParseAll(item.Data.Span, item.DataImageOffset))
        {
            if (!d.Name.AsSpan().SequenceEqual(bytes)) continue;
            var (tree, obj) = Target(h.TreeId, d, item.DataImageOffset);
            return LoadNode(tree, obj, item.DataImageOffset);
        }
        return null;
    }

    public FsNode Parent(FsNode directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var h = HandleOf(directory);
        var rh = HandleOf(Root);
        if (h.TreeId == rh.TreeId && h.ObjectId == rh.ObjectId) return Root;
        var (root, rootDir) = Tree(h.TreeId, h.ImageOffset);
        if (h.ObjectId == rootDir)
        {
            var (parentTree, dirId, at) = BackRef(h.TreeId, h.ImageOffset);
            return LoadNode(parentTree, dirId, at);
        }
        var (parent, offset) = ParentInode(root, h.TreeId, h.ObjectId, h.ImageOffset);
        return LoadNode(h.TreeId, parent, offset);
    }

    /// <summary>The subvolume and directory a subvolume is linked under (its first ROOT_BACKREF).</summary>
    private (ulong ParentTree, ulong DirId, long ImageOffset) BackRef(ulong treeId, long referenceOffset)
    {
        foreach (var item in _reader.Scan(_rootTree, new BtrfsKey(treeId, BtrfsItemType.RootBackref, 0), new BtrfsKey(treeId, BtrfsItemType.RootBackref, ulong.MaxValue)))
        {
            var rr = BtrfsRootRef.Parse(item.Data.Span, item.DataImageOffset);
            return (item.Key.Offset, rr.DirId, item.DataImageOffset);
        }
        throw new MalformedDataException("btrfs subvolume", referenceOffset, $"subvolume {treeId} has no ROOT_BACKREF");
    }

    /// <summary>The parent directory of <paramref name="objectId"/> from its first INODE_REF (or INODE_EXTREF).</summary>
    private (ulong Parent, long ImageOffset) ParentInode(BtrfsTreeRoot root, ulong treeId, ulong objectId, long referenceOffset)
    {
        foreach (var item in _reader.Scan(root, new BtrfsKey(objectId, BtrfsItemType.InodeRef, 0), new BtrfsKey(objectId, BtrfsItemType.InodeExtref, ulong.MaxValue)))
        {
            if (item.Key.Type == BtrfsItemType.InodeRef) return (item.Key.Offset, item.DataImageOffset);
            if (item.Key.Type == BtrfsItemType.InodeExtref)
                return (BtrfsInodeExtref.ParseFirst(item.Data.Span, item.DataImageOffset).ParentObjectId, item.DataImageOffset);
        }
        throw new MalformedDataException("btrfs inode", referenceOffset, $"inode {objectId} in tree {treeId} has no INODE_REF");
    }

    private (byte[] Name, ulong Parent) FirstRef(BtrfsTreeRoot root, ulong treeId, ulong objectId, long referenceOffset)
    {
        foreach (var item in _reader.Scan(root, new BtrfsKey(objectId, BtrfsItemType.InodeRef, 0), new BtrfsKey(objectId, BtrfsItemType.InodeExtref, ulong.MaxValue)))
        {
            if (item.Key.Type == BtrfsItemType.InodeRef)
                return (BtrfsInodeRef.ParseFirst(item.Data.Span, item.DataImageOffset).Name, item.Key.Offset);
            if (item.Key.Type == BtrfsItemType.InodeExtref)
            {
                var x = BtrfsInodeExtref.ParseFirst(item.Data.Span, item.DataImageOffset);
                return (x.Name, x.ParentObjectId);
            }
        }
        throw new MalformedDataException("btrfs inode", referenceOffset, $"inode {objectId} in tree {treeId} has no INODE_REF");
    }

    public int Read(FsNode file, long offset, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        var h = HandleOf(file);
        if (file.Type is not (FsNodeType.Regular or FsNodeType.Symlink))
            throw new IOException($"btrfs inode {h.ObjectId} is a {file.Type}, not a regular file");
        long size = file.SizeInBytes;
        if (offset >= size || destination.IsEmpty) return 0;
        int len = (int)Math.Min(destination.Length, size - offset);
        var dest = destination[..len];
        dest.Clear();
        var (root, _) = Tree(h.TreeId, h.ImageOffset);
        ulong from = 0;
        if (_reader.FindLastAtOrBefore(root, new BtrfsKey(h.ObjectId, BtrfsItemType.ExtentData, (ulong)offset)) is { } prev
            && prev.Key.ObjectId == h.ObjectId && prev.Key.Type == BtrfsItemType.ExtentData)
            from = prev.Key.Offset;
        ulong end = (ulong)offset + (ulong)len;
        foreach (var item in _reader.Scan(root, new BtrfsKey(h.ObjectId, BtrfsItemType.ExtentData, from), new BtrfsKey(h.ObjectId, BtrfsItemType.ExtentData, ulong.MaxValue)))
        {
            if (item.Key.Offset >= end) break;
            var e = BtrfsFileExtentItem.Parse(item.Data.Span, item.DataImageOffset, item.Key.Offset, item.Data, Superblock.SectorSize);
            ulong eStart = e.FileOffset, eEnd = eStart + e.Length;
            if (eEnd <= (ulong)offset) continue;
            ulong copyFrom = Math.Max(eStart, (ulong)offset), copyTo = Math.Min(eEnd, end);
            var target = dest.Slice((int)(copyFrom - (ulong)offset), (int)(copyTo - copyFrom));
            CopyExtent(e, copyFrom - eStart, target);
        }
        return len;
    }

    /// <summary>Fills <paramref name="target"/> with the extent's bytes starting <paramref name="within"/> bytes into it.</summary>
    private void CopyExtent(BtrfsFileExtentItem e, ulong within, Span<byte> target)
    {
        if (e.Type == BtrfsFileExtentItem.TypePrealloc) return;
        if (e.Type == BtrfsFileExtentItem.TypeInline)
        {
            ReadOnlySpan<byte> data = e.Compression == BtrfsFileExtentItem.CompressNone
                ? e.InlineData.Span
                : Decompress(e.Compression, e.InlineData.Span, (int)e.RamBytes, e.ImageOffset + BtrfsFileExtentItem.InlineHeaderSize);
            if (within < (ulong)data.Length)
            {
                var part = data[(int)within..];
                part[..Math.Min(part.Length, target.Length)].CopyTo(target);
            }
            return;
        }
        if (e.DiskBytenr == 0) return;
        if (e.Compression == BtrfsFileExtentItem.CompressNone)
        {
            _reader.ReadLogical(checked(e.DiskBytenr + e.Offset + within), target, "btrfs file extent item", e.ImageOffset + BtrfsFileExtentItem.Offsets.DiskBytenr);
            return;
        }
        var key = (e.DiskBytenr, e.DiskNumBytes, e.Compression, e.RamBytes);
        if (!_extentCache.TryGet(key, out var plain))
        {
            var raw = new byte[e.DiskNumBytes];
            _reader.ReadLogical(e.DiskBytenr, raw, "btrfs file extent item", e.ImageOffset + BtrfsFileExtentItem.Offsets.DiskBytenr);
            long at = _reader.PhysicalOf(e.DiskBytenr, "btrfs file extent item", e.ImageOffset + BtrfsFileExtentItem.Offsets.DiskBytenr);
            plain = Decompress(e.Compression, raw, (int)e.RamBytes, at);
            _extentCache.Add(key, plain);
        }
        plain.AsSpan((int)(e.Offset + within), target.Length).CopyTo(target);
    }

    /// <summary>Decompresses to exactly <paramref name="ramBytes"/> bytes; a short stream leaves zeros, as the kernel does.</summary>
    private byte[] Decompress(byte compression, ReadOnlySpan<byte> source, int ramBytes, long imageOffset)
    {
        var output = new byte[ramBytes];
        switch (compression)
        {
            case BtrfsFileExtentItem.CompressZlib:
                try
                {
                    using var z = new ZLibStream(new MemoryStream(source.ToArray(), writable: false), CompressionMode.Decompress);
                    z.ReadAtLeast(output, output.Length, throwOnEndOfStream: false);
                }
                catch (InvalidDataException ex)
                {
                    throw new MalformedDataException("btrfs zlib extent", imageOffset, $"zlib stream is corrupt ({ex.Message})");
                }
                return output;
            case BtrfsFileExtentItem.CompressLzo:
                BtrfsLzo.DecompressExtent(source, output, (int)Superblock.SectorSize, imageOffset);
                return output;
            case BtrfsFileExtentItem.CompressZstd:
                throw new UnsupportedFeatureException($"btrfs extent at offset 0x{imageOffset:X}: zstd compression is not supported (only zlib and lzo)");
            default:
                throw MalformedDataException.Field("btrfs file extent item", imageOffset, "compression", compression, "0..3");
        }
    }

    public string ReadLink(FsNode symlink)
    {
        ArgumentNullException.ThrowIfNull(symlink);
        var h = HandleOf(symlink);
        if (symlink.Type != FsNodeType.Symlink) throw new IOException($"btrfs inode {h.ObjectId} is not a symlink");
        if (symlink.SizeInBytes > BtrfsLimits.MaxSymlinkBytes)
            throw MalformedDataException.Field("btrfs inode item", h.ImageOffset + BtrfsInodeItem.Offsets.Size, "size", symlink.SizeInBytes, $"at most {BtrfsLimits.MaxSymlinkBytes} for a symlink");
        var buf = new byte[symlink.SizeInBytes];
        int n = Read(symlink, 0, buf);
        return Encoding.UTF8.GetString(buf, 0, n);
    }

    // Internals for tests and diagnostics: the tree reader, the root tree and any FS tree's root.
    internal BtrfsTreeReader Reader => _reader;
    internal BtrfsTreeRoot RootTreeRoot => _rootTree;
    internal BtrfsTreeRoot FsTreeRoot(ulong treeId) => Tree(treeId, -1).Root;

    private List<BtrfsSubvolume> LoadSubvolumes()
    {
        var refs = new Dictionary<ulong, (ulong Parent, BtrfsRootRef Ref, long At)>();
        foreach (var item in _reader.Scan(_rootTree, new BtrfsKey(BtrfsObjectId.FirstFree, BtrfsItemType.RootBackref, 0),
                     new BtrfsKey(BtrfsObjectId.LastFree, BtrfsItemType.RootBackref, ulong.MaxValue)))
        {
            if (item.Key.Type != BtrfsItemType.RootBackref || refs.ContainsKey(item.Key.ObjectId)) continue;
            if (refs.Count >= BtrfsLimits.MaxSubvolumes)
                throw new MalformedDataException("btrfs root tree", item.ItemImageOffset, $"holds more than {BtrfsLimits.MaxSubvolumes} subvolumes");
            refs[item.Key.ObjectId] = (item.Key.Offset, BtrfsRootRef.Parse(item.Data.Span, item.DataImageOffset), item.DataImageOffset);
        }
        var paths = new Dictionary<ulong, string> { [BtrfsObjectId.FsTree] = "" };
        string PathOf(ulong id, int depth)
        {
            if (paths.TryGetValue(id, out var p)) return p;
            if (depth > BtrfsLimits.MaxSubvolumeDepth || !refs.TryGetValue(id, out var r))
                throw new MalformedDataException("btrfs ROOT_BACKREF", refs.TryGetValue(id, out var rr) ? rr.At : -1,
                    depth > BtrfsLimits.MaxSubvolumeDepth ? $"subvolume {id} is nested more than {BtrfsLimits.MaxSubvolumeDepth} deep (or its parents cycle)" : $"subvolume {id} has no ROOT_BACKREF");
            var parent = PathOf(r.Parent, depth + 1);
            var dir = DirectoryPath(r.Parent, r.Ref.DirId, r.At);
            var name = Encoding.UTF8.GetString(r.Ref.Name);
            p = string.Join('/', new[] { parent, dir, name }.Where(s => s.Length > 0));
            paths[id] = p;
            return p;
        }
        var result = new List<BtrfsSubvolume>();
        foreach (var (id, r) in refs.OrderBy(kv => kv.Key))
            result.Add(new BtrfsSubvolume(id, PathOf(id, 0), r.Parent));
        return result;
    }

    /// <summary>The path of directory <paramref name="dirId"/> below the root directory of tree <paramref name="treeId"/>.</summary>
    private string DirectoryPath(ulong treeId, ulong dirId, long referenceOffset)
    {
        var (root, rootDir) = Tree(treeId, referenceOffset);
        var names = new List<string>();
        var seen = new HashSet<ulong>();
        ulong cur = dirId;
        while (cur != rootDir)
        {
            if (!seen.Add(cur) || names.Count > BtrfsLimits.MaxDirectoryDepth)
                throw new MalformedDataException("btrfs INODE_REF chain", referenceOffset, $"directory {dirId} in tree {treeId} does not lead to the root directory (cycle or deeper than {BtrfsLimits.MaxDirectoryDepth})");
            var (name, parent) = FirstRef(root, treeId, cur, referenceOffset);
            names.Add(Encoding.UTF8.GetString(name));
            cur = parent;
        }
        names.Reverse();
        return string.Join('/', names);
    }
}
