using System.Text;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Storage.Filesystems.Iso9660;

/// <summary>
/// What the Rock Ridge entries of one directory record say (RRIP 1.12, IEEE P1282: PX 4.1.1, SL 4.1.3, NM 4.1.4,
/// CL/PL/RE 4.1.5, TF 4.1.6), gathered through the SUSP (IEEE P1281: SP 5.3, CE 5.1, ST 5.4) entry chain.
/// </summary>
public sealed record Iso9660RockRidge
{
    public static class Limits
    {
        /// <summary>Continuation areas followed per record (Linux isofs stops at 32 too).</summary>
        public const int MaxContinuations = 32;
        /// <summary>A name is at most 255 bytes (NAME_MAX).</summary>
        public const int MaxNameBytes = 255;
        /// <summary>A symlink target is at most PATH_MAX - 1 bytes.</summary>
        public const int MaxSymlinkBytes = 4095;
        public const int MaxSymlinkComponents = 1024;
    }

    public string? Name { get; init; }
    public string? SymlinkTarget { get; init; }
    public uint? Mode { get; init; }
    public uint? Links { get; init; }
    public uint? Uid { get; init; }
    public uint? Gid { get; init; }
    public DateTimeOffset? ModifyTime { get; init; }
    /// <summary>CL: this record stands for a directory relocated to this block.</summary>
    public uint? ChildLink { get; init; }
    /// <summary>RE: this directory was relocated here and is listed through a CL elsewhere.</summary>
    public bool Relocated { get; init; }

    /// <summary>True when <paramref name="systemUse"/> (of the root's "." record) starts with a SUSP "SP" entry; gives LEN_SKP.</summary>
    public static bool TryReadSp(ReadOnlySpan<byte> systemUse, out int lenSkp)
    {
        lenSkp = 0;
        if (systemUse.Length < 7 || systemUse[0] != 'S' || systemUse[1] != 'P' || systemUse[2] < 7 || systemUse[4] != 0xBE || systemUse[5] != 0xEF)
            return false;
        lenSkp = systemUse[6];
        return true;
    }

    /// <summary>Walks the SUSP entries of one record, following CE continuation areas with bounds and a loop check.</summary>
    public static Iso9660RockRidge Parse(ReadOnlySpan<byte> systemUse, long systemUseOffset, int lenSkp, IBlockReader volume,
        int blockSize, long volumeBytes)
    {
        var state = new State();
        var seen = new HashSet<long>();
        ReadOnlySpan<byte> area = lenSkp <= systemUse.Length ? systemUse[lenSkp..] : [];
        long areaOffset = systemUseOffset + Math.Min(lenSkp, systemUse.Length);
        byte[]? buffer = null;
        for (int hops = 0; ; hops++)
        {
            var ce = Walk(area, areaOffset, state);
            if (ce is null) break;
            var (block, offset, length, ceOffset) = ce.Value;
            if (hops >= Limits.MaxContinuations)
                throw new MalformedDataException("SUSP CE entry", ceOffset, $"more than {Limits.MaxContinuations} continuation areas");
            // SUSP 5.1: the continuation area lies within one logical block.
            if (offset >= blockSize || length > blockSize - offset)
                throw MalformedDataException.Field("SUSP CE entry", ceOffset, "continuation offset + length", $"{offset} + {length}", $"within one {blockSize}-byte block");
            long at = checked((long)block * blockSize + offset);
            if (at + length > volumeBytes)
                throw MalformedDataException.Field("SUSP CE entry", ceOffset, "continuation area end", at + length, $"within the {volumeBytes}-byte volume");
            if (!seen.Add(at))
                throw new MalformedDataException("SUSP CE entry", ceOffset, $"continuation area at 0x{at:X} was already read (a CE loop)");
            buffer = new byte[length];
            volume.ReadExactly(at, buffer);
            area = buffer;
            areaOffset = at;
        }
        return state.Build();
    }

    private sealed class State
    {
        public List<byte>? NameBytes;
        public StringBuilder? Link;
        public bool LinkContinues;
        public int LinkComponents;
        public uint? Mode, Links, Uid, Gid, ChildLink;
        public DateTimeOffset? ModifyTime;
        public bool Relocated;

        public Iso9660RockRidge Build() => new()
        {
            Name = NameBytes is { Count: > 0 } ? Encoding.UTF8.GetString(NameBytes.ToArray()) : null,
            SymlinkTarget = Link?.ToString(),
            Mode = Mode, Links = Links, Uid = Uid, Gid = Gid, ModifyTime = ModifyTime, ChildLink = ChildLink, Relocated = Relocated,
        };
    }

    /// <summary>Reads the entries of one area; returns the CE it names, if any.</summary>
    private static (uint Block, uint Offset, uint Length, long EntryOffset)? Walk(ReadOnlySpan<byte> area, long areaOffset, State s)
    {
        (uint, uint, uint, long)? ce = null;
        int pos = 0;
        while (pos + 4 <= area.Length)
        {
            byte s0 = area[pos], s1 = area[pos + 1];
            int len = area[pos + 2];
            if (s0 == 0) break; // padding
            if (len < 4 || len > area.Length - pos)
                throw MalformedDataException.Field("SUSP entry", areaOffset + pos + 2, "length", len, $"4 to {area.Length - pos}");
            var r = new FieldReader(area.Slice(pos, len), areaOffset + pos, $"SUSP {(char)s0}{(char)s1} entry");
            var data = area.Slice(pos + 4, len - 4);
            switch ((char)s0, (char)s1)
            {
                case ('S', 'T'):
                    return ce;
                case ('C', 'E'):
                    ce = (r.U32(4), r.U32(12), r.U32(20), areaOffset + pos);
                    break;
                case ('N', 'M'):
                    {
                        byte flags = r.U8(4);
                        if ((flags & 0x06) != 0) break; // current / parent directory
                        s.NameBytes ??= [];
                        var part = data[1..];
                        if (s.NameBytes.Count + part.Length > Limits.MaxNameBytes)
                            throw MalformedDataException.Field("RRIP NM entry", areaOffset + pos, "name length", s.NameBytes.Count + part.Length, $"at most {Limits.MaxNameBytes} bytes");
                        foreach (var b in part) s.NameBytes.Add(b);
                        break;
                    }
                case ('S', 'L'):
                    ReadSymlink(r, data, areaOffset + pos, s);
                    break;
                case ('P', 'X'):
                    s.Mode = r.U32(4);
                    s.Links = r.U32(12);
                    s.Uid = r.U32(20);
                    s.Gid = r.U32(28);
                    break;
                case ('T', 'F'):
                    {
                        byte flags = r.U8(4);
                        int width = (flags & 0x80) != 0 ? 17 : 7;
                        int at = 5;
                        if ((flags & 0x01) != 0) at += width; // creation
                        if ((flags & 0x02) != 0 && r.Has(at, width))
                            s.ModifyTime = width == 17 ? Iso9660DirectoryRecord.LongTime(r.Bytes(at, 17)) : Iso9660DirectoryRecord.ShortTime(r.Bytes(at, 7));
                        break;
                    }
                case ('C', 'L'):
                    s.ChildLink = r.U32(4);
                    break;
                case ('R', 'E'):
                    s.Relocated = true;
                    break;
            }
            pos += len;
        }
        return ce;
    }

    /// <summary>SL component records (RRIP 4.1.3.1): flags 0x01 continue, 0x02 ".", 0x04 "..", 0x08 root.</summary>
    private static void ReadSymlink(FieldReader r, ReadOnlySpan<byte> data, long entryOffset, State s)
    {
        _ = r.U8(4); // SL flags: the continue bit only says another SL follows, which the walk handles
        s.Link ??= new StringBuilder();
        var link = s.Link;
        int p = 1;
        while (p + 2 <= data.Length)
        {
            byte cf = data[p];
            int clen = data[p + 1];
            if (p + 2 + clen > data.Length)
                throw MalformedDataException.Field("RRIP SL entry", entryOffset + 4 + p + 1, "component length", clen, $"at most {data.Length - p - 2}");
            if (++s.LinkComponents > Limits.MaxSymlinkComponents)
                throw MalformedDataException.Field("RRIP SL entry", entryOffset + 4 + p, "component count", s.LinkComponents, $"at most {Limits.MaxSymlinkComponents}");
            // A new component follows a "/" unless the previous one continues or was the root.
            if (!s.LinkContinues && link.Length > 0 && link[^1] != '/') link.Append('/');
            switch (cf & 0x0E)
            {
                case 0x02: link.Append('.'); break;
                case 0x04: link.Append(".."); break;
                case 0x08: if (link.Length == 0 || link[^1] != '/') link.Append('/'); break;
                default: link.Append(Encoding.UTF8.GetString(data.Slice(p + 2, clen))); break;
            }
            s.LinkContinues = (cf & 0x01) != 0;
            if (link.Length > Limits.MaxSymlinkBytes)
                throw MalformedDataException.Field("RRIP SL entry", entryOffset, "symlink target length", link.Length, $"at most {Limits.MaxSymlinkBytes}");
            p += 2 + clen;
        }
    }
}
