using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace DomBoot.Formats.Cpio;

/// <summary>
/// lstat for the initramfs builder, via Linux statx(2) (glibc 2.28+). struct statx has one layout on every
/// architecture, unlike struct stat, and .NET exposes neither the file type (device, fifo, socket) nor rdev.
/// </summary>
internal static partial class UnixLStat
{
    public readonly record struct Status(uint Mode, long Size, long MTimeSeconds, uint RDevMajor, uint RDevMinor, uint NLink)
    {
        public CpioFileType Type => (CpioFileType)(Mode & 0xF000) switch
        {
            CpioFileType.Fifo or CpioFileType.CharDevice or CpioFileType.Directory or CpioFileType.BlockDevice
                or CpioFileType.Regular or CpioFileType.Symlink or CpioFileType.Socket => (CpioFileType)(Mode & 0xF000),
            _ => CpioFileType.Unknown,
        };

        public UnixFileMode Permissions => (UnixFileMode)(Mode & 0xFFF);
    }

    /// <summary>struct statx field offsets (include/uapi/linux/stat.h).</summary>
    private static class Offsets
    {
        public const int StxNLink = 16;
        public const int StxMode = 28;
        public const int StxSize = 40;
        public const int StxMTime = 112;
        public const int StxRDevMajor = 128;
        public const int StxRDevMinor = 132;
        public const int StructSize = 256;
    }

    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7FF;

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int StatX(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, [Out] byte[] buffer);

    /// <summary>Status of <paramref name="path"/> itself (a symlink is not followed).</summary>
    public static Status Get(string path)
    {
        if (!OperatingSystem.IsLinux()) return Managed(path);
        var buffer = new byte[Offsets.StructSize * 2];
        if (StatX(AtFdCwd, path, AtSymlinkNoFollow, StatxBasicStats, buffer) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"{path}: statx failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }
        var b = buffer.AsSpan();
        return new Status(
            Mode: BinaryPrimitives.ReadUInt16LittleEndian(b[Offsets.StxMode..]),
            Size: (long)BinaryPrimitives.ReadUInt64LittleEndian(b[Offsets.StxSize..]),
            MTimeSeconds: BinaryPrimitives.ReadInt64LittleEndian(b[Offsets.StxMTime..]),
            RDevMajor: BinaryPrimitives.ReadUInt32LittleEndian(b[Offsets.StxRDevMajor..]),
            RDevMinor: BinaryPrimitives.ReadUInt32LittleEndian(b[Offsets.StxRDevMinor..]),
            NLink: BinaryPrimitives.ReadUInt32LittleEndian(b[Offsets.StxNLink..]));
    }

    /// <summary>Elsewhere: only what .NET can tell (directory, symlink, regular file).</summary>
    private static Status Managed(string path)
    {
        var info = new FileInfo(path);
        uint perms = OperatingSystem.IsWindows() ? 0x1A4u : (uint)info.UnixFileMode;
        long mtime = info.LastWriteTimeUtc.Ticks / TimeSpan.TicksPerSecond - DateTime.UnixEpoch.Ticks / TimeSpan.TicksPerSecond;
        if (info.LinkTarget is not null) return new Status(0xA000u | 0x1FF, 0, mtime, 0, 0, 1);
        if ((info.Attributes & FileAttributes.Directory) != 0) return new Status(0x4000u | perms, 0, mtime, 0, 0, 2);
        return new Status(0x8000u | perms, info.Length, mtime, 0, 0, 1);
    }
}
