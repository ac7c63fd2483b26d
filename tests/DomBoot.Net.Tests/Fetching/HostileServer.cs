using System.Net;
using System.Net.Sockets;
using System.Text;

namespace DomBoot.Net.Tests.Fetching;

/// <summary>A tiny misbehaving HTTP server on 127.0.0.1: each connection reads one request head and lets the
/// test's handler write whatever it likes, then closes.</summary>
internal sealed class HostileServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _requests;

    public HostileServer(Func<int, string, NetworkStream, CancellationToken, Task> handler)
    {
        _listener.Start();
        _loop = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
                catch (OperationCanceledException) { break; }
                catch (SocketException) { break; }
                _ = Task.Run(async () =>
                {
                    using (client)
                    {
                        try
                        {
                            var s = client.GetStream();
                            var head = await ReadHeadAsync(s, _stop.Token);
                            int n = Interlocked.Increment(ref _requests);
                            await handler(n, head, s, _stop.Token);
                        }
                        catch (IOException) { }
                        catch (OperationCanceledException) { }
                        catch (SocketException) { }
                    }
                });
            }
        });
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public int Requests => Volatile.Read(ref _requests);

    public Uri Url(string path) => new($"http://127.0.0.1:{Port}{path}");

    private static async Task<string> ReadHeadAsync(NetworkStream s, CancellationToken ct)
    {
        var sb = new StringBuilder();
        var one = new byte[1];
        while (!sb.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && sb.Length < 16384)
        {
            if (await s.ReadAsync(one, ct) == 0) break;
            sb.Append((char)one[0]);
        }
        return sb.ToString();
    }

    public static Task WriteAsync(NetworkStream s, string text, CancellationToken ct) => s.WriteAsync(Encoding.Latin1.GetBytes(text), ct).AsTask();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try { await _loop; } catch (OperationCanceledException) { }
        _stop.Dispose();
    }
}
