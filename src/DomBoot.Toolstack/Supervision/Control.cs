using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DomBoot.Formats.Errors;

namespace DomBoot.Toolstack.Supervision;

/// <summary>
/// The supervisor's control socket: one JSON object per line each way. Request {"op": "pause", ...}; answer
/// {"ok": true, "result": ...} or {"ok": false, "error": "one line", "kind": "usage|data|unavailable|io|missing"}.
/// Lines are capped; a peer that sends garbage gets an error line and is disconnected.
/// </summary>
internal static class Control
{
    public const int MaxLineBytes = 64 * 1024;
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Sends one request and returns its result, or throws the error the supervisor answered.</summary>
    public static async Task<JsonNode?> CallAsync(string socketPath, string op, JsonObject? args, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(op);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cts.Token).ConfigureAwait(false);
        }
        catch (SocketException ex)
        {
            throw new SupervisorGoneException($"{socketPath}: the domain's supervisor does not answer ({ex.SocketErrorCode})");
        }
        var request = args is null ? new JsonObject() : (JsonObject)args.DeepClone();
        request["op"] = op;
        using var stream = new NetworkStream(socket, ownsSocket: false);
        try
        {
            await stream.WriteAsync(Encoding.UTF8.GetBytes(request.ToJsonString() + "\n"), cts.Token).ConfigureAwait(false);
            var line = await ReadLineAsync(stream, cts.Token).ConfigureAwait(false)
                ?? throw new SupervisorGoneException($"{socketPath}: the supervisor closed the connection without answering {op}");
            var answer = Parse(line, socketPath);
            if (answer["ok"] is JsonValue ok && ok.TryGetValue(out bool isOk) && isOk) return answer["result"];
            throw ErrorOf(answer);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"{op}: no answer from the domain's supervisor within {timeout.TotalSeconds:0.#} s");
        }
        catch (IOException ex) when (ex is not FileNotFoundException && ex.InnerException is SocketException)
        {
            throw new SupervisorGoneException($"{socketPath}: connection to the supervisor lost during {op}");
        }
    }

    /// <summary>The exception an {"ok": false, "error", "kind"} answer stands for (the same kinds map to the same exit codes).</summary>
    internal static Exception ErrorOf(JsonObject answer)
    {
        string error = answer["error"] is JsonValue e && e.TryGetValue(out string? text) ? text : "failed";
        return (answer["kind"] is JsonValue k && k.TryGetValue(out string? kind) ? kind : "io") switch
        {
            "usage" => new InvalidRequestException(error),
            "data" => new MalformedDataException(error),
            "unavailable" => new UnavailableException(error),
            "missing" => new FileNotFoundException(error),
            "timeout" => new TimeoutException(error),
            _ => new IOException(error),
        };
    }

    internal static JsonObject Parse(string line, string where)
    {
        try
        {
            return JsonNode.Parse(line) as JsonObject ?? throw new MalformedDataException(where, -1, $"control line {Quote.Text(line)} is not a JSON object");
        }
        catch (JsonException ex)
        {
            throw new MalformedDataException(where, -1, $"control line {Quote.Text(line)} is not JSON: {ex.Message}");
        }
    }

    /// <summary>Reads one '\n'-terminated line of at most <see cref="MaxLineBytes"/>; null at end of stream.</summary>
    internal static async Task<string?> ReadLineAsync(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new MemoryStream();
        var one = new byte[1];
        while (true)
        {
            int n = await stream.ReadAsync(one, cancellationToken).ConfigureAwait(false);
            if (n == 0) return buffer.Length == 0 ? null : Encoding.UTF8.GetString(buffer.ToArray());
            if (one[0] == (byte)'\n') return Encoding.UTF8.GetString(buffer.ToArray());
            if (buffer.Length >= MaxLineBytes) throw new MalformedDataException("control socket", buffer.Length, $"line is longer than {MaxLineBytes} bytes");
            buffer.WriteByte(one[0]);
        }
    }
}

/// <summary>The supervisor is not there (killed, or never started): the domain is orphaned or stale.</summary>
internal sealed class SupervisorGoneException(string message) : IOException(message);

/// <summary>Serves the control socket: each connection may send requests; each request is answered by <paramref name="handle"/>.</summary>
internal sealed class ControlServer(string socketPath, Func<JsonObject, CancellationToken, Task<JsonNode?>> handle, TextWriter log) : IAsyncDisposable
{
    private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    private readonly CancellationTokenSource _stop = new();
    private Task? _accept;

    public void Start()
    {
        if (File.Exists(socketPath)) File.Delete(socketPath); // a stale socket from a killed supervisor of the same folder
        _listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _listener.Listen(16);
        _accept = Task.Run(AcceptLoopAsync);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
            catch (SocketException) { return; }
            catch (ObjectDisposedException) { return; }
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(Socket client)
    {
        using var s = client;
        using var stream = new NetworkStream(client, ownsSocket: false);
        try
        {
            while (true)
            {
                var line = await Control.ReadLineAsync(stream, _stop.Token).ConfigureAwait(false);
                if (line is null) return;
                JsonObject answer;
                try
                {
                    var request = Control.Parse(line, "control request");
                    var result = await handle(request, _stop.Token).ConfigureAwait(false);
                    answer = new JsonObject { ["ok"] = true, ["result"] = result };
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !_stop.IsCancellationRequested)
                {
                    answer = new JsonObject { ["ok"] = false, ["error"] = OneLine(ex.Message), ["kind"] = Kind(ex) };
                    if (Kind(ex) == "io") await log.WriteLineAsync($"domboot supervisor: control request failed: {ex}").ConfigureAwait(false);
                }
                await stream.WriteAsync(Encoding.UTF8.GetBytes(answer.ToJsonString() + "\n"), _stop.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or SocketException or MalformedDataException or ObjectDisposedException) { }
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");

    internal static string Kind(Exception ex) => ex switch
    {
        InvalidRequestException or ArgumentException => "usage",
        MalformedDataException or UnsupportedFeatureException => "data",
        UnavailableException => "unavailable",
        FileNotFoundException or DirectoryNotFoundException => "missing",
        TimeoutException => "timeout",
        _ => "io",
    };

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        if (_accept is not null) await _accept.ConfigureAwait(false);
        _stop.Dispose();
        try { File.Delete(socketPath); } catch (IOException) { }
    }
}
