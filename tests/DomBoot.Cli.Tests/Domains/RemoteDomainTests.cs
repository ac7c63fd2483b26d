using System.Diagnostics;
using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Domains;

/// <summary>
/// Domain configs that boot over the network (issue 7 item 3 and 4): kernel= and ramdisk= URLs go through the
/// HTTP cache (the second domain revalidates with a 304), and netboot= boots QEMU's iPXE ROM from `domboot serve`.
/// The server is the real `domboot serve` (Kestrel) on loopback.
/// </summary>
public sealed class RemoteDomainTests
{
    private sealed class Server : IDisposable
    {
        private readonly Process _process;
        public string Url { get; }
        public StringWriter Log { get; } = new();

        public Server(string dir, Dictionary<string, string> env)
        {
            var psi = new ProcessStartInfo(DombootProcess.Executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "serve", dir, "--listen", "127.0.0.1:0" }) psi.ArgumentList.Add(a);
            foreach (var kv in env) psi.Environment[kv.Key] = kv.Value;
            _process = Process.Start(psi)!;
            _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (Log) Log.WriteLine(e.Data); };
            _process.BeginErrorReadLine();
            var line = _process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)).GetAwaiter().GetResult();
            Assert.True(line is not null && line.StartsWith("http://127.0.0.1:", StringComparison.Ordinal), $"domboot serve printed {line}");
            Url = line!.TrimEnd('/');
        }

        public string AccessLog() { lock (Log) return Log.ToString(); }

        public void Dispose()
        {
            if (!_process.HasExited) _process.Kill();
            _process.WaitForExit(10_000);
            _process.Dispose();
        }
    }

    /// <summary>srv/guest/{vmlinuz, initrd.img, cmdline.txt}: the test guest, as `domboot serve` publishes it (guest.ipxe is generated).</summary>
    private static string Publish(DomainHarness h, string marker)
    {
        var guest = h.File("srv/guest");
        Directory.CreateDirectory(guest);
        File.Copy(Cache.Kernel, Path.Combine(guest, "vmlinuz"));
        File.Copy(h.Initramfs, Path.Combine(guest, "initrd.img"));
        File.WriteAllText(Path.Combine(guest, "cmdline.txt"), ToolstackGuest.BaseCmdline + " " + marker + "\n");
        return h.File("srv");
    }

    [Fact]
    public void Create_KernelAndRamdiskUrls_AreFetchedThenRevalidatedFromTheCache()
    {
        using var h = new DomainHarness();
        h.Env["XDG_CACHE_HOME"] = h.File("cache");
        using var server = new Server(Publish(h, "guest.from=url"), h.Env);
        string Config(string name)
        {
            var path = h.File(name + ".cfg");
            File.WriteAllText(path, $"""
                name = "{name}"
                kernel = "{server.Url}/guest/vmlinuz"
                ramdisk = "{server.Url}/guest/initrd.img"
                cmdline = "{ToolstackGuest.BaseCmdline} guest.from=url"
                memory = 256

                """);
            return path;
        }

        h.Ok("create", Config("web1"));
        h.WaitForConsole("web1", "^GUEST-UP cmdline=.*guest.from=url");
        Assert.Matches(@"/guest/vmlinuz: fetched \d+ bytes", File.ReadAllText(Path.Combine(h.StateDir, "logs", "web1.log")));
        var rows = h.Listed("web1")!.Value;
        Assert.StartsWith(server.Url + "/guest/vmlinuz", rows.GetProperty("kernel").GetString(), StringComparison.Ordinal);
        h.Ok("destroy", "web1");

        // The second domain boots the same URLs: the cache revalidates (If-None-Match) and moves no body.
        h.Ok("create", Config("web2"));
        h.WaitForConsole("web2", "^GUEST-UP cmdline=.*guest.from=url");
        var log2 = File.ReadAllText(Path.Combine(h.StateDir, "logs", "web2.log"));
        Assert.Contains("/guest/vmlinuz: cached copy still valid (304)", log2, StringComparison.Ordinal);
        Assert.Contains("/guest/initrd.img: cached copy still valid (304)", log2, StringComparison.Ordinal);
        Assert.Contains(" 304 ", server.AccessLog(), StringComparison.Ordinal);
        h.Ok("destroy", "web2");
        Assert.Null(h.Listed("web2"));
    }

    [Fact]
    public void Create_NetbootUrl_BootsThroughIpxeFromTheServer()
    {
        Assert.True(File.Exists("/usr/lib/ipxe/qemu/pxe-virtio.rom"), "/usr/lib/ipxe/qemu/pxe-virtio.rom missing: run scripts/setup.sh (ipxe-qemu)");
        using var h = new DomainHarness();
        using var server = new Server(Publish(h, "guest.from=netboot"), h.Env);
        var cfg = h.File("nb.cfg");
        File.WriteAllText(cfg, $"""
            name = "nb"
            netboot = "{server.Url}/guest.ipxe"
            memory = 256

            """);
        var dry = h.Ok("create", "-n", cfg).Stdout;
        Assert.Contains($"VM netboot         : \"{server.Url}/guest.ipxe\"", dry, StringComparison.Ordinal);
        Assert.Contains("bootfile=http://10.0.2.2:", dry, StringComparison.Ordinal);

        h.Ok("create", cfg);
        // The host parsed nothing the guest fetched: iPXE asked the server for the script, the kernel and the initrd.
        h.WaitForConsole("nb", "^GUEST-UP cmdline=.*guest.from=netboot", TimeSpan.FromSeconds(120));
        var access = server.AccessLog();
        Assert.Contains("/guest.ipxe", access, StringComparison.Ordinal);
        Assert.Contains("/guest/vmlinuz", access, StringComparison.Ordinal);
        Assert.Contains("/guest/initrd.img", access, StringComparison.Ordinal);
        var listed = h.Listed("nb")!.Value;
        Assert.Equal(server.Url + "/guest.ipxe", listed.GetProperty("kernel").GetString());
        h.Ok("shutdown", "-w", "nb");
        Assert.Null(h.Listed("nb"));
    }
}
