using System.Globalization;
using System.Net.Sockets;
using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Domains;

namespace DomBoot.Toolstack.Lifecycle;

/// <summary>Why a console session ended.</summary>
internal enum ConsoleEnd
{
    /// <summary>Ctrl-] (0x1d) arrived on the input; the domain keeps running.</summary>
    Detached,

    /// <summary>The input reached its end (a pipe closed); treated like a detach.</summary>
    InputClosed,

    /// <summary>The domain is gone: its folder was removed, it no longer runs, or another domain took its name.</summary>
    DomainGone,
}

/// <summary>
/// A client of a domain's serial console: domains/NAME/console.sock, the server end of QEMU's socket chardev
/// (`server=on,wait=off`, everything also logged to logs/NAME.console.log). Relays socket to output and input to
/// socket; Ctrl-] in the input detaches. When QEMU goes away because the domain rebooted (the supervisor starts a
/// new QEMU with a new console.sock), it reconnects, until the domain is gone.
/// QEMU serves one client at a time and leaves a second one queued in the listen backlog without a word, so a busy
/// console is detected up front (another peer of the socket in /proc/net/unix, or another domboot holding
/// domains/NAME/console.lock) and after connecting (our connection is still queued).
/// </summary>
internal sealed class ConsoleClient : IDisposable
{
    /// <summary>Ctrl-] as the terminal sends it (telnet's and virsh's escape).</summary>
    public const byte DetachByte = 0x1d;

    internal static class Limits
    {
        /// <summary>--replay prints at most this many lines.</summary>
        public const int MaxReplayLines = 100_000;

        /// <summary>... read from at most this many bytes at the end of the log (the guest writes it: no unbounded read).</summary>
        public const int MaxReplayBytes = 4 << 20;

        /// <summary>How long QEMU may take to accept our connection before we call the console busy.</summary>
        public static readonly TimeSpan AcceptWait = TimeSpan.FromSeconds(3);

        /// <summary>How long a first attach waits for a console socket to appear (a domain that is just rebooting).</summary>
        public static readonly TimeSpan FirstConnectWait = TimeSpan.FromSeconds(60);

        /// <summary>How long a client that just left may still show as attached.</summary>
        public static readonly TimeSpan LingerWait = TimeSpan.FromSeconds(1);

        public static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(100);
    }

    private readonly StateDirectory _state;
    private readonly string _uuid;
    private readonly string _folder;
    private FileLock? _lock;
    private volatile Socket? _socket;

    private ConsoleClient(StateDirectory state, string name, string uuid, string folder)
    {
        _state = state;
        Name = name;
        _uuid = uuid;
        _folder = folder;
    }

    /// <summary>The domain's name (resolved from the name or id given).</summary>
    public string Name { get; }

    public string SocketPath => Path.Combine(_folder, "console.sock");

    public string LogPath => Path.Combine(_state.Logs, Name + ".console.log");

    /// <summary>Finds the domain (by name or id; an unknown one is DomainNotFoundException, exit 66). Connects nothing yet.</summary>
    public static ConsoleClient For(StateDirectory state, string nameOrId)
    {
        ArgumentNullException.ThrowIfNull(state);
        var entry = new DomainStore(state).Find(nameOrId);
        return new ConsoleClient(state, entry.Record.Name, entry.Record.Uuid, entry.Folder);
    }

    /// <summary>The last <paramref name="lines"/> lines of the console log (raw guest bytes), empty if there is none.</summary>
    public byte[] ReplayTail(int lines)
    {
        if (lines <= 0 || !File.Exists(LogPath)) return [];
        using var f = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        long length = f.Length;
        int take = (int)Math.Min(length, Limits.MaxReplayBytes);
        var buffer = new byte[take];
        f.Seek(length - take, SeekOrigin.Begin);
        f.ReadExactly(buffer);
        return TailLines(buffer, Math.Min(lines, Limits.MaxReplayLines)).ToArray();
    }

    /// <summary>The last <paramref name="lines"/> lines of <paramref name="text"/> (a final line without '\n' counts).</summary>
    internal static ReadOnlySpan<byte> TailLines(ReadOnlySpan<byte> text, int lines)
    {
        if (lines <= 0) return [];
        int end = text.Length;
        if (end > 0 && text[end - 1] == (byte)'\n') end--;
        int start = end;
        for (int found = 0; found < lines; found++)
        {
            int nl = text[..start].LastIndexOf((byte)'\n');
            if (nl < 0) return text;
            start = nl;
        }
        return text[(start + 1)..];
    }

    /// <summary>
    /// Connects for the first time: takes domains/NAME/console.lock, refuses a console someone else is attached to
    /// (UnavailableException "console of NAME is already attached elsewhere"), waits out a reboot in progress.
    /// </summary>
    public async Task ConnectAsync(CancellationToken cancellationToken)
    {
        _lock ??= FileLock.TryAcquire(Path.Combine(_folder, "console.lock"), exclusive: true);
        if (_lock is null) throw Busy();
        var deadline = DateTime.UtcNow + Limits.FirstConnectWait;
        while (true)
        {
            if (await TryConnectAsync(cancellationToken).ConfigureAwait(false) is { } s)
            {
                _socket = s;
                return;
            }
            if (IsGone()) throw new DomainNotFoundException(Name);
            if (DateTime.UtcNow > deadline)
                throw new UnavailableException($"console of {Name}: {SocketPath} accepts no connection after {Limits.FirstConnectWait.TotalSeconds:0} s");
            await Task.Delay(Limits.Poll, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Relays until Ctrl-] or the end of <paramref name="input"/> (detach) or until the domain is gone; reconnects
    /// across reboots. <paramref name="notice"/> gets one-line status messages (reconnecting, reconnected).
    /// </summary>
    public async Task<ConsoleEnd> RunAsync(Stream input, Stream output, Action<string>? notice, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        if (_socket is null) await ConnectAsync(cancellationToken).ConfigureAwait(false);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        ConsoleEnd? inputEnd = null;
        // The input pump runs for the whole session, reboots included, so Ctrl-] works while we wait to reconnect.
        // A blocked read of a terminal cannot be cancelled; the caller exits after we return.
        _ = Task.Run(async () =>
        {
            try { inputEnd = await PumpInputAsync(input, stop.Token).ConfigureAwait(false); }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException) { inputEnd ??= ConsoleEnd.InputClosed; }
            finally { await stop.CancelAsync().ConfigureAwait(false); }
        }, CancellationToken.None);

        var buffer = new byte[16384];
        try
        {
            while (true)
            {
                var s = _socket!;
                try
                {
                    int n;
                    while ((n = await s.ReceiveAsync(buffer, SocketFlags.None, stop.Token).ConfigureAwait(false)) > 0)
                    {
                        await output.WriteAsync(buffer.AsMemory(0, n), stop.Token).ConfigureAwait(false);
                        await output.FlushAsync(stop.Token).ConfigureAwait(false);
                    }
                }
                catch (SocketException)
                {
                    // Reset by QEMU going away: the same as an orderly close.
                }
                _socket = null;
                s.Dispose();
                notice?.Invoke($"the console of {Name} closed; waiting for the domain to come back (Ctrl-] detaches)");
                var next = await ReconnectAsync(stop.Token).ConfigureAwait(false);
                if (next is null) return ConsoleEnd.DomainGone;
                _socket = next;
                notice?.Invoke($"reconnected to the console of {Name}");
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return inputEnd ?? ConsoleEnd.InputClosed;
        }
    }

    private async Task<ConsoleEnd> PumpInputAsync(Stream input, CancellationToken cancellationToken)
    {
        var buffer = new byte[4096];
        while (true)
        {
            int n = await input.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (n == 0) return ConsoleEnd.InputClosed;
            int at = buffer.AsSpan(0, n).IndexOf(DetachByte);
            int send = at < 0 ? n : at;
            if (send > 0) await SendAsync(buffer.AsMemory(0, send), cancellationToken).ConfigureAwait(false);
            if (at >= 0) return ConsoleEnd.Detached;
        }
    }

    /// <summary>Sends typed bytes to the guest; while the console is down (a reboot) they are dropped.</summary>
    private async Task SendAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        var s = _socket;
        if (s is null) return;
        try
        {
            while (bytes.Length > 0)
            {
                int sent = await s.SendAsync(bytes, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                bytes = bytes[sent..];
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // QEMU went away mid-write; the receive side notices and reconnects.
        }
    }

    /// <summary>Waits for the rebooted domain's new console socket; null once the domain is gone.</summary>
    private async Task<Socket?> ReconnectAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (IsGone()) return null;
            if (await TryConnectAsync(cancellationToken).ConfigureAwait(false) is { } s) return s;
            await Task.Delay(Limits.Poll, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>True once the domain's folder is gone, it runs no more, or a new domain (another uuid) has its name.</summary>
    private bool IsGone()
    {
        if (!Directory.Exists(_folder)) return true;
        try
        {
            var entry = new DomainStore(_state).Find(Name);
            return entry.Record.Uuid != _uuid;
        }
        catch (DomainNotFoundException)
        {
            return true;
        }
    }

    /// <summary>One attempt: null if nothing listens yet (no socket file, or a stale one of a QEMU that exited).</summary>
    private async Task<Socket?> TryConnectAsync(CancellationToken cancellationToken)
    {
        var path = SocketPath;
        if (!File.Exists(path)) return null;
        // A client that just detached may linger for a moment until QEMU's main loop notices.
        if (!await WaitForPeersAsync(path, queuedOnly: false, Limits.LingerWait, cancellationToken).ConfigureAwait(false)) throw Busy();
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await s.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException)
        {
            s.Dispose();
            return null;
        }
        // QEMU accepts at once when nobody is attached; if our connection stays queued, somebody got there first.
        if (await WaitForPeersAsync(path, queuedOnly: true, Limits.AcceptWait, cancellationToken).ConfigureAwait(false)) return s;
        s.Dispose();
        throw Busy();
    }

    /// <summary>Waits until the socket has no peers (or none queued); false if there still are some after <paramref name="wait"/>.</summary>
    private static async Task<bool> WaitForPeersAsync(string path, bool queuedOnly, TimeSpan wait, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + wait;
        while (true)
        {
            var peers = SocketPeers(File.Exists(ProcNetUnix) ? await File.ReadAllTextAsync(ProcNetUnix, cancellationToken).ConfigureAwait(false) : "", path);
            if ((queuedOnly ? peers.Queued : peers.Total) == 0) return true;
            if (DateTime.UtcNow > deadline) return false;
            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }
    }

    private UnavailableException Busy() => new($"console of {Name} is already attached elsewhere");

    private const string ProcNetUnix = "/proc/net/unix";

    /// <summary>
    /// Peers of the listening socket at <paramref name="path"/> in /proc/net/unix format (Num RefCount Protocol Flags
    /// Type St Inode Path): accepted connections (St 03, SS_CONNECTED) and ones still queued for accept (St 02,
    /// SS_CONNECTING); both carry the listener's path. The listener itself is St 01.
    /// </summary>
    internal static (int Connected, int Queued, int Total) SocketPeers(string procNetUnix, string path)
    {
        ArgumentNullException.ThrowIfNull(procNetUnix);
        int connected = 0, queued = 0;
        foreach (var line in procNetUnix.Split('\n').Skip(1))
        {
            var fields = line.Split(' ', 8, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 8 || fields[7].TrimEnd() != path) continue;
            if (!int.TryParse(fields[5], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int st)) continue;
            if (st == 3) connected++;
            else if (st == 2) queued++;
        }
        return (connected, queued, connected + queued);
    }

    public void Dispose()
    {
        _socket?.Dispose();
        _socket = null;
        _lock?.Dispose();
        _lock = null;
    }
}
