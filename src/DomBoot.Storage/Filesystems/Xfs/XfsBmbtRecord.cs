using DomBoot.Formats.Binary;

namespace DomBoot.Storage.Filesystems.Xfs;

/// <summary>
/// One packed 128-bit extent record (struct xfs_bmbt_rec; XFS Algorithms &amp; Data Structures, "Data Extents"):
/// bit 127 unwritten flag, bits 73..126 file offset (54 bits), bits 21..72 fsblock (52 bits), bits 0..20 length.
/// <see cref="ImageOffset"/> is where the record itself lives, for error messages.
/// </summary>
internal readonly record struct XfsBmbtRecord(ulong StartOff, ulong StartBlock, uint BlockCount, bool Unwritten, long ImageOffset)
{
    public const int Size = 16;

    public static XfsBmbtRecord Parse(ReadOnlySpan<byte> bytes, long imageOffset)
    {
        var r = new FieldReader(bytes, imageOffset, "XFS extent record");
        ulong l0 = r.U64BE(0);
        ulong l1 = r.U64BE(8);
        return new XfsBmbtRecord(
            StartOff: (l0 & ((1UL << 63) - 1)) >> 9,
            StartBlock: ((l0 & ((1UL << 9) - 1)) << 43) | (l1 >> 21),
            BlockCount: (uint)(l1 & ((1UL << 21) - 1)),
            Unwritten: (l0 >> 63) != 0,
            ImageOffset: imageOffset);
    }

    public ulong EndOff => StartOff + BlockCount;
}
