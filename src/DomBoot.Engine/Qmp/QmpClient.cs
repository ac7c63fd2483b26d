using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using DomBoot.Formats.Errors;

namespace DomBoot.Engine.Qmp;

/// <summary>An asynchronous QMP event such as SHUTDOWN or GUEST_PANICKED.</summary>
public sealed record QmpEvent(string Name, JsonObject? Data, DateTimeOffset Timestamp);

/// <summary>QEMU answered a command with {"error": {...}}.</summary>
public sealed class QmpCommandException : Exception
{
    public string ErrorClass { get; }

    public QmpCommandException(string command, string errorClass, string description)
        : base($"QMP command {command} failed: {errorClass}: {description}") => ErrorClass = errorClass;

    public QmpCommandException() : this("?", "GenericError", "failed") { }

    public QmpCommandException(string message) : base(message) => ErrorClass = "GenericError";

    public QmpCommandException(string message, Exception innerException) : base(message, innerException) => ErrorClass = "GenericError";
}

/// <summary>
/// One QMP connection over one Unix socket (QEMU Machine Protocol, docs/interop/qmp-spec): reads the greeting,
/// negotiates capabilities, matches responses to commands by "id", routes events to <see cref="Events"/>.
/// Lines longer than <see cref="MaxLineBytes"/> or not JSON objects are protocol errors, never crashes.
/// </summary>
public sealed class QmpClient : IAsyncDisposable
{
    public const int MaxLineBytes = 1 << 20;
    public const int MaxPendingEvents = 4096;
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (string Command, TaskCompletionSource<JsonNode?> Answer)> _pending = [];
    private readonly Channel<QmpEvent> _events = Channel.CreateBounded<QmpEvent>(
        new BoundedChannelOptions(MaxPendingEvents) { FullMode = BoundedChannelFullMode.DropOldest });
    private readonly CancellationTokenSource _readerStop = new();
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private Task? _reader;
    private long _nextId;
    private Exception? _fault;

    public JsonObject? Greeting { get; private set; }
    public ChannelReader<QmpEvent> Events => _events.Reader;
    public string SocketPath { get; }

    private QmpClient(Socket socket, string path)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        SocketPath = path;
    }

    /// <summary>Connects, retrying until QEMU has created the socket, then reads the greeting and enters command mode.</summary>
    public static async Task<QmpClient> ConnectAsync(string socketPath, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        while (true)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cts.Token).ConfigureAwait(false);
                var client = new QmpClient(socket, socketPath);
                try { await client.HandshakeAsync(cts.Token).ConfigureAwait(false); }
                catch
                {
                    // a failed handshake must not leave the socket and the reader task behind
                    await client.DisposeAsync().ConfigureAwait(false);
                    throw;
                }
                return client;
            }
            catch (SocketException)
            {
                socket.Dispose(); // not there yet (or refused): retry after the delay below, which also sees the timeout
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                socket.Dispose();
                throw NoGreeting(socketPath, timeout);
            }
            // outside the catch blocks: a delay cancelled by the timeout must become a TimeoutException too
            try { await Task.Delay(20, cts.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested) { throw NoGreeting(socketPath, timeout); }
        }
    }

    private static TimeoutException NoGreeting(string socketPath, TimeSpan timeout) =>
        new($"QMP socket {socketPath}: no greeting within {timeout.TotalSeconds:0.#} s");

    /// <summary>Wraps an already-connected stream (tests use a socket pair or an in-process fake server).</summary>
    internal static async Task<QmpClient> AttachAsync(Socket connected, CancellationToken cancellationToken)
    {
        var client = new QmpClient(connected, "(attached)");
        await client.HandshakeAsync(cancellationToken).ConfigureAwait(false);
        return client;
    }

    private async Task HandshakeAsync(CancellationToken cancellationToken)
    {
        var line = await ReadLineAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new MalformedDataException("QMP greeting", -1, "connection closed before the greeting");
        var obj = ParseObject(line, "QMP greeting");
        if (obj["QMP"] is not JsonObject)
            throw new MalformedDataException("QMP greeting", -1, $"first line is {Quote.Text(line)}; expected an object with a \"QMP\" member");
        Greeting = obj;
        _reader = Task.Run(() => ReadLoopAsync(_readerStop.Token), CancellationToken.None);
        await ExecuteAsync("qmp_capabilities", null, DefaultTimeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs one command and returns its "return" value; throws QmpCommandException on {"error": ...}.</summary>
    public async Task<JsonNode?> ExecuteAsync(string command, JsonObject? arguments, TimeSpan timeout, CancellationToken cancellationToken)
    {
        string id = "domboot-" + Interlocked.Increment(ref _nextId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var tcs = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (_fault is not null) throw new IOException($"QMP connection lost: {_fault.Message}", _fault);
            _pending[id] = (command, tcs);
        }
        var request = new JsonObject { ["execute"] = command, ["id"] = id };
        if (arguments is not null) request["arguments"] = arguments.DeepClone();
        var bytes = Encoding.UTF8.GetBytes(request.ToJsonString() + "\n");
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            await _writeLock.WaitAsync(cts.Token).ConfigureAwait(false);
            try { await _stream.WriteAsync(bytes, cts.Token).ConfigureAwait(false); }
            finally { _writeLock.Release(); }
            using (cts.Token.Register(() => tcs.TrySetCanceled(cts.Token)))
                return await tcs.Task.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"QMP command {command}: no answer within {timeout.TotalSeconds:0.#} s");
        }
        finally
        {
            lock (_gate) _pending.Remove(id);
        }
    }

    private async Task ReadLoopAsync(CancellationToken cancellationToken)
    {
        Exception? fault = null;
        try
        {
            while (true)
            {
                var line = await ReadLineAsync(cancellationToken).ConfigureAwait(false);
                if (line is null) { fault = new EndOfStreamException("QEMU closed the QMP socket"); break; }
                if (line.Length == 0) continue;
                Dispatch(ParseObject(line, "QMP message"));
            }
        }
        catch (OperationCanceledException) { fault = new ObjectDisposedException(nameof(QmpClient)); }
        catch (Exception ex) when (ex is IOException or MalformedDataException or SocketException or ObjectDisposedException)
        {
            fault = ex;
        }
        lock (_gate)
        {
            _fault = fault;
            foreach (var (_, p) in _pending.Values) p.TrySetException(new IOException($"QMP connection lost: {fault.Message}", fault));
            _pending.Clear();
        }
        _events.Writer.TryComplete();
    }

    private void Dispatch(JsonObject msg)
    {
        if (msg["event"] is JsonValue ev && ev.TryGetValue(out string? name))
        {
            var ts = DateTimeOffset.UtcNow;
            if (msg["timestamp"] is JsonObject t && t["seconds"] is JsonValue s && s.TryGetValue(out long sec))
                ts = DateTimeOffset.FromUnixTimeSeconds(sec);
            _events.Writer.TryWrite(new QmpEvent(name, msg["data"] as JsonObject, ts));
            return;
        }
        string? id = msg["id"] is JsonValue idv && idv.TryGetValue(out string? sid) ? sid : null;
        if (id is null) return; // a response to nobody (or an id we never sent): ignore, as the spec allows
        string command;
        TaskCompletionSource<JsonNode?> tcs;
        lock (_gate)
        {
            if (!_pending.TryGetValue(id, out var p)) return;
            (command, tcs) = p;
        }
        if (msg["error"] is JsonObject err)
        {
            string cls = err["class"] is JsonValue c && c.TryGetValue(out string? cs) ? cs : "GenericError";
            string desc = err["desc"] is JsonValue d && d.TryGetValue(out string? ds) ? ds : "";
            tcs.TrySetException(new QmpCommandException(command, cls, Quote.Text(desc)));
        }
        else
        {
            tcs.TrySetResult(msg["return"]?.DeepClone());
        }
    }

    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _bufStart, _bufEnd;

    /// <summary>Reads one LF-terminated line, bounded by MaxLineBytes; null at end of stream.</summary>
    private async Task<string?> ReadLineAsync(CancellationToken cancellationToken)
    {
        var line = new MemoryStream();
        while (true)
        {
            int nl = Array.IndexOf(_buffer, (byte)'\n', _bufStart, _bufEnd - _bufStart);
            int take = (nl >= 0 ? nl : _bufEnd) - _bufStart;
            if (line.Length + take > MaxLineBytes)
                throw new MalformedDataException("QMP message", -1, $"line is longer than {MaxLineBytes} bytes");
            line.Write(_buffer, _bufStart, take);
            if (nl >= 0)
            {
                _bufStart = nl + 1;
                var text = Encoding.UTF8.GetString(line.GetBuffer(), 0, (int)line.Length);
                return text.TrimEnd('\r');
            }
            _bufStart = _bufEnd = 0;
            int n = await _stream.ReadAsync(_buffer, cancellationToken).ConfigureAwait(false);
            if (n == 0) return line.Length == 0 ? null : throw new MalformedDataException("QMP message", -1, "connection closed in the middle of a line");
            _bufEnd = n;
        }
    }

    private static JsonObject ParseObject(string line, string what)
    {
        try
        {
            return JsonNode.Parse(line, documentOptions: new JsonDocumentOptions { MaxDepth = 64 }) as JsonObject
                ?? throw new MalformedDataException(what, -1, $"line is {Quote.Text(line)}; expected a JSON object");
        }
        catch (JsonException ex)
        {
            throw new MalformedDataException(what, -1, $"line is {Quote.Text(line)}; expected JSON ({ex.Message.Split('.')[0]})");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _readerStop.CancelAsync().ConfigureAwait(false);
        try { _socket.Shutdown(SocketShutdown.Both); }
        catch (SocketException) { }
        catch (ObjectDisposedException) { }
        await _stream.DisposeAsync().ConfigureAwait(false);
        if (_reader is not null)
        {
            try { await _reader.ConfigureAwait(false); }
            catch (OperationCanceledException) { }
        }
        _readerStop.Dispose();
        _writeLock.Dispose();
    }
}
