using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace DomBoot.Cli.Tests.Domains;

/// <summary>The supervisor's control socket under hostile input: one error line per bad request, and it stays up.</summary>
public sealed class ControlSocketTests
{
    private static string Exchange(string socketPath, byte[] request)
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Connect(new UnixDomainSocketEndPoint(socketPath));
        s.ReceiveTimeout = 10_000;
        s.Send(request);
        var buffer = new byte[65536];
        var sb = new StringBuilder();
        while (!sb.ToString().Contains('\n', StringComparison.Ordinal))
        {
            int n;
            try { n = s.Receive(buffer); }
            catch (SocketException) { break; }
            if (n == 0) break;
            sb.Append(Encoding.UTF8.GetString(buffer, 0, n));
        }
        return sb.ToString().Trim();
    }

    [Fact]
    public void ControlSocket_BadRequests_GetOneErrorLineEachAndTheDomainRunsOn()
    {
        using var h = new DomainHarness();
        h.Ok("create", h.KernelConfig("ctl"));
        h.WaitForConsole("ctl", "^GUEST-UP");
        var socket = Path.Combine(h.StateDir, "domains", "ctl", "control.sock");

        using (var doc = JsonDocument.Parse(Exchange(socket, "not json at all\n"u8.ToArray())))
        {
            Assert.False(doc.RootElement.GetProperty("ok").GetBoolean());
            Assert.Equal("data", doc.RootElement.GetProperty("kind").GetString());
        }
        using (var doc = JsonDocument.Parse(Exchange(socket, "{\"op\":\"format-the-host\"}\n"u8.ToArray())))
        {
            Assert.Equal("usage", doc.RootElement.GetProperty("kind").GetString());
            Assert.Contains("unknown control operation", doc.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
        }
        using (var doc = JsonDocument.Parse(Exchange(socket, "[1,2,3]\n"u8.ToArray())))
            Assert.False(doc.RootElement.GetProperty("ok").GetBoolean());

        // A line longer than the cap is cut off: the connection closes, nothing is buffered without bound.
        var huge = Encoding.ASCII.GetBytes(new string('x', 200_000) + "\n");
        string answer = "";
        try { answer = Exchange(socket, huge); }
        catch (SocketException) { }
        Assert.DoesNotContain("\"ok\":true", answer, StringComparison.Ordinal);

        // Still supervised and obedient.
        h.Ok("pause", "ctl");
        Assert.Equal("paused", h.Listed("ctl")!.Value.GetProperty("state").GetString());
        h.Ok("unpause", "ctl");
        Assert.Equal("running", h.Listed("ctl")!.Value.GetProperty("state").GetString());
        h.Ok("destroy", "ctl");
    }
}
