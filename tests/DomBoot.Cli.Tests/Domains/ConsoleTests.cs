using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Domains;

/// <summary>`domboot console` and `create -c` against real QEMU with the test guest: on a terminal (tmux) and on pipes.</summary>
public sealed class ConsoleTests
{
    private const byte CtrlRightBracket = 0x1d;

    [Fact]
    public void Console_OnATerminal_ShowsTheGuestAndCtrlRightBracketDetaches()
    {
        Tools.Require("tmux");
        using var h = new DomainHarness();
        h.Ok("create", h.KernelConfig("tty"));
        h.WaitForConsole("tty", "^GUEST-UP");
        string session = "domboot-console-" + Guid.NewGuid().ToString("N")[..8];
        var script = h.File("console.sh");
        File.WriteAllText(script, string.Create(CultureInfo.InvariantCulture, $"""
            export DOMBOOT_STATE_DIR='{h.StateDir}'
            before=$(stty -g)
            '{DombootProcess.Executable}' console tty
            echo "CONSOLE-EXIT=$?"
            after=$(stty -g)
            if [ "$before" = "$after" ]; then echo STTY-RESTORED; else echo "STTY-CHANGED $before -> $after"; fi
            '{DombootProcess.Executable}' console --state-dir '{h.StateDir}' tty
            echo "SECOND-EXIT=$?"
            after=$(stty -g)
            if [ "$before" = "$after" ]; then echo STTY2-RESTORED; else echo "STTY2-CHANGED $before -> $after"; fi
            sleep 600

            """));
        try
        {
            Tools.Run("tmux", ["new-session", "-d", "-s", session, "-x", "160", "-y", "50", "bash " + script]);
            string Pane() => Tools.Run("tmux", ["capture-pane", "-p", "-t", session, "-S", "-300"]).Stdout;
            WaitForPane(Pane, "connected to the console of tty (Ctrl-] detaches)");
            int seen = h.LastHeartbeat("tty");
            WaitForPane(Pane, $"HEARTBEAT {seen + 2}");
            Tools.Run("tmux", ["send-keys", "-t", session, "C-]"]);
            WaitForPane(Pane, "CONSOLE-EXIT=");
            WaitForPane(Pane, "STTY-");
            var pane = Pane();
            Assert.Contains("CONSOLE-EXIT=0", pane, StringComparison.Ordinal);
            Assert.Contains("STTY-RESTORED", pane, StringComparison.Ordinal);
            // Raw mode: the guest's own \r\n starts each line at the left edge (no staircase).
            Assert.Matches(new Regex(@"^HEARTBEAT \d+\s*$", RegexOptions.Multiline), pane);

            // SIGTERM while attached: the terminal settings still come back.
            int consoles = Regex.Count(pane, "connected to the console of tty");
            var sw = Stopwatch.StartNew();
            while (Regex.Count(Pane(), "connected to the console of tty") <= consoles && sw.Elapsed < TimeSpan.FromSeconds(30)) Thread.Sleep(200);
            var pid = Tools.Run("pgrep", ["-f", "console --state-dir " + h.StateDir + " tty"]).Stdout.Trim();
            Tools.Run("kill", ["-TERM", pid]);
            WaitForPane(Pane, "STTY2-");
            pane = Pane();
            Assert.Contains("SECOND-EXIT=143", pane, StringComparison.Ordinal);
            Assert.Contains("STTY2-RESTORED", pane, StringComparison.Ordinal);
        }
        finally
        {
            Tools.Run("tmux", ["kill-session", "-t", session], check: false);
        }
        Assert.NotNull(h.Listed("tty"));
        int after = h.LastHeartbeat("tty");
        h.WaitForConsole("tty", $"^HEARTBEAT {after + 2}$");
    }

    [Fact]
    public async Task Console_OnPipes_RelaysAndDetachesOnCtrlRightBracket_SecondClientIsRefused()
    {
        using var h = new DomainHarness();
        h.Ok("create", h.KernelConfig("pipe"));
        h.WaitForConsole("pipe", "^HEARTBEAT 1$");
        using var c = Attached.Start(h, "console", "pipe");
        c.WaitForOutput(s => Regex.Count(s, "HEARTBEAT") >= 3, "three heartbeats");
        Assert.Contains("domboot: connected to the console of pipe (Ctrl-] detaches)", c.Stderr, StringComparison.Ordinal);

        var second = h.Domboot("console", "pipe");
        Assert.Equal(69, second.ExitCode);
        Assert.Equal("domboot: error: console of pipe is already attached elsewhere\n", second.Stderr);

        // Typed bytes reach the guest's shell-less console harmlessly; the bytes after Ctrl-] are never sent.
        await c.SendAsync([(byte)'\r', CtrlRightBracket, (byte)'x']);
        Assert.Equal(0, c.WaitForExit());
        Assert.NotNull(h.Listed("pipe"));

        // Detached: a new client gets the console at once.
        using var again = Attached.Start(h, "console", "pipe");
        again.WaitForOutput(s => s.Contains("HEARTBEAT", StringComparison.Ordinal), "a heartbeat after re-attaching");
        await again.SendAsync([CtrlRightBracket]);
        Assert.Equal(0, again.WaitForExit());

        var unknown = h.Domboot("console", "nosuch");
        Assert.Equal(66, unknown.ExitCode);
        Assert.StartsWith("domboot: error: ", unknown.Stderr, StringComparison.Ordinal);
        Assert.Single(unknown.Stderr.TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public async Task Console_OfAnOrphanedDomain_AttachesAndSeesItDestroyed()
    {
        using var h = new DomainHarness();
        h.Ok("create", h.KernelConfig("orph"));
        h.WaitForConsole("orph", "^HEARTBEAT 1$");
        var (qemu, supervisor) = h.Pids("orph");
        Process.GetProcessById(supervisor).Kill();
        h.WaitUntil(() => !DomainHarness.Alive(supervisor), "the supervisor to die");
        Assert.True(DomainHarness.Alive(qemu));

        using var c = Attached.Start(h, "console", "orph");
        c.WaitForOutput(s => Regex.Count(s, "HEARTBEAT") >= 2, "heartbeats of the orphaned domain");
        await c.SendAsync([CtrlRightBracket]);
        Assert.Equal(0, c.WaitForExit());

        using var again = Attached.Start(h, "console", "orph");
        again.WaitForOutput(s => s.Contains("HEARTBEAT", StringComparison.Ordinal), "heartbeats after re-attaching");
        h.Ok("destroy", "orph");
        Assert.Equal(0, again.WaitForExit());
        Assert.EndsWith("domboot: domain orph is gone\n", again.Stderr, StringComparison.Ordinal);
        Assert.False(DomainHarness.Alive(qemu));
    }

    [Fact]
    public void ConsoleLog_HoldsWhatTheGuestPrintedUnattended_ReplayPrintsIt()
    {
        using var h = new DomainHarness();
        h.Ok("create", h.KernelConfig("logged"));
        var up = h.WaitForConsole("logged", "^GUEST-UP cmdline=");
        h.WaitForConsole("logged", "^HEARTBEAT 2$");
        Assert.Contains(up, File.ReadAllText(h.ConsoleLogPath("logged")), StringComparison.Ordinal);

        // stdin at its end (DombootProcess closes it): replay, attach, and detach at once.
        var r = h.Ok("console", "--replay", "1000", "logged");
        Assert.Contains(up, r.Stdout, StringComparison.Ordinal);
        Assert.Contains("HEARTBEAT 2", r.Stdout, StringComparison.Ordinal);
        var two = h.Ok("console", "--replay", "2", "logged").Stdout;
        Assert.DoesNotContain("GUEST-UP", two, StringComparison.Ordinal);
        Assert.Matches(@"^(HEARTBEAT|BLOCKDEVS) [^\n]*\n(HEARTBEAT|BLOCKDEVS) [^\n]*\n", two);
        Assert.NotNull(h.Listed("logged"));
    }

    [Fact]
    public async Task CreateC_AttachesToTheNewDomain()
    {
        using var h = new DomainHarness();
        using var c = Attached.Start(h, "create", "-c", h.KernelConfig("withc"));
        c.WaitForOutput(s => s.Contains("HEARTBEAT 2", StringComparison.Ordinal), "the new domain's heartbeats", TimeSpan.FromSeconds(120));
        Assert.Matches(@"^Started domain withc \(id \d+\)\n", c.Stdout);
        // The console attached before the guest booted: its first line came through the console, not a replay.
        Assert.Contains("GUEST-UP cmdline=", c.Stdout, StringComparison.Ordinal);
        await c.SendAsync([CtrlRightBracket]);
        Assert.Equal(0, c.WaitForExit());
        Assert.NotNull(h.Listed("withc"));
    }

    [Fact]
    public void Console_FollowsAReboot_ThenReportsTheDomainGone()
    {
        using var h = new DomainHarness();
        h.Ok("create", h.KernelConfig("reb", cmdlineExtra: "guest.reboot_after=6"));
        h.WaitForConsole("reb", "^GUEST-UP");
        using var c = Attached.Start(h, "console", "reb");
        // Attached after the first GUEST-UP: a GUEST-UP on our output is the second boot's.
        c.WaitForOutput(s => Regex.IsMatch(s, @"GUEST-UP[\s\S]*HEARTBEAT 1\r?\n"), "the guest booting again", TimeSpan.FromSeconds(150));
        Assert.Contains("domboot: reconnected to the console of reb", c.Stderr, StringComparison.Ordinal);

        h.Ok("destroy", "reb");
        Assert.Equal(0, c.WaitForExit());
        Assert.EndsWith("domboot: domain reb is gone\n", c.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Relay_WithAFakeQemu_DetachesReconnectsAndSeesTheDomainGone()
    {
        // In process, no QEMU, no terminal: a listening socket plays QEMU's chardev, streams play the terminal.
        var state = new DomBoot.Toolstack.Domains.StateDirectory(Path.Combine("/tmp", "dbc-" + Guid.NewGuid().ToString("N")[..8]));
        try
        {
            state.Ensure();
            var folder = state.DomainFolder("fake");
            Directory.CreateDirectory(folder);
            using var owner = DomBoot.Toolstack.Domains.FileLock.TryAcquire(DomBoot.Toolstack.Domains.DomainStore.OwnerLockPath(folder), exclusive: true)!;
            new DomBoot.Toolstack.Domains.DomainRecord { Name = "fake", Id = 7, Uuid = "u-1", State = "running", CreatedUtc = DateTimeOffset.UtcNow }
                .Save(DomBoot.Toolstack.Domains.DomainStore.RecordPath(folder));
            var sockPath = Path.Combine(folder, "console.sock");
            File.WriteAllText(Path.Combine(state.Logs, "fake.console.log"), "one\ntwo\nthree\n");

            using var client = DomBoot.Toolstack.Lifecycle.ConsoleClient.For(state, "7");
            Assert.Equal("fake", client.Name);
            Assert.Equal("two\nthree\n", Encoding.ASCII.GetString(client.ReplayTail(2)));

            // 1: output flows, typed bytes reach the server, nothing after Ctrl-] is sent.
            using (var listener = Listen(sockPath))
            {
                var input = new System.IO.Pipes.AnonymousPipeServerStream(System.IO.Pipes.PipeDirection.Out);
                using var inputReader = new System.IO.Pipes.AnonymousPipeClientStream(System.IO.Pipes.PipeDirection.In, input.ClientSafePipeHandle);
                var output = new MemoryStream();
                var accept = listener.AcceptAsync();
                await client.ConnectAsync(CancellationToken.None);
                using var server = await accept;
                await server.SendAsync("HELLO\r\n"u8.ToArray());
                var run = client.RunAsync(inputReader, output, null, CancellationToken.None);
                await input.WriteAsync("ls\r"u8.ToArray());
                await input.FlushAsync();
                var got = new byte[16];
                int n = await server.ReceiveAsync(got);
                Assert.Equal("ls\r", Encoding.ASCII.GetString(got, 0, n));
                await input.WriteAsync(new byte[] { (byte)'a', CtrlRightBracket, (byte)'b' });
                await input.FlushAsync();
                Assert.Equal(DomBoot.Toolstack.Lifecycle.ConsoleEnd.Detached, await run.WaitAsync(TimeSpan.FromSeconds(10)));
                Assert.Equal("HELLO\r\n", Encoding.ASCII.GetString(output.ToArray()));
                server.ReceiveTimeout = 2000;
                n = server.Receive(got);
                Assert.Equal("a", Encoding.ASCII.GetString(got, 0, n));
                input.Dispose();
            }

            // 2: QEMU goes away (a reboot), a new one listens: the client reconnects; then the folder goes: gone.
            client.Dispose(); // drops console.lock: the next client may attach
            File.Delete(sockPath);
            using var client2 = DomBoot.Toolstack.Lifecycle.ConsoleClient.For(state, "fake");
            var notices = new List<string>();
            var output2 = new MemoryStream();
            var never = new System.IO.Pipes.AnonymousPipeServerStream(System.IO.Pipes.PipeDirection.Out);
            using var neverReader = new System.IO.Pipes.AnonymousPipeClientStream(System.IO.Pipes.PipeDirection.In, never.ClientSafePipeHandle);
            Task<DomBoot.Toolstack.Lifecycle.ConsoleEnd> run2;
            using (var first = Listen(sockPath))
            {
                var accept = first.AcceptAsync();
                await client2.ConnectAsync(CancellationToken.None);
                run2 = client2.RunAsync(neverReader, output2, m => { lock (notices) notices.Add(m); }, CancellationToken.None);
                using var s1 = await accept;
                await s1.SendAsync("BOOT-1\n"u8.ToArray());
                await Task.Delay(200);
            }
            File.Delete(sockPath);
            using (var second = Listen(sockPath))
            {
                using var s2 = await second.AcceptAsync().WaitAsync(TimeSpan.FromSeconds(10));
                await s2.SendAsync("BOOT-2\n"u8.ToArray());
                await Task.Delay(200);
            }
            Assert.False(run2.IsCompleted);
            owner.Dispose();
            Directory.Delete(folder, recursive: true);
            Assert.Equal(DomBoot.Toolstack.Lifecycle.ConsoleEnd.DomainGone, await run2.WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Equal("BOOT-1\nBOOT-2\n", Encoding.ASCII.GetString(output2.ToArray()));
            lock (notices) Assert.Contains("reconnected to the console of fake", notices);
            never.Dispose();
        }
        finally
        {
            Directory.Delete(state.Root, recursive: true);
        }
    }

    [Fact]
    public void SocketPeers_CountsAcceptedAndQueuedClientsOfOnePath()
    {
        const string proc = """
            Num       RefCount Protocol Flags    Type St Inode Path
            000000004ff001b4: 00000002 00000000 00010000 0001 01 882694 /tmp/cx/c.sock
            000000007ee31ee0: 00000003 00000000 00000000 0001 03 882780 /tmp/cx/c.sock
            000000008ef90088: 00000003 00000000 00000000 0001 02 0 /tmp/cx/c.sock
            000000009ef90088: 00000003 00000000 00000000 0001 03 882790 /tmp/cx/other.sock
            00000000aef90088: 00000003 00000000 00000000 0001 03 882791
            """;
        Assert.Equal((1, 1, 2), DomBoot.Toolstack.Lifecycle.ConsoleClient.SocketPeers(proc, "/tmp/cx/c.sock"));
        Assert.Equal((0, 0, 0), DomBoot.Toolstack.Lifecycle.ConsoleClient.SocketPeers(proc, "/tmp/cx/none.sock"));
    }

    [Theory]
    [InlineData("a\nb\nc\n", 2, "b\nc\n")]
    [InlineData("a\nb\nc", 2, "b\nc")]
    [InlineData("a\nb\n", 5, "a\nb\n")]
    [InlineData("", 3, "")]
    [InlineData("a\n", 0, "")]
    public void TailLines_KeepsTheLastLines(string text, int lines, string expected)
    {
        Assert.Equal(expected, Encoding.ASCII.GetString(DomBoot.Toolstack.Lifecycle.ConsoleClient.TailLines(Encoding.ASCII.GetBytes(text), lines)));
    }

    private static System.Net.Sockets.Socket Listen(string path)
    {
        var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        s.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
        s.Listen(1);
        return s;
    }

    private static void WaitForPane(Func<string> pane, string text)
    {
        var sw = Stopwatch.StartNew();
        while (!pane().Contains(text, StringComparison.Ordinal))
        {
            if (sw.Elapsed > TimeSpan.FromSeconds(60)) Assert.Fail($"the terminal never showed {text}:\n{pane()}");
            Thread.Sleep(200);
        }
    }

    /// <summary>domboot with piped stdin/stdout/stderr, read as it runs.</summary>
    private sealed class Attached : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _out = new();
        private readonly StringBuilder _err = new();
        private readonly Task _reader;
        private readonly DomainHarness _h;

        private Attached(Process process, DomainHarness h)
        {
            _process = process;
            _h = h;
            _reader = Task.Run(async () =>
            {
                var buffer = new byte[4096];
                int n;
                while ((n = await process.StandardOutput.BaseStream.ReadAsync(buffer)) > 0)
                {
                    lock (_out) _out.Append(Encoding.Latin1.GetString(buffer, 0, n));
                }
            });
            process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_err) _err.Append(e.Data).Append('\n'); };
            process.BeginErrorReadLine();
        }

        public string Stdout { get { lock (_out) return _out.ToString(); } }

        public string Stderr { get { lock (_err) return _err.ToString(); } }

        public static Attached Start(DomainHarness h, params string[] args)
        {
            var psi = new ProcessStartInfo(DombootProcess.Executable)
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var a in args) psi.ArgumentList.Add(a);
            foreach (var kv in h.Env) psi.Environment[kv.Key] = kv.Value;
            return new Attached(Process.Start(psi)!, h);
        }

        public void WaitForOutput(Func<string, bool> condition, string what, TimeSpan? timeout = null)
        {
            var sw = Stopwatch.StartNew();
            var limit = timeout ?? TimeSpan.FromSeconds(60);
            while (!condition(Stdout))
            {
                if (sw.Elapsed > limit || _process.HasExited)
                {
                    Thread.Sleep(300);
                    Assert.Fail($"no {what} on the console (exited: {_process.HasExited})\nstdout: {Tail(Stdout)}\nstderr: {Stderr}\nlogs:\n{_h.Logs()}");
                }
                Thread.Sleep(100);
            }
        }

        public async Task SendAsync(byte[] bytes)
        {
            await _process.StandardInput.BaseStream.WriteAsync(bytes);
            await _process.StandardInput.BaseStream.FlushAsync();
        }

        public int WaitForExit()
        {
            if (!_process.WaitForExit(30_000)) Assert.Fail($"domboot did not exit\nstdout: {Tail(Stdout)}\nstderr: {Stderr}");
            _process.WaitForExit();
            _reader.Wait(5000);
            return _process.ExitCode;
        }

        private static string Tail(string s) => s.Length <= 2000 ? s : s[^2000..];

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                try { _process.Kill(); }
                catch (InvalidOperationException) { }
            }
            _process.Dispose();
        }
    }
}
