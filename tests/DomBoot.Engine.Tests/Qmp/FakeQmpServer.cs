using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using DomBoot.TestSupport;

namespace DomBoot.Engine.Tests.Qmp;

/// <summary>An in-process stand-in for QEMU's QMP server: one listening Unix socket in a temp folder.</summary>
internal sealed class FakeQmpServer : IDisposable
{
    public const string Greeting = """{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7"}, "capabilities": ["oob"]}}""";

    private readonly TempDir _dir = new("domboot-qmp");
    private readonly Socket _listener;

    public string SocketPath { get; }

    public FakeQmpServer()
    {
        SocketPath = _dir.File("qmp.sock");
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        _listener.Listen(4);
    }

    public async Task<Peer> AcceptAsync(CancellationToken cancellationToken) =>
        new(await _listener.AcceptAsync(cancellationToken).ConfigureAwait(false));

    public void Dispose()
    {
        _listener.Dispose();
        _dir.Dispose();
    }

    /// <summary>The server's end of one connection.</summary>
    internal sealed class Peer : IDisposable
    {
        private readonly Socket _socket;
        private readonly NetworkStream _stream;
        private readonly StreamReader _reader;

        public Peer(Socket socket)
        {
            _socket = socket;
            _stream = new NetworkStream(socket, ownsSocket: true);
            _reader = new StreamReader(_stream, new UTF8Encoding(false));
        }

        public Task SendAsync(string line) => SendRawAsync(Encoding.UTF8.GetBytes(line + "\n"));

        public async Task SendRawAsync(byte[] bytes) => await _stream.WriteAsync(bytes).ConfigureAwait(false);

        /// <summary>The next command the client sent, as an object.</summary>
        public async Task<JsonObject> ReadCommandAsync(CancellationToken cancellationToken)
        {
            var line = await _reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
            Assert.NotNull(line);
            return Assert.IsType<JsonObject>(JsonNode.Parse(line));
        }

        /// <summary>True once the client has closed its end (read returns end of stream).</summary>
        public async Task<bool> ClosedByClientAsync(CancellationToken cancellationToken) =>
            await _reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is null;

        public static string Return(JsonObject command, string value = "{}") => $$"""{"return": {{value}}, "id": "{{Id(command)}}"}""";

        public static string Id(JsonObject command) => command["id"]!.GetValue<string>();

        /// <summary>Greeting, then answers qmp_capabilities as QEMU does.</summary>
        public async Task HandshakeAsync(CancellationToken cancellationToken)
        {
            await SendAsync(Greeting).ConfigureAwait(false);
            var cmd = await ReadCommandAsync(cancellationToken).ConfigureAwait(false);
            Assert.Equal("qmp_capabilities", cmd["execute"]!.GetValue<string>());
            await SendAsync(Return(cmd)).ConfigureAwait(false);
        }

        public void Close()
        {
            try { _socket.Shutdown(SocketShutdown.Both); }
            catch (SocketException) { }
            _stream.Dispose();
        }

        public void Dispose()
        {
            _reader.Dispose();
            _stream.Dispose();
        }
    }
}
