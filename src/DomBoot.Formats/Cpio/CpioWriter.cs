using System.Buffers;
using System.Text;

namespace DomBoot.Formats.Cpio;

/// <summary>Settings for <see cref="CpioWriter"/>. The defaults give reproducible archives the kernel unpacks.</summary>
public sealed record CpioWriterOptions
{
    /// <summary>newc ("070701", what the kernel and dracut use) or crc ("070702", data sums checked by kernels since ~5.15).</summary>
    public CpioFormat Format { get; init; } = CpioFormat.Newc;

    /// <summary>Pad the archive with NULs to a multiple of 512 bytes after the trailer, as GNU cpio does.</summary>
    public bool PadTo512 { get; init; } = true;

    /// <summary>c_mtime of entries added without an explicit time.</summary>
    public DateTimeOffset DefaultMTime { get; init; } = DateTimeOffset.UnixEpoch;

    /// <summary>
    /// Add missing parent directories (mode <see cref="CpioWriter.DefaultDirectoryMode"/>, <see cref="DefaultMTime"/>)
    /// before an entry: the kernel does not create them and silently drops a file whose directory is missing.
    /// </summary>
    public bool CreateParentDirectories { get; init; } = true;
}

/// <summary>
/// Writes a cpio newc/crc archive (buffer-format.rst; GNU cpio -H newc) to a stream, one entry per call, then the
/// "TRAILER!!!" entry in <see cref="Finish"/>. Output depends only on the calls made: inode numbers count up from 1
/// in call order, uid/gid/mtime come from the arguments (defaults 0, 0, <see cref="CpioWriterOptions.DefaultMTime"/>).
/// Names are stored relative and without a leading "/" or "./" ("bin/sh", not "./bin/sh" as `find . | cpio`
/// writes): the kernel unpacks both forms to the same place, relative to the root of rootfs.
/// </summary>
public sealed class CpioWriter : IDisposable
{
    public const UnixFileMode DefaultDirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    public const UnixFileMode DefaultFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    public const UnixFileMode DefaultDeviceMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private const UnixFileMode SymlinkMode = (UnixFileMode)0x1FF;

    /// <summary>Longest name in bytes, without its NUL (c_namesize is at most PATH_MAX including the NUL).</summary>
    public const int MaxNameBytes = CpioNewcHeader.Limits.MaxNameSize - 1;

    private static readonly byte[] Zeros = new byte[512];

    private readonly Stream _output;
    private readonly bool _leaveOpen;
    private readonly CpioWriterOptions _options;
    private readonly Dictionary<string, CpioFileType> _added = new(StringComparer.Ordinal);
    private uint _nextIno = 1;
    private bool _finished;
    private bool _disposed;

    public CpioWriter(Stream output, CpioWriterOptions? options = null, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (!output.CanWrite) throw new ArgumentException("the output stream is not writable", nameof(output));
        _output = output;
        _options = options ?? new CpioWriterOptions();
        _leaveOpen = leaveOpen;
    }

    /// <summary>Entries written so far, not counting the trailer.</summary>
    public int EntryCount { get; private set; }

    /// <summary>Bytes written to the stream so far.</summary>
    public long BytesWritten { get; private set; }

    public void AddDirectory(string path, UnixFileMode mode = DefaultDirectoryMode, DateTimeOffset? mtime = null, uint uid = 0, uint gid = 0)
    {
        var name = Prepare(path, CpioFileType.Directory, mode, mtime);
        // the kernel ignores nlink for directories; 2 is what a fresh empty directory has
        WriteEntry(name, CpioFileType.Directory, mode, mtime, uid, gid, nlink: 2, 0, 0, ReadOnlySpan<byte>.Empty);
    }

    public void AddFile(string path, ReadOnlySpan<byte> data, UnixFileMode mode = DefaultFileMode, DateTimeOffset? mtime = null, uint uid = 0, uint gid = 0)
    {
        var name = Prepare(path, CpioFileType.Regular, mode, mtime);
        WriteEntry(name, CpioFileType.Regular, mode, mtime, uid, gid, nlink: 1, 0, 0, data);
    }

    /// <summary>
    /// Adds a regular file whose <paramref name="length"/> bytes are read from <paramref name="data"/> (from its
    /// current position). The crc format needs the data sum before the data, so it then needs a seekable stream.
    /// </summary>
    public void AddFile(string path, Stream data, long length, UnixFileMode mode = DefaultFileMode, DateTimeOffset? mtime = null, uint uid = 0, uint gid = 0)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (length < 0 || length > uint.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(length), $"a newc entry holds 0..{uint.MaxValue} bytes, not {length}");
        uint check = 0;
        if (_options.Format == CpioFormat.Crc)
        {
            if (!data.CanSeek) throw new NotSupportedException("the crc format needs a seekable stream to sum the data before writing it");
            long start = data.Position;
            check = Copy(data, length, Stream.Null);
            data.Position = start;
        }
        var name = Prepare(path, CpioFileType.Regular, mode, mtime);
        WriteHeader(name, CpioFileType.Regular, mode, mtime, uid, gid, nlink: 1, 0, 0, (uint)length, check);
        Copy(data, length, _output);
        BytesWritten += length;
        Pad();
        EntryCount++;
    }

    /// <summary>Adds a symlink (mode 0777); <paramref name="target"/> is stored verbatim, without a NUL.</summary>
    public void AddSymlink(string path, string target, DateTimeOffset? mtime = null, uint uid = 0, uint gid = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(target);
        var bytes = Encoding.UTF8.GetBytes(target);
        if (bytes.Length > CpioReader.Limits.MaxSymlinkTargetSize || bytes.Contains((byte)0))
            throw new ArgumentException($"symlink target must be 1..{CpioReader.Limits.MaxSymlinkTargetSize} bytes without NUL", nameof(target));
        var name = Prepare(path, CpioFileType.Symlink, SymlinkMode, mtime);
        WriteEntry(name, CpioFileType.Symlink, SymlinkMode, mtime, uid, gid, nlink: 1, 0, 0, bytes);
    }

    public void AddCharDevice(string path, uint major, uint minor, UnixFileMode mode = DefaultDeviceMode, DateTimeOffset? mtime = null, uint uid = 0, uint gid = 0)
    {
        var name = Prepare(path, CpioFileType.CharDevice, mode, mtime);
        WriteEntry(name, CpioFileType.CharDevice, mode, mtime, uid, gid, nlink: 1, major, minor, ReadOnlySpan<byte>.Empty);
    }

    public void AddBlockDevice(string path, uint major, uint minor, UnixFileMode mode = DefaultDeviceMode, DateTimeOffset? mtime = null, uint uid = 0, uint gid = 0)
    {
        var name = Prepare(path, CpioFileType.BlockDevice, mode, mtime);
        WriteEntry(name, CpioFileType.BlockDevice, mode, mtime, uid, gid, nlink: 1, major, minor, ReadOnlySpan<byte>.Empty);
    }

    public void AddFifo(string path, UnixFileMode mode = DefaultFileMode, DateTimeOffset? mtime = null, uint uid = 0, uint gid = 0)
    {
        var name = Prepare(path, CpioFileType.Fifo, mode, mtime);
        WriteEntry(name, CpioFileType.Fifo, mode, mtime, uid, gid, nlink: 1, 0, 0, ReadOnlySpan<byte>.Empty);
    }

    /// <summary>Writes the TRAILER!!! entry, pads (to 4, or to 512 with <see cref="CpioWriterOptions.PadTo512"/>) and flushes. Call once.</summary>
    public void Finish()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_finished) throw new InvalidOperationException("the archive is already finished");
        // GNU cpio's trailer: every field 0 except c_nlink 1 and c_namesize 11
        WriteRaw(CpioReader.TrailerName, new CpioNewcHeader { Format = _options.Format, NLink = 1 });
        if (_options.PadTo512 && BytesWritten % 512 != 0)
        {
            int pad = (int)(512 - BytesWritten % 512);
            _output.Write(Zeros, 0, pad);
            BytesWritten += pad;
        }
        _output.Flush();
        _finished = true;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (!_leaveOpen) _output.Dispose();
    }

    /// <summary>
    /// The stored form of <paramref name="path"/>: '/'-separated, no leading "/" or "./", no empty or "." parts.
    /// Refuses "..", NUL, empty paths, names longer than <see cref="MaxNameBytes"/> and the trailer's name.
    /// </summary>
    public static string NormalizePath(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Contains('\0')) throw new ArgumentException($"path {Formats.Errors.Quote.Text(path)} contains NUL", nameof(path));
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToArray();
        if (parts.Contains(".."))
            throw new ArgumentException($"path {Formats.Errors.Quote.Text(path)} contains \"..\"", nameof(path));
        if (parts.Length == 0)
            throw new ArgumentException($"path {Formats.Errors.Quote.Text(path)} names no entry (the root of rootfs always exists)", nameof(path));
        var name = string.Join('/', parts);
        if (Encoding.UTF8.GetByteCount(name) > MaxNameBytes)
            throw new ArgumentException($"path is longer than {MaxNameBytes} bytes", nameof(path));
        if (name == CpioReader.TrailerName)
            throw new ArgumentException($"\"{CpioReader.TrailerName}\" would end the archive", nameof(path));
        return name;
    }

    private string Prepare(string path, CpioFileType type, UnixFileMode mode, DateTimeOffset? mtime)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (((uint)mode & ~0xFFFu) != 0)
            throw new ArgumentOutOfRangeException(nameof(mode), $"mode 0x{(uint)mode:X} has bits beyond 07777");
        _ = ToUnixSeconds(mtime ?? _options.DefaultMTime);
        if (_finished) throw new InvalidOperationException("the archive is already finished");
        var name = NormalizePath(path);
        if (_added.ContainsKey(name))
            throw new InvalidOperationException($"{Formats.Errors.Quote.Text(name)} is already in the archive" +
                (type == CpioFileType.Directory ? " (add directories before their contents, or it was created as a parent)" : ""));
        int slash = -1;
        while ((slash = name.IndexOf('/', slash + 1)) >= 0)
        {
            var parent = name[..slash];
            if (_added.TryGetValue(parent, out var parentType))
            {
                if (parentType != CpioFileType.Directory)
                    throw new InvalidOperationException($"{Formats.Errors.Quote.Text(parent)} is not a directory, so it cannot hold {Formats.Errors.Quote.Text(name)}");
            }
            else if (_options.CreateParentDirectories)
            {
                _added[parent] = CpioFileType.Directory;
                WriteEntry(parent, CpioFileType.Directory, DefaultDirectoryMode, null, 0, 0, nlink: 2, 0, 0, ReadOnlySpan<byte>.Empty);
            }
        }
        _added[name] = type;
        return name;
    }

    private void WriteEntry(string name, CpioFileType type, UnixFileMode mode, DateTimeOffset? mtime, uint uid, uint gid, uint nlink,
        uint rdevMajor, uint rdevMinor, ReadOnlySpan<byte> data)
    {
        uint check = 0;
        // GNU cpio sums regular files only (0 for symlink targets), and only those does the kernel check
        if (_options.Format == CpioFormat.Crc && type == CpioFileType.Regular)
            foreach (byte b in data) check = unchecked(check + b);
        WriteHeader(name, type, mode, mtime, uid, gid, nlink, rdevMajor, rdevMinor, (uint)data.Length, check);
        _output.Write(data);
        BytesWritten += data.Length;
        Pad();
        EntryCount++;
    }

    private void WriteHeader(string name, CpioFileType type, UnixFileMode mode, DateTimeOffset? mtime, uint uid, uint gid, uint nlink,
        uint rdevMajor, uint rdevMinor, uint fileSize, uint check)
    {
        var header = new CpioNewcHeader
        {
            Format = _options.Format,
            Ino = _nextIno++,
            Mode = (uint)type | (uint)mode,
            Uid = uid,
            Gid = gid,
            NLink = nlink,
            MTime = ToUnixSeconds(mtime ?? _options.DefaultMTime),
            FileSize = fileSize,
            RDevMajor = rdevMajor,
            RDevMinor = rdevMinor,
            Check = check,
        };
        WriteRaw(name, header);
    }

    /// <summary>Header + name + NUL, padded to 4; <paramref name="header"/>'s c_namesize is filled in here.</summary>
    private void WriteRaw(string name, CpioNewcHeader header)
    {
        int nameBytes = Encoding.UTF8.GetByteCount(name);
        int headerAndName = CpioNewcHeader.Size + nameBytes + 1;
        int total = (headerAndName + 3) & ~3;
        var buffer = ArrayPool<byte>.Shared.Rent(total);
        try
        {
            var span = buffer.AsSpan(0, total);
            span.Clear();
            (header with { NameSize = (uint)(nameBytes + 1) }).WriteTo(span);
            Encoding.UTF8.GetBytes(name, span[CpioNewcHeader.Size..]);
            _output.Write(span);
            BytesWritten += total;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Pad()
    {
        int pad = (int)((4 - BytesWritten % 4) % 4);
        if (pad == 0) return;
        _output.Write(Zeros, 0, pad);
        BytesWritten += pad;
    }

    private static uint ToUnixSeconds(DateTimeOffset time)
    {
        long seconds = time.ToUnixTimeSeconds();
        if (seconds < 0 || seconds > uint.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(time), $"{time:O} does not fit c_mtime (1970..2106)");
        return (uint)seconds;
    }

    /// <summary>Copies exactly <paramref name="length"/> bytes and returns their sum (the crc format's c_chksum).</summary>
    private static uint Copy(Stream source, long length, Stream destination)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            uint sum = 0;
            long left = length;
            while (left > 0)
            {
                int n = source.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                if (n <= 0) throw new EndOfStreamException($"the data stream ended {left} bytes short of the declared {length}");
                foreach (byte b in buffer.AsSpan(0, n)) sum = unchecked(sum + b);
                destination.Write(buffer, 0, n);
                left -= n;
            }
            return sum;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
