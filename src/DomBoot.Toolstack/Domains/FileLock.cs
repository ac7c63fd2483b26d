namespace DomBoot.Toolstack.Domains;

/// <summary>
/// An advisory flock(2) held for as long as this object lives: the kernel drops it when the holder dies, even by
/// kill -9, so a stale lock can never block anyone. .NET takes the lock itself when it opens a file:
/// FileShare.None = LOCK_EX, anything else = LOCK_SH, always non-blocking (a held lock is an IOException).
/// </summary>
internal sealed class FileLock : IDisposable
{
    private readonly FileStream _stream;

    private FileLock(FileStream stream) => _stream = stream;

    public string Path => _stream.Name;

    /// <summary>Takes the lock now or returns null if someone else holds a conflicting one.</summary>
    public static FileLock? TryAcquire(string path, bool exclusive)
    {
        try
        {
            var s = exclusive
                ? new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)
                : new FileStream(path, FileMode.OpenOrCreate, FileAccess.Read, FileShare.ReadWrite);
            return new FileLock(s);
        }
        catch (IOException ex) when (ex is not FileNotFoundException and not DirectoryNotFoundException and not PathTooLongException)
        {
            return null;
        }
    }

    /// <summary>Waits up to <paramref name="timeout"/> for an exclusive lock (the store lock is held for milliseconds).</summary>
    public static FileLock Acquire(string path, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (TryAcquire(path, exclusive: true) is { } l) return l;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{path}: still locked after {timeout.TotalSeconds:0.#} s");
            Thread.Sleep(10);
        }
    }

    /// <summary>True if someone holds the lock (probing takes and drops a shared lock).</summary>
    public static bool IsHeld(string path)
    {
        if (!File.Exists(path)) return false;
        using var probe = TryAcquire(path, exclusive: false);
        return probe is null;
    }

    public void Dispose() => _stream.Dispose();
}
