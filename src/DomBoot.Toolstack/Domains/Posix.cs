using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;

namespace DomBoot.Toolstack.Domains;

/// <summary>The few Linux calls the toolstack needs that .NET does not expose.</summary>
internal static class Posix
{
#pragma warning disable SYSLIB1054 // plain DllImport as elsewhere in the repo (UnixLStat, BootServer); no unsafe blocks in this project
    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int StatX(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, [Out] byte[] buffer);

    [DllImport("libc", EntryPoint = "setsid", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int SetSid();

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode);

    [DllImport("libc", EntryPoint = "dup2", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int Dup2(int oldfd, int newfd);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int Close(int fd);

    [DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int Fcntl(int fd, int cmd, int arg);

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int Kill(int pid, int sig);
#pragma warning restore SYSLIB1054

    private const int AtFdCwd = -100;
    private const uint StatxBasicStats = 0x7FF;
    private const int ORdOnly = 0, OWrOnly = 1, OCreat = 0x40, OAppend = 0x400, OCloExec = 0x80000;
    public const int SigKill = 9, SigTerm = 15;

    /// <summary>Device and inode of a file (symlinks followed): the identity a disk lock is keyed by.</summary>
    public static string FileIdentity(string path)
    {
        var buffer = new byte[512];
        if (StatX(AtFdCwd, path, 0, StatxBasicStats, buffer) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == 2) throw new FileNotFoundException($"{path}: no such file", path);
            throw new IOException($"{path}: statx failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }
        ulong ino = BinaryPrimitives.ReadUInt64LittleEndian(buffer.AsSpan(32));
        uint major = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(136));
        uint minor = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(140));
        return string.Create(CultureInfo.InvariantCulture, $"{major}:{minor}:{ino}");
    }

    /// <summary>
    /// Leaves the caller's session (no SIGHUP when the terminal closes, no Ctrl-C from it) and points stdin at
    /// /dev/null and stdout/stderr at <paramref name="logFile"/>, so a parent reading our pipes sees them close.
    /// </summary>
    public static void Detach(string logFile)
    {
        _ = SetSid(); // fails only if already a group leader, which a freshly spawned child is not
        // What 0, 1 and 2 were: the runtime may already hold close-on-exec duplicates of them (Console.Out), which
        // would keep the parent's pipes open; those are pointed at the same places as 0, 1 and 2 below.
        string? oldIn = LinkOf(0), oldOut = LinkOf(1), oldErr = LinkOf(2);
        int devNull = Open("/dev/null", ORdOnly | OCloExec, 0);
        int log = Open(logFile, OWrOnly | OCreat | OAppend | OCloExec, 0x180);
        if (devNull < 0 || log < 0) throw new IOException($"{logFile}: cannot open the domain log (errno {Marshal.GetLastPInvokeError()})");
        bool ok = Dup2(devNull, 0) >= 0 & Dup2(log, 1) >= 0 & Dup2(log, 2) >= 0;
        foreach (var fd in OpenDescriptors())
        {
            if (fd <= 2 || fd == devNull || fd == log) continue;
            string? link = LinkOf(fd);
            if (link is null || !link.StartsWith("pipe:", StringComparison.Ordinal) && !link.StartsWith("/dev/pts/", StringComparison.Ordinal) && !link.StartsWith("socket:", StringComparison.Ordinal)) continue;
            int target = link == oldIn ? devNull : link == oldOut || link == oldErr ? log : -1;
            if (target < 0) continue;
            ok &= Dup2(target, fd) >= 0;
            _ = Fcntl(fd, FSetFd, FdCloExec);
        }
        ok &= Close(devNull) == 0 & Close(log) == 0;
        if (!ok) throw new IOException($"{logFile}: cannot redirect the standard streams (errno {Marshal.GetLastPInvokeError()})");
        CloseInheritedDescriptors();
    }

    private const int FGetFd = 1, FSetFd = 2, FdCloExec = 1;

    private static string? LinkOf(int fd)
    {
        try { return new FileInfo("/proc/self/fd/" + fd.ToString(CultureInfo.InvariantCulture)).LinkTarget; }
        catch (IOException) { return null; }
    }

    private static List<int> OpenDescriptors()
    {
        var result = new List<int>();
        try
        {
            foreach (var e in Directory.GetFileSystemEntries("/proc/self/fd"))
            {
                if (int.TryParse(Path.GetFileName(e), NumberStyles.None, CultureInfo.InvariantCulture, out int fd)) result.Add(fd);
            }
        }
        catch (IOException) { }
        return result;
    }

    /// <summary>
    /// Closes descriptors above 2 that we inherited without close-on-exec (a build tool's logger pipe, say): .NET
    /// marks all of its own close-on-exec, so these are exactly the ones that would keep a parent's pipe open for
    /// the domain's whole life, and QEMU would inherit them too.
    /// </summary>
    public static void CloseInheritedDescriptors()
    {
        foreach (var fd in OpenDescriptors())
        {
            if (fd <= 2) continue;
            int flags = Fcntl(fd, FGetFd, 0);
            if (flags >= 0 && (flags & FdCloExec) == 0) _ = Close(fd);
        }
    }

    /// <summary>True if a process with this pid exists (kill(pid, 0)); EPERM also means it exists.</summary>
    public static bool Exists(int pid)
    {
        if (pid <= 0) return false;
        if (Kill(pid, 0) == 0) return true;
        return Marshal.GetLastPInvokeError() == 1;
    }

    public static bool Signal(int pid, int signal) => pid > 0 && Kill(pid, signal) == 0;

    /// <summary>/proc/PID/stat field 22 (starttime, clock ticks since boot), to tell a process from a later one with its pid.</summary>
    public static long? StartTime(int pid) => StatField(pid, 22);

    /// <summary>utime + stime of a process in seconds (xl list's Time(s) column is the domain's CPU time).</summary>
    public static double CpuSeconds(int pid)
    {
        long? u = StatField(pid, 14), s = StatField(pid, 15);
        return u is null || s is null ? 0 : (u.Value + s.Value) / 100.0; // USER_HZ is 100 on Linux
    }

    /// <summary>Resident set size of a process in bytes (/proc/PID/statm field 2), 0 if it is gone.</summary>
    public static long ResidentBytes(int pid)
    {
        try
        {
            var parts = File.ReadAllText($"/proc/{pid}/statm").Split(' ');
            return parts.Length > 1 && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long pages) ? pages * Environment.SystemPageSize : 0;
        }
        catch (IOException) { return 0; }
        catch (UnauthorizedAccessException) { return 0; }
    }

    /// <summary>True if the process exists and is the one that started at <paramref name="startTime"/>.</summary>
    public static bool IsAlive(int pid, long? startTime)
    {
        if (!Exists(pid) || IsZombie(pid)) return false;
        if (startTime is null) return true;
        var now = StartTime(pid);
        return now is null || now == startTime;
    }

    /// <summary>A killed process whose parent is gone stays a zombie until init reaps it (kill(pid, 0) still succeeds): it runs no more.</summary>
    public static bool IsZombie(int pid)
    {
        string text;
        try { text = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
        int close = text.LastIndexOf(')');
        return close > 0 && text.Length > close + 2 && text[close + 2] is 'Z' or 'X';
    }

    private static long? StatField(int pid, int field)
    {
        string text;
        try { text = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
        int close = text.LastIndexOf(')');
        if (close < 0) return null;
        var rest = text[(close + 2)..].Split(' ');
        int index = field - 3; // fields 1 and 2 are pid and (comm)
        return index >= 0 && index < rest.Length && long.TryParse(rest[index], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v) ? v : null;
    }
}
