using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using DomBoot.Engine.Planning;
using DomBoot.Engine.Qmp;
using DomBoot.Formats.Errors;

namespace DomBoot.Engine.Running;

/// <summary>Where the guest's console goes and comes from.</summary>
public sealed record GuestConsole(Stream Output, Stream? Input, TextWriter Diagnostics);

/// <summary>
/// Runs one planned guest under QEMU: prepares files, starts QEMU, relays the serial console, follows QMP events,
/// and decides how the guest ended. Cancellation (Ctrl-C) and timeouts tear the guest down with QMP "quit".
/// </summary>
public static class GuestRunner
{
    public static readonly TimeSpan QuitGrace = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan AfterMarkerGrace = TimeSpan.FromSeconds(2);

    /// <summary>A fresh short runtime folder (Unix socket paths are limited to 107 bytes).</summary>
    public static RuntimePaths CreateRuntimeDirectory()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"domboot-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(dir);
        return new RuntimePaths(dir);
    }

    /// <summary>The QEMU binary on PATH, or UnavailableException naming the setup command.</summary>
    public static string FindQemu()
    {
        foreach (var d in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var p = Path.Combine(d, QemuCommandLine.Binary);
            if (File.Exists(p)) return p;
        }
        throw new UnavailableException($"{QemuCommandLine.Binary} not found on PATH; run scripts/setup.sh (installs Debian's qemu-system-x86)");
    }

    public static async Task<GuestResult> RunAsync(BootPlan plan, RuntimePaths runtime, GuestConsole console, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(console);
        var started = Stopwatch.StartNew();
        string qemu = FindQemu();
        BootFilePreparer.Prepare(plan, cancellationToken);

        var psi = new ProcessStartInfo(qemu)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in plan.QemuArgv.Skip(1)) psi.ArgumentList.Add(arg);
        using var process = Process.Start(psi) ?? throw new UnavailableException($"could not start {qemu}");

        var outcome = new OutcomeTracker();
        using var stop = new CancellationTokenSource();
        var stderrTask = RelayStderrAsync(process, console.Diagnostics, outcome);
        var consoleTask = RelayConsoleAsync(process, console.Output, outcome, stop.Token);
        if (console.Input is { } input) _ = ForwardInputAsync(input, process, stop.Token);

        QmpClient? qmp = null;
        Task? eventsTask = null;
        try
        {
            using var connectCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var exitedEarly = process.WaitForExitAsync(connectCts.Token);
            var connect = QmpClient.ConnectAsync(runtime.QmpSocket, TimeSpan.FromSeconds(30), connectCts.Token);
            var first = await Task.WhenAny(connect, exitedEarly).ConfigureAwait(false);
            if (first == connect && connect.IsCompletedSuccessfully)
            {
                qmp = connect.Result;
                eventsTask = FollowEventsAsync(qmp, outcome);
            }
            else
            {
                await connectCts.CancelAsync().ConfigureAwait(false);
                try { await connect.ConfigureAwait(false); }
                catch (Exception ex) when (ex is OperationCanceledException or TimeoutException or IOException or MalformedDataException) { }
            }
        }
        catch (Exception ex) when (ex is TimeoutException or IOException or MalformedDataException)
        {
            console.Diagnostics.WriteLine($"domboot: warning: QMP unavailable ({ex.Message}); guest end is judged from QEMU's exit");
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested) { }

        try
        {
            using var waitCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            if (timeout is { } t) waitCts.CancelAfter(t);
            var exited = process.WaitForExitAsync(CancellationToken.None);
            while (!exited.IsCompleted)
            {
                var marker = outcome.MarkerSeen;
                var finished = await Task.WhenAny(exited, Task.Delay(Timeout.Infinite, waitCts.Token), marker).ConfigureAwait(false);
                if (finished == exited) break;
                if (finished == marker)
                {
                    // The console said how the guest ended but the machine keeps running (Xen halts, a panic spins).
                    await Task.WhenAny(exited, Task.Delay(AfterMarkerGrace, CancellationToken.None)).ConfigureAwait(false);
                    if (!exited.IsCompleted) await QuitAsync(qmp, process, outcome, null).ConfigureAwait(false);
                    break;
                }
                if (cancellationToken.IsCancellationRequested)
                {
                    await QuitAsync(qmp, process, outcome, GuestOutcome.Interrupted).ConfigureAwait(false);
                    break;
                }
                await QuitAsync(qmp, process, outcome, GuestOutcome.TimedOut, $"no end after {timeout!.Value.TotalSeconds:0.#} s").ConfigureAwait(false);
                break;
            }
            await exited.ConfigureAwait(false);
            // On a terminal, Ctrl-C reaches QEMU too (same process group) and it may exit before we ask it to.
            if (cancellationToken.IsCancellationRequested) outcome.Force(GuestOutcome.Interrupted, "");
            // Drain what QEMU wrote before it exited (the pipes reach end of file), then stop the relays.
            try { await Task.WhenAll(consoleTask, stderrTask).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(false); }
            catch (TimeoutException) { }
            await stop.CancelAsync().ConfigureAwait(false);
        }
        finally
        {
            if (qmp is not null) await qmp.DisposeAsync().ConfigureAwait(false);
            if (eventsTask is not null) await eventsTask.ConfigureAwait(false);
            if (!process.HasExited) { process.Kill(entireProcessTree: true); await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false); }
        }
        return outcome.Result(process.ExitCode, started.Elapsed);
    }

    private static async Task QuitAsync(QmpClient? qmp, Process process, OutcomeTracker outcome, GuestOutcome? why, string detail = "")
    {
        if (why is { } w) outcome.Force(w, detail);
        if (qmp is not null)
        {
            try { await qmp.ExecuteAsync("quit", null, QuitGrace, CancellationToken.None).ConfigureAwait(false); }
            catch (Exception ex) when (ex is IOException or TimeoutException or QmpCommandException or MalformedDataException) { }
        }
        else
        {
            process.Kill(entireProcessTree: true);
        }
        using var cts = new CancellationTokenSource(QuitGrace);
        try { await process.WaitForExitAsync(cts.Token).ConfigureAwait(false); }
        catch (OperationCanceledException) { process.Kill(entireProcessTree: true); }
    }

    private static async Task FollowEventsAsync(QmpClient qmp, OutcomeTracker outcome)
    {
        try
        {
            await foreach (var ev in qmp.Events.ReadAllAsync().ConfigureAwait(false))
            {
                switch (ev.Name)
                {
                    case "SHUTDOWN":
                        string reason = ev.Data?["reason"] is JsonValue r && r.TryGetValue(out string? rs) ? rs : "";
                        outcome.FromShutdown(reason);
                        break;
                    case "GUEST_PANICKED":
                    case "GUEST_CRASHLOADED":
                        outcome.FromEvent(GuestOutcome.Crashed, "QEMU reported " + ev.Name);
                        break;
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    private static async Task RelayConsoleAsync(Process process, Stream output, OutcomeTracker outcome, CancellationToken stop)
    {
        var stdout = process.StandardOutput.BaseStream;
        var buffer = new byte[16 * 1024];
        var line = new StringBuilder();
        var decoder = Encoding.UTF8.GetDecoder();
        var chars = new char[buffer.Length + 16];
        try
        {
            int n;
            while ((n = await stdout.ReadAsync(buffer, stop).ConfigureAwait(false)) > 0)
            {
                await output.WriteAsync(buffer.AsMemory(0, n), stop).ConfigureAwait(false);
                await output.FlushAsync(stop).ConfigureAwait(false);
                int c = decoder.GetChars(buffer, 0, n, chars, 0);
                for (int i = 0; i < c; i++)
                {
                    if (chars[i] == '\n')
                    {
                        if (ConsoleWatcher.Classify(line.ToString()) is { } o) outcome.FromConsole(o, line.ToString().Trim());
                        line.Clear();
                    }
                    else if (line.Length < ConsoleWatcher.MaxLineChars) line.Append(chars[i]);
                }
            }
        }
        catch (OperationCanceledException) { }
        catch (IOException) { }
    }

    private static async Task RelayStderrAsync(Process process, TextWriter diagnostics, OutcomeTracker outcome)
    {
        string? l;
        while ((l = await process.StandardError.ReadLineAsync().ConfigureAwait(false)) is not null)
        {
            outcome.NoteStderr(l);
            await diagnostics.WriteLineAsync(l).ConfigureAwait(false);
        }
    }

    private static async Task ForwardInputAsync(Stream input, Process process, CancellationToken stop)
    {
        var buffer = new byte[4096];
        try
        {
            var to = process.StandardInput.BaseStream;
            int n;
            while ((n = await input.ReadAsync(buffer, stop).ConfigureAwait(false)) > 0)
            {
                await to.WriteAsync(buffer.AsMemory(0, n), stop).ConfigureAwait(false);
                await to.FlushAsync(stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) { }
        catch (IOException) { }
        catch (ObjectDisposedException) { }
        catch (InvalidOperationException) { }
    }

    /// <summary>Combines the evidence: QMP SHUTDOWN reasons, console markers, forced outcomes, QEMU's exit.</summary>
    private sealed class OutcomeTracker
    {
        private readonly Lock _gate = new();
        private readonly TaskCompletionSource _marker = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private GuestOutcome? _forced, _console, _event;
        private string _detail = "", _lastStderr = "";
        private string? _shutdownReason;

        public Task MarkerSeen => _marker.Task;

        public void Force(GuestOutcome o, string detail)
        {
            lock (_gate) { _forced ??= o; if (detail.Length > 0) _detail = detail; }
        }

        public void FromConsole(GuestOutcome o, string line)
        {
            lock (_gate) { if (_console is null) { _console = o; _detail = line; } }
            _marker.TrySetResult();
        }

        public void FromEvent(GuestOutcome o, string detail)
        {
            lock (_gate) { _event ??= o; if (_detail.Length == 0) _detail = detail; }
            _marker.TrySetResult();
        }

        public void FromShutdown(string reason)
        {
            lock (_gate) _shutdownReason ??= reason;
        }

        public void NoteStderr(string line)
        {
            lock (_gate) _lastStderr = line.Length > 200 ? line[..200] : line;
        }

        public GuestResult Result(int exitCode, TimeSpan elapsed)
        {
            lock (_gate)
            {
                if (_forced is { } f) return new(f, exitCode, _detail, elapsed);
                if (_event is { } e) return new(e, exitCode, _detail, elapsed);
                if (_console is { } c) return new(c, exitCode, _detail, elapsed);
                switch (_shutdownReason)
                {
                    case "guest-shutdown": return new(GuestOutcome.PoweredOff, exitCode, "", elapsed);
                    case "guest-reset": return new(GuestOutcome.Rebooted, exitCode, "", elapsed);
                    case "guest-panic": return new(GuestOutcome.Crashed, exitCode, "QEMU reported guest-panic", elapsed);
                    case "host-signal": return new(GuestOutcome.Killed, exitCode, "QEMU received a signal", elapsed);
                    case "host-qmp-quit": return new(GuestOutcome.Killed, exitCode, "quit over QMP by another client", elapsed);
                    case { } other: return new(GuestOutcome.Killed, exitCode, "QEMU shut down: " + other, elapsed);
                }
                if (exitCode > 128 || exitCode < 0) return new(GuestOutcome.Killed, exitCode, $"QEMU ended by signal {(exitCode > 128 ? exitCode - 128 : -exitCode)}", elapsed);
                return new(GuestOutcome.QemuFailed, exitCode, _lastStderr.Length > 0 ? _lastStderr : $"QEMU exited with status {exitCode}", elapsed);
            }
        }
    }
}
