using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;
using Microsoft.Win32.SafeHandles;

namespace DomBoot.Storage.Images;

/// <summary>A raw image file or block device, read positionally (pread) so several threads can share it.</summary>
public sealed class FileBlockReader : IBlockReader, IDisposable
{
    private readonly SafeFileHandle _handle;

    public string Path { get; }
    public long Length { get; }

    public FileBlockReader(string path)
    {
        Path = path;
        // "/dev/fd/N": an inherited descriptor (the deprivileged bootloader child reads the disk its parent opened).
        _handle = path.StartsWith("/dev/fd/", StringComparison.Ordinal) && int.TryParse(path["/dev/fd/".Length..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int fd) && fd > 2
            ? new SafeFileHandle(fd, ownsHandle: false)
            : File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        long len = RandomAccess.GetLength(_handle);
        if (len == 0 && path.StartsWith("/dev/", StringComparison.Ordinal))
            len = BlockDeviceSize(path);
        Length = len;
    }

    private static long BlockDeviceSize(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return fs.Seek(0, SeekOrigin.End);
    }

    public void ReadExactly(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset > Length || destination.Length > Length - offset)
            throw new TruncatedDataException(System.IO.Path.GetFileName(Path), offset, destination.Length, Length - offset);
        int done = 0;
        while (done < destination.Length)
        {
            int n = RandomAccess.Read(_handle, destination[done..], offset + done);
            if (n <= 0) throw new TruncatedDataException(System.IO.Path.GetFileName(Path), offset + done, destination.Length - done, 0);
            done += n;
        }
    }

    public void Dispose() => _handle.Dispose();
}
