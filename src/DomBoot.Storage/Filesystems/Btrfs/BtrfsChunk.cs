using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Filesystems.Btrfs;

/// <summary>struct btrfs_stripe: where one copy of a chunk lives.</summary>
internal sealed record BtrfsStripe(ulong DevId, ulong Offset, Guid DevUuid)
{
    public const int Size = 32;

    public static class Offsets
    {
        public const int Devid = 0x0;
        public const int Offset = 0x8;
        public const int DevUuid = 0x10;
    }

    public static BtrfsStripe Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "btrfs stripe");
        r.Require(0, Size);
        return new BtrfsStripe(r.U64(Offsets.Devid), r.U64(Offsets.Offset), new Guid(r.Bytes(Offsets.DevUuid, 16), bigEndian: true));
    }
}

/// <summary>
/// struct btrfs_chunk (On-disk Format, "CHUNK_ITEM"): maps the logical range [<see cref="Logical"/>,
/// +<see cref="Length"/>) onto <see cref="Stripes"/> according to the block-group profile in <see cref="Type"/>.
/// </summary>
internal sealed record BtrfsChunk(ulong Logical, ulong Length, ulong Owner, ulong StripeLen, ulong Type, uint IoAlign,
    uint IoWidth, uint SectorSize, ushort NumStripes, ushort SubStripes, IReadOnlyList<BtrfsStripe> Stripes, long ImageOffset)
{
    public const int FixedSize = 48;

    public static class Offsets
    {
        public const int Length = 0x0;
        public const int Owner = 0x8;
        public const int StripeLen = 0x10;
        public const int Type = 0x18;
        public const int IoAlign = 0x20;
        public const int IoWidth = 0x24;
        public const int SectorSize = 0x28;
        public const int NumStripes = 0x2C;
        public const int SubStripes = 0x2E;
        public const int Stripe = 0x30;
    }

    /// <summary>BTRFS_BLOCK_GROUP_* profile bits.</summary>
    public static class BlockGroup
    {
        public const ulong Raid0 = 1 << 3;
        public const ulong Raid1 = 1 << 4;
        public const ulong Dup = 1 << 5;
        public const ulong Raid10 = 1 << 6;
        public const ulong Raid5 = 1 << 7;
        public const ulong Raid6 = 1 << 8;
        public const ulong Raid1C3 = 1 << 9;
        public const ulong Raid1C4 = 1 << 10;
        public const ulong ProfileMask = Raid0 | Raid1 | Dup | Raid10 | Raid5 | Raid6 | Raid1C3 | Raid1C4;
    }

    public string ProfileName => (Type & BlockGroup.ProfileMask) switch
    {
        0 => "single",
        BlockGroup.Raid0 => "RAID0",
        BlockGroup.Raid1 => "RAID1",
        BlockGroup.Dup => "DUP",
        BlockGroup.Raid10 => "RAID10",
        BlockGroup.Raid5 => "RAID5",
        BlockGroup.Raid6 => "RAID6",
        BlockGroup.Raid1C3 => "RAID1C3",
        BlockGroup.Raid1C4 => "RAID1C4",
        var m => "profile bits " + FieldReader.Hex(m),
    };

    public ulong End => Logical + Length;

    /// <summary>Parses a chunk item and its stripes; <paramref name="used"/> is the bytes consumed.</summary>
    public static BtrfsChunk Parse(ReadOnlySpan<byte> bytes, long imageOffset, ulong logical, out int used)
    {
        var r = new FieldReader(bytes, imageOffset, "btrfs chunk");
        r.Require(0, FixedSize);
        ulong length = r.U64(Offsets.Length);
        if (length == 0) throw r.FieldError(Offsets.Length, "length", 0, "non-zero");
        if (logical > ulong.MaxValue - length)
            throw r.FieldError(Offsets.Length, "length", FieldReader.Hex(length), $"at most 2^64 - logical start {FieldReader.Hex(logical)}");
        ushort numStripes = r.U16(Offsets.NumStripes);
        if (numStripes == 0 || numStripes > BtrfsLimits.MaxStripes)
            throw r.FieldError(Offsets.NumStripes, "num_stripes", numStripes, $"between 1 and {BtrfsLimits.MaxStripes}");
        int need = checked(FixedSize + numStripes * BtrfsStripe.Size);
        if (bytes.Length < need) throw new TruncatedDataException("btrfs chunk", imageOffset, need, bytes.Length);
        var stripes = new BtrfsStripe[numStripes];
        for (int i = 0; i < numStripes; i++)
        {
            int at = Offsets.Stripe + i * BtrfsStripe.Size;
            stripes[i] = BtrfsStripe.Parse(bytes.Slice(at, BtrfsStripe.Size), imageOffset + at);
        }
        used = need;
        return new BtrfsChunk(logical, length, r.U64(Offsets.Owner), r.U64(Offsets.StripeLen), r.U64(Offsets.Type),
            r.U32(Offsets.IoAlign), r.U32(Offsets.IoWidth), r.U32(Offsets.SectorSize), numStripes, r.U16(Offsets.SubStripes), stripes, imageOffset);
    }
}

/// <summary>Logical-to-physical mapping for one device: single, DUP and mirrored chunks; striped profiles are refused.</summary>
internal sealed class BtrfsChunkMap
{
    private readonly BtrfsChunk[] _chunks;
    private readonly ulong _devId;

    public BtrfsChunkMap(IEnumerable<BtrfsChunk> chunks, ulong devId)
    {
        var list = new SortedDictionary<ulong, BtrfsChunk>();
        foreach (var c in chunks)
        {
            if (list.Count >= BtrfsLimits.MaxChunks)
                throw new MalformedDataException("btrfs chunk tree", c.ImageOffset, $"holds more than {BtrfsLimits.MaxChunks} chunks");
            if (list.TryGetValue(c.Logical, out var same))
            {
                if (same.Length != c.Length)
                    throw new MalformedDataException("btrfs chunk", c.ImageOffset, $"logical {FieldReader.Hex(c.Logical)} is mapped twice with different lengths");
                continue;
            }
            list[c.Logical] = c;
        }
        _chunks = [.. list.Values];
        for (int i = 1; i < _chunks.Length; i++)
            if (_chunks[i].Logical < _chunks[i - 1].End)
                throw new MalformedDataException("btrfs chunk", _chunks[i].ImageOffset,
                    $"logical range {FieldReader.Hex(_chunks[i].Logical)} overlaps the chunk at {FieldReader.Hex(_chunks[i - 1].Logical)}");
        _devId = devId;
    }

    public int Count => _chunks.Length;

    public BtrfsChunk? Find(ulong logical)
    {
        int lo = 0, hi = _chunks.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            var c = _chunks[mid];
            if (logical < c.Logical) hi = mid - 1;
            else if (logical >= c.End) lo = mid + 1;
            else return c;
        }
        return null;
    }

    /// <summary>Physical offset of <paramref name="logical"/> and how many bytes stay contiguous from there.</summary>
    public (long Physical, ulong Contiguous) Map(ulong logical, string what, long referenceOffset)
    {
        var c = Find(logical)
            ?? throw new MalformedDataException(what, referenceOffset, $"logical address {FieldReader.Hex(logical)} is not mapped by any chunk");
        ulong profile = c.Type & BtrfsChunk.BlockGroup.ProfileMask;
        BtrfsStripe? stripe = null;
        if (profile is 0 or BtrfsChunk.BlockGroup.Dup or BtrfsChunk.BlockGroup.Raid1 or BtrfsChunk.BlockGroup.Raid1C3 or BtrfsChunk.BlockGroup.Raid1C4
            || (c.NumStripes == 1 && profile is BtrfsChunk.BlockGroup.Raid0))
        {
            foreach (var s in c.Stripes)
                if (s.DevId == _devId) { stripe = s; break; }
            if (stripe is null)
                throw new UnsupportedFeatureException(
                    $"{what} at offset 0x{Math.Max(0, referenceOffset):X}: logical {FieldReader.Hex(logical)} lies in a {c.ProfileName} chunk with no copy on this device (devid {_devId}); multi-device btrfs is not supported");
        }
        else
        {
            throw new UnsupportedFeatureException(
                $"{what} at offset 0x{Math.Max(0, referenceOffset):X}: logical {FieldReader.Hex(logical)} lies in a {c.ProfileName} chunk striped over {c.NumStripes} devices; only single, DUP and mirrored (RAID1*) chunks can be read from one device");
        }
        ulong within = logical - c.Logical;
        if (stripe.Offset > (ulong)long.MaxValue || within > (ulong)long.MaxValue - stripe.Offset)
            throw new MalformedDataException("btrfs chunk", c.ImageOffset, $"stripe offset {FieldReader.Hex(stripe.Offset)} plus {FieldReader.Hex(within)} overflows");
        return ((long)(stripe.Offset + within), c.Length - within);
    }
}
