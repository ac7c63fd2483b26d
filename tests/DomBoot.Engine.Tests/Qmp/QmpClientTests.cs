using System.Text;
using System.Text.Json.Nodes;
using DomBoot.Engine.Qmp;
using DomBoot.Formats.Errors;
using DomBoot.TestSupport;

namespace DomBoot.Engine.Tests.Qmp;

/// <summary>QmpClient against an in-process fake QMP server; every wait is bounded so a bug fails instead of hanging.</summary>
public sealed class QmpClientTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private readonly FakeQmpServer _server = new();
    private readonly CancellationTokenSource _cts = new(TimeSpan.FromSeconds(30));

    public void Dispose()
    {
        _server.Dispose();
        _cts.Dispose();
    }

    private CancellationToken Ct => _cts.Token;

    /// <summary>Client connected and in command mode, and the server's end of the connection.</summary>
    private async Task<(QmpClient Client, FakeQmpServer.Peer Peer)> ConnectedAsync()
    {
        var accept = _server.AcceptAsync(Ct);
        var connect = QmpClient.ConnectAsync(_server.SocketPath, TimeSpan.FromSeconds(5), Ct);
        var peer = await accept.WaitAsync(Bound);
        await peer.HandshakeAsync(Ct).WaitAsync(Bound);
        return (await connect.WaitAsync(Bound), peer);
    }

    [Fact]
    public async Task ConnectAsync_ReadsTheGreetingAndNegotiatesCapabilities()
    {
        var (client, peer) = await ConnectedAsync();
        await using (client)
        using (peer)
        {
            Assert.Equal(7, client.Greeting!["QMP"]!["version"]!["qemu"]!["major"]!.GetValue<int>());
            Assert.Equal(_server.SocketPath, client.SocketPath);

            var run = client.ExecuteAsync("query-status", null, Bound, Ct);
            var cmd = await peer.ReadCommandAsync(Ct).WaitAsync(Bound);
            Assert.Equal("query-status", cmd["execute"]!.GetValue<string>());
            Assert.Null(cmd["arguments"]);
            await peer.SendAsync(FakeQmpServer.Peer.Return(cmd, """{"status": "running", "running": true}"""));
            var result = await run.WaitAsync(Bound);
            Assert.Equal("running", result!["status"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task ExecuteAsync_SendsArgumentsAndMatchesOutOfOrderAnswersById()
    {
        var (client, peer) = await ConnectedAsync();
        await using (client)
        using (peer)
        {
            var a = client.ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = "info a" }, Bound, Ct);
            var b = client.ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = "info b" }, Bound, Ct);
            var first = await peer.ReadCommandAsync(Ct).WaitAsync(Bound);
            var second = await peer.ReadCommandAsync(Ct).WaitAsync(Bound);
            Assert.NotEqual(FakeQmpServer.Peer.Id(first), FakeQmpServer.Peer.Id(second));

            // an answer for an id nobody sent, and one without an id, are ignored
            await peer.SendAsync("""{"return": {}, "id": "not-ours"}""");
            await peer.SendAsync("""{"return": {}}""");
            // answer the later command first, each echoing what it was asked
            foreach (var cmd in new[] { second, first })
                await peer.SendAsync(FakeQmpServer.Peer.Return(cmd, "\"" + cmd["arguments"]!["command-line"]!.GetValue<string>() + "\""));

            Assert.Equal("info a", (await a.WaitAsync(Bound))!.GetValue<string>());
            Assert.Equal("info b", (await b.WaitAsync(Bound))!.GetValue<string>());
        }
    }

    [Fact]
    public async Task Events_AreDeliveredWhileACommandIsPending()
    {
        var (client, peer) = await ConnectedAsync();
        await using (client)
        using (peer)
        {
            var run = client.ExecuteAsync("system_powerdown", null, Bound, Ct);
            var cmd = await peer.ReadCommandAsync(Ct).WaitAsync(Bound);
            await peer.SendAsync("""{"event": "POWERDOWN", "timestamp": {"seconds": 1700000000, "microseconds": 5}}""");
            await peer.SendAsync("""{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}, "timestamp": {"seconds": 1700000001, "microseconds": 0}}""");

            var e1 = await client.Events.ReadAsync(Ct).AsTask().WaitAsync(Bound);
            var e2 = await client.Events.ReadAsync(Ct).AsTask().WaitAsync(Bound);
            Assert.False(run.IsCompleted);
            Assert.Equal(("POWERDOWN", DateTimeOffset.FromUnixTimeSeconds(1700000000)), (e1.Name, e1.Timestamp));
            Assert.Null(e1.Data);
            Assert.Equal("SHUTDOWN", e2.Name);
            Assert.Equal("guest-shutdown", e2.Data!["reason"]!.GetValue<string>());

            await peer.SendAsync(FakeQmpServer.Peer.Return(cmd));
            Assert.NotNull(await run.WaitAsync(Bound));
        }
    }

    [Fact]
    public async Task ExecuteAsync_ErrorAnswer_ThrowsQmpCommandException()
    {
        var (client, peer) = await ConnectedAsync();
        await using (client)
        using (peer)
        {
            var run = client.ExecuteAsync("cont", null, Bound, Ct);
            var cmd = await peer.ReadCommandAsync(Ct).WaitAsync(Bound);
            await peer.SendAsync($$"""{"error": {"class": "GenericError", "desc": "x"}, "id": "{{FakeQmpServer.Peer.Id(cmd)}}"}""");
            var ex = await Assert.ThrowsAsync<QmpCommandException>(() => run.WaitAsync(Bound));
            Assert.Equal("GenericError", ex.ErrorClass);
            Assert.Equal("QMP command cont failed: GenericError: \"x\"", ex.Message);

            // the connection is still usable
            var next = client.ExecuteAsync("query-status", null, Bound, Ct);
            await peer.SendAsync(FakeQmpServer.Peer.Return(await peer.ReadCommandAsync(Ct).WaitAsync(Bound)));
            Assert.NotNull(await next.WaitAsync(Bound));
        }
    }

    [Theory]
    [InlineData("hello, I am not JSON")]
    [InlineData("""["QMP"]""")]
    [InlineData("""{"qmp": {}}""")]
    [InlineData("""{"QMP": "version 7"}""")]
    public async Task ConnectAsync_RejectsABadGreeting(string greeting)
    {
        var accept = _server.AcceptAsync(Ct);
        var connect = QmpClient.ConnectAsync(_server.SocketPath, TimeSpan.FromSeconds(5), Ct);
        using var peer = await accept.WaitAsync(Bound);
        await peer.SendAsync(greeting);
        var ex = await Assert.ThrowsAsync<MalformedDataException>(() => connect.WaitAsync(Bound));
        Assert.Equal(("QMP greeting", -1L), (ex.Structure, ex.Offset));
        Assert.True(await peer.ClosedByClientAsync(Ct).WaitAsync(Bound), "the client kept the socket after a bad greeting");
    }

    [Fact]
    public async Task ConnectAsync_CapabilitiesRefused_ThrowsAndClosesTheSocket()
    {
        var accept = _server.AcceptAsync(Ct);
        var connect = QmpClient.ConnectAsync(_server.SocketPath, TimeSpan.FromSeconds(5), Ct);
        using var peer = await accept.WaitAsync(Bound);
        await peer.SendAsync(FakeQmpServer.Greeting);
        var cmd = await peer.ReadCommandAsync(Ct).WaitAsync(Bound);
        await peer.SendAsync($$"""{"error": {"class": "CommandNotFound", "desc": "no"}, "id": "{{FakeQmpServer.Peer.Id(cmd)}}"}""");
        var ex = await Assert.ThrowsAsync<QmpCommandException>(() => connect.WaitAsync(Bound));
        Assert.Equal("CommandNotFound", ex.ErrorClass);
        Assert.True(await peer.ClosedByClientAsync(Ct).WaitAsync(Bound), "the client kept the socket after a failed handshake");
    }

    public static TheoryData<string> Faults => new()
    {
        "line longer than MaxLineBytes",
        "not JSON",
        "not an object",
        "closed mid-line",
        "closed",
    };

    [Theory]
    [MemberData(nameof(Faults))]
    public async Task ExecuteAsync_ConnectionFault_FailsThePendingCommandWithIOException(string fault)
    {
        var (client, peer) = await ConnectedAsync();
        await using (client)
        using (peer)
        {
            var run = client.ExecuteAsync("query-status", null, Bound, Ct);
            _ = await peer.ReadCommandAsync(Ct).WaitAsync(Bound);
            switch (fault)
            {
                case "line longer than MaxLineBytes":
                    // one byte over the limit and no newline: the client must give up, not buffer on
                    var big = new byte[QmpClient.MaxLineBytes + 1];
                    big.AsSpan().Fill((byte)' ');
                    await peer.SendRawAsync(big).WaitAsync(Bound);
                    break;
                case "not JSON":
                    await peer.SendAsync("{\"return\": ");
                    break;
                case "not an object":
                    await peer.SendAsync("42");
                    break;
                case "closed mid-line":
                    await peer.SendRawAsync(Encoding.UTF8.GetBytes("{\"return\": {}, \"id\""));
                    peer.Close();
                    break;
                case "closed":
                    peer.Close();
                    break;
                default:
                    Assert.Fail("no such fault: " + fault);
                    break;
            }
            var ex = await Assert.ThrowsAsync<IOException>(() => run.WaitAsync(Bound));
            Assert.StartsWith("QMP connection lost: ", ex.Message, StringComparison.Ordinal);
            Assert.IsType(fault == "closed" ? typeof(EndOfStreamException) : typeof(MalformedDataException), ex.InnerException);

            // later commands fail at once, and the event stream ends
            await Assert.ThrowsAsync<IOException>(() => client.ExecuteAsync("query-status", null, Bound, Ct).WaitAsync(Bound));
            await client.Events.Completion.WaitAsync(Bound);
        }
    }

    [Fact]
    public async Task ExecuteAsync_NoAnswer_TimesOutWithinTheGivenTimeout()
    {
        var (client, peer) = await ConnectedAsync();
        await using (client)
        using (peer)
        {
            var run = client.ExecuteAsync("query-status", null, TimeSpan.FromMilliseconds(300), Ct);
            var cmd = await peer.ReadCommandAsync(Ct).WaitAsync(Bound);
            var ex = await Assert.ThrowsAsync<TimeoutException>(() => run.WaitAsync(Bound));
            Assert.Contains("query-status", ex.Message, StringComparison.Ordinal);

            // a late answer to the abandoned command is ignored; the next command still works
            await peer.SendAsync(FakeQmpServer.Peer.Return(cmd));
            var next = client.ExecuteAsync("query-name", null, Bound, Ct);
            await peer.SendAsync(FakeQmpServer.Peer.Return(await peer.ReadCommandAsync(Ct).WaitAsync(Bound), """{"name": "g"}"""));
            Assert.Equal("g", (await next.WaitAsync(Bound))!["name"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task ExecuteAsync_CallerCancellation_IsNotReportedAsTimeout()
    {
        var (client, peer) = await ConnectedAsync();
        await using (client)
        using (peer)
        {
            using var cancel = new CancellationTokenSource();
            var run = client.ExecuteAsync("query-status", null, Bound, cancel.Token);
            _ = await peer.ReadCommandAsync(Ct).WaitAsync(Bound);
            await cancel.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(Bound));
        }
    }

    [Fact]
    public async Task ConnectAsync_SocketThatNeverAppears_TimesOut()
    {
        using var dir = new TempDir();
        var ex = await Assert.ThrowsAsync<TimeoutException>(() =>
            QmpClient.ConnectAsync(dir.File("never.sock"), TimeSpan.FromMilliseconds(300), Ct).WaitAsync(Bound));
        Assert.Contains("never.sock", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectAsync_ServerThatNeverGreets_TimesOut()
    {
        var accept = _server.AcceptAsync(Ct);
        var connect = QmpClient.ConnectAsync(_server.SocketPath, TimeSpan.FromMilliseconds(300), Ct);
        using var peer = await accept.WaitAsync(Bound);
        await Assert.ThrowsAsync<TimeoutException>(() => connect.WaitAsync(Bound));
    }
}
