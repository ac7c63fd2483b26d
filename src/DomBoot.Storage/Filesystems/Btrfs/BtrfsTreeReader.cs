using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Filesystems.Btrfs;

/// <summary>Where a tree starts: its id (ROOT_ITEM objectid), root block and root level.</summary>
internal readonly record struct BtrfsTreeRoot(ulong TreeId, ulong Bytenr, byte Level, long ReferenceOffset);

/// <summary>A small thread-safe LRU cache.</summary>
internal sealed class BtrfsLru<TKey, TValue>(int capacity) where TKey : notnull
{
    private readonly Dictionary<TKey, LinkedListNode<(TKey Key, TValue Value)>> _map = [];
    private readonly LinkedList<(TKey Key, TValue Value)> _order = new();
    private readonly Lock _lock = new();

    public bool TryGet(TKey key, out TValue value)
    {
        lock (_lock)
        {
            if (_map.TryGetValue(key, out var node))
            {
                _order.Remove(node);
                _order.AddFirst(node);
                value = node.Value.Value;
                return true;
            }
        }
        value = default!;
        return false;
    }

    public void Add(TKey key, TValue value)
    {
        lock (_lock)
        {
            if (_map.TryGetValue(key, out var old)) { _order.Remove(old); _map.Remove(key); }
            _map[key] = _order.AddFirst((key, value));
            while (_map.Count > capacity)
            {
                var last = _order.Last!;
                _order.RemoveLast();
                _map.Remove(last.Value.Key);
            }
        }
    }
}

/// <summary>
/// Reads tree blocks through the chunk map and walks B-trees (On-disk Format, "Tree structure"): levels strictly
/// decrease, a child's first key equals its parent pointer's key, keys increase across leaves, and a block is visited
/// at most once per walk.
/// </summary>
internal sealed class BtrfsTreeReader(IBlockReader volume, BtrfsChunkMap chunks, uint nodeSize, Guid fsId)
{
    private readonly BtrfsLru<ulong, BtrfsNode> _cache = new(BtrfsLimits.NodeCacheCapacity);

    public IBlockReader Volume => volume;
    public BtrfsChunkMap Chunks => chunks;
    public uint NodeSize => nodeSize;

    /// <summary>Reads logical bytes, splitting across chunks as needed.</summary>
    public void ReadLogical(ulong logical, Span<byte> destination, string what, long referenceOffset)
    {
        int done = 0;
        while (done < destination.Length)
        {
            ulong at = checked(logical + (ulong)done);
            var (physical, contiguous) = chunks.Map(at, what, referenceOffset);
            int n = (int)Math.Min((ulong)(destination.Length - done), contiguous);
            volume.ReadExactly(physical, destination.Slice(done, n));
            done += n;
        }
    }

    public long PhysicalOf(ulong logical, string what, long referenceOffset) => chunks.Map(logical, what, referenceOffset).Physical;

    /// <summary>Reads and verifies the tree block at <paramref name="logical"/>, expecting <paramref name="level"/>.</summary>
    public BtrfsNode ReadNode(ulong logical, int level, string what, long referenceOffset)
    {
        if (!_cache.TryGet(logical, out var node))
        {
            if (logical % 4096 != 0)
                throw new MalformedDataException(what, referenceOffset, $"tree block address {FieldReader.Hex(logical)} is not 4096-aligned");
            var (physical, contiguous) = chunks.Map(logical, what, referenceOffset);
            if (contiguous < nodeSize)
                throw new MalformedDataException(what, referenceOffset, $"tree block at {FieldReader.Hex(logical)} crosses the end of its chunk");
            var block = new byte[nodeSize];
            volume.ReadExactly(physical, block);
            node = BtrfsNode.Parse(block, logical, physical, fsId);
            _cache.Add(logical, node);
        }
        if (node.Header.Level != level)
            throw MalformedDataException.Field("btrfs tree block", node.Physical + BtrfsHeader.Offsets.Level, "level", node.Header.Level, $"{level} (one below its parent)");
        return node;
    }

    private BtrfsNode ReadRoot(BtrfsTreeRoot root, HashSet<ulong> visited)
    {
        if (root.Level > BtrfsLimits.MaxLevel)
            throw MalformedDataException.Field($"btrfs tree {root.TreeId} root", root.ReferenceOffset, "level", root.Level, $"at most {BtrfsLimits.MaxLevel}");
        visited.Add(root.Bytenr);
        return ReadNode(root.Bytenr, root.Level, $"btrfs tree {root.TreeId} root", root.ReferenceOffset);
    }

    private BtrfsNode ReadChild(BtrfsNode parent, int index, HashSet<ulong> visited)
    {
        var ptr = parent.Pointers[index];
        long ptrOffset = parent.Physical + BtrfsHeader.Size + (long)index * BtrfsKeyPtr.Size;
        if (!visited.Add(ptr.BlockPtr))
            throw new MalformedDataException("btrfs key pointer", ptrOffset + BtrfsKeyPtr.Offsets.Blockptr,
                $"blockptr {FieldReader.Hex(ptr.BlockPtr)} was already visited in this walk (tree cycle)");
        var child = ReadNode(ptr.BlockPtr, parent.Header.Level - 1, "btrfs key pointer", ptrOffset + BtrfsKeyPtr.Offsets.Blockptr);
        if (child.Count == 0)
            throw MalformedDataException.Field("btrfs tree block", child.Physical + BtrfsHeader.Offsets.Nritems, "nritems", 0, "at least 1 below the root");
        if (child.KeyAt(0) != ptr.Key)
            throw new MalformedDataException("btrfs tree block", child.Physical + BtrfsHeader.Size,
                $"first key {child.KeyAt(0)} differs from its parent pointer's key {ptr.Key}");
        return child;
    }

    /// <summary>Items with <paramref name="min"/> &lt;= key &lt;= <paramref name="max"/>, in key order.</summary>
    public IEnumerable<BtrfsLeafItem> Scan(BtrfsTreeRoot root, BtrfsKey min, BtrfsKey max)
    {
        var visited = new HashSet<ulong>();
        var stack = new Stack<(BtrfsNode Node, int Index)>();
        var top = ReadRoot(root, visited);
        stack.Push((top, StartIndex(top, min)));
        BtrfsKey? last = null;
        while (stack.Count > 0)
        {
            var (node, index) = stack.Pop();
            if (node.IsLeaf)
            {
                for (int i = index; i < node.Items.Length; i++)
                {
                    var key = node.Items[i].Key;
                    if (key > max) yield break;
                    if (last is { } l && key <= l)
                        throw new MalformedDataException("btrfs tree block", node.Physical + BtrfsHeader.Size + (long)i * BtrfsItem.Size,
                            $"key {key} is not greater than the previous leaf's key {l}");
                    last = key;
                    if (key >= min) yield return node.LeafItem(i);
                }
                continue;
            }
            if (index >= node.Pointers.Length) continue;
            if (node.Pointers[index].Key > max) yield break;
            stack.Push((node, index + 1));
            var child = ReadChild(node, index, visited);
            stack.Push((child, StartIndex(child, min)));
        }
    }

    private static int StartIndex(BtrfsNode node, BtrfsKey min)
    {
        int i = node.LastAtOrBefore(min);
        if (i < 0) return 0;
        if (node.IsLeaf && node.KeyAt(i) < min) return i + 1;
        return i;
    }

    /// <summary>The item with the largest key &lt;= <paramref name="key"/>, or null.</summary>
    public BtrfsLeafItem? FindLastAtOrBefore(BtrfsTreeRoot root, BtrfsKey key)
    {
        var visited = new HashSet<ulong>();
        var node = ReadRoot(root, visited);
        while (true)
        {
            int i = node.LastAtOrBefore(key);
            if (i < 0) return null;
            if (node.IsLeaf) return node.LeafItem(i);
            node = ReadChild(node, i, visited);
        }
    }

    public BtrfsLeafItem? TryGet(BtrfsTreeRoot root, BtrfsKey key) =>
        FindLastAtOrBefore(root, key) is { } item && item.Key == key ? item : null;
}
