using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using DomBoot.Engine.Accel;
using DomBoot.Engine.Planning;
using DomBoot.Engine.Running;
using DomBoot.TestSupport;

namespace DomBoot.Net.Tests.Netboot;

/// <summary>`run --netboot`: plans for QEMU's iPXE ROM, and a guest that fetches its kernel and initrd over HTTP under TCG.</summary>
public sealed class NetbootTests : IDisposable
{
    private static readonly AcceleratorChoice Tcg = AcceleratorDetector.Choose(AcceleratorRequest.Tcg, GuestHarness.NoKvm);
    private readonly TempDir _dir = new("domboot-netboot");

    public void Dispose() => _dir.Dispose();

    private RuntimePaths Runtime() => GuestHarness.Runtime(_dir);

    [Fact]
    public void Plan_RewritesLoopbackToTheHostAddressAndUsesTheIpxeRom()
    {
        var plan = BootPlanner.PlanNetboot(new BootRequest { KernelPath = "", Netboot = "http://127.0.0.1:8080/boot.ipxe", MemoryMiB = 256 }, Tcg, Runtime());
        Assert.Equal(BootMethod.Netboot, plan.Method);
        Assert.Equal("http://10.0.2.2:8080/boot.ipxe", plan.Netboot!.GuestUrl);
        var argv = plan.QemuArgv;
        Assert.Equal("user,id=n0,net=10.0.2.0/24,host=10.0.2.2,dhcpstart=10.0.2.15,bootfile=http://10.0.2.2:8080/boot.ipxe", argv[argv.ToList().IndexOf("-netdev") + 1]);
        Assert.Contains("virtio-net-pci,netdev=n0,disable-legacy=on,romfile=" + QemuCommandLine.IpxeRom, argv);
        Assert.Equal("n", argv[argv.ToList().IndexOf("-boot") + 1]);
        Assert.DoesNotContain("-kernel", argv);
        Assert.Contains("network boot", BootPlanText.Render(plan), StringComparison.Ordinal);
    }

    [Fact]
    public void Plan_CstrapIpFormBecomesTheUserNetwork()
    {
        var plan = BootPlanner.PlanNetboot(new BootRequest
        {
            KernelPath = "", Netboot = "http://localhost:81/x,y", NetbootAddress = "ip=192.168.7.20:255.255.255.0:192.168.7.1", MemoryMiB = 256,
        }, Tcg, Runtime());
        var nb = plan.Netboot!;
        Assert.Equal("192.168.7.0/24", nb.Network);
        Assert.Equal("192.168.7.20", nb.GuestAddress);
        Assert.Equal("192.168.7.1", nb.HostAddress);
        Assert.Equal("http://192.168.7.1:81/x,y", nb.GuestUrl);
        Assert.EndsWith("bootfile=http://192.168.7.1:81/x,,y", nb.NetdevOptions, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("10.1.2.3:255.0.255.0:10.1.2.1")]
    [InlineData("10.1.2.3:255.255.255.0:10.1.3.1")]
    [InlineData("10.1.2.3:24")]
    [InlineData("10.1.2.1:24:10.1.2.1")]
    [InlineData("10.1.2.0:24:10.1.2.1")]
    [InlineData("300.1.2.3:24:10.1.2.1")]
    [InlineData("10.1.2.3:31:10.1.2.2")]
    public void Plan_RejectsBadIpForms(string ip)
    {
        Assert.Throws<BootValidationException>(() => BootPlanner.PlanNetboot(
            new BootRequest { KernelPath = "", Netboot = "http://10.0.2.2/b", NetbootAddress = ip }, Tcg, Runtime()));
    }

    [Theory]
    [InlineData("file:///etc/passwd")]
    [InlineData("boot.ipxe")]
    [InlineData("http://h/a b")]
    public void Plan_RejectsBadUrls(string url)
    {
        Assert.Throws<BootValidationException>(() => BootPlanner.PlanNetboot(new BootRequest { KernelPath = "", Netboot = url }, Tcg, Runtime()));
    }

    [Fact]
    public void Plan_RejectsAKernelWithNetboot()
    {
        Assert.Throws<BootValidationException>(() => BootPlanner.PlanNetboot(
            new BootRequest { KernelPath = Cache.Kernel, Netboot = "http://10.0.2.2/b" }, Tcg, Runtime()));
    }

    [Theory]
    [InlineData(null, "10.0.2.2", "10.0.2.15")]
    [InlineData("ip=192.168.76.9:255.255.255.0:192.168.76.1", "192.168.76.1", "192.168.76.9")]
    public async Task Run_GuestNetbootsThroughIpxeOverHttp(string? ip, string host, string guestAddress)
    {
        Assert.True(File.Exists(QemuCommandLine.IpxeRom), $"{QemuCommandLine.IpxeRom} missing: run scripts/setup.sh (ipxe-qemu)");
        var marker = GuestHarness.Marker();
        using var server = new TinyHttpServer();
        server.Files["/vmlinuz"] = File.ReadAllBytes(Cache.Kernel);
        // /init prints the marker and the command line, which carries the address iPXE had (${net0/ip})
        server.Files["/initrd.img"] = GuestHarness.Initramfs(marker + " $(/bin/busybox cat /proc/cmdline)");
        server.Files["/boot.ipxe"] = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $"#!ipxe\nkernel http://{host}:{server.Port}/vmlinuz console=ttyS0 quiet panic=-1 ipxe.ip=${{net0/ip}}\ninitrd http://{host}:{server.Port}/initrd.img\nboot\n"));
        var runtime = Runtime();
        var plan = BootPlanner.PlanNetboot(new BootRequest
        {
            KernelPath = "", Netboot = $"http://127.0.0.1:{server.Port}/boot.ipxe", NetbootAddress = ip, MemoryMiB = 256, Accelerator = AcceleratorRequest.Tcg,
        }, Tcg, runtime);
        var (result, console, diag) = await GuestHarness.Run(plan, runtime, TimeSpan.FromMinutes(4));
        Assert.Contains(marker, console, StringComparison.Ordinal);
        Assert.Contains("ipxe.ip=" + guestAddress, console, StringComparison.Ordinal);
        Assert.True(result.Outcome == GuestOutcome.PoweredOff, $"{result.Describe()}\n{console}\n{diag}");
        Assert.Contains("/boot.ipxe", server.Requests);
        Assert.Contains("/vmlinuz", server.Requests);
    }

    /// <summary>Serves a fixed set of in-memory files over HTTP/1.0 on loopback (one request per connection).</summary>
    private sealed class TinyHttpServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        public Dictionary<string, byte[]> Files { get; } = new(StringComparer.Ordinal);
        public List<string> Requests { get; } = [];
        public int Port { get; }

        public TinyHttpServer()
        {
            _listener.Start();
            Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
            _ = Task.Run(AcceptLoop);
        }

        private async Task AcceptLoop()
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
                _ = Task.Run(() => Serve(client));
            }
        }

        private async Task Serve(TcpClient client)
        {
            using (client)
            {
                try
                {
                    var stream = client.GetStream();
                    var head = new StringBuilder();
                    var buf = new byte[1];
                    while (head.Length < 8192 && !head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
                    {
                        if (await stream.ReadAsync(buf, _stop.Token) == 0) return;
                        head.Append((char)buf[0]);
                    }
                    var parts = head.ToString().Split(' ', 3);
                    var path = parts.Length > 1 ? parts[1] : "";
                    lock (Requests) Requests.Add(path);
                    byte[] body;
                    string status;
                    if (Files.TryGetValue(path, out var file)) { body = file; status = "200 OK"; }
                    else { body = Encoding.ASCII.GetBytes("not found\n"); status = "404 Not Found"; }
                    var header = Encoding.ASCII.GetBytes($"HTTP/1.0 {status}\r\nContent-Length: {body.Length}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n");
                    await stream.WriteAsync(header, _stop.Token);
                    if (parts[0] != "HEAD") await stream.WriteAsync(body, _stop.Token);
                }
                catch (Exception e) when (e is IOException or OperationCanceledException or SocketException) { }
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
            _stop.Dispose();
        }
    }
}
