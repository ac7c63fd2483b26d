using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using DomBoot.Engine.Qmp;
using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Config;
using DomBoot.Toolstack.Domains;

namespace DomBoot.Toolstack.Supervision;

/// <summary>What `domboot create` (or restore) asks a supervisor to run.</summary>
internal sealed record SupervisorRequest
{
    public required StateDirectory State { get; init; }
    public required string ConfigPath { get; init; }
    public required string ConfigText { get; init; }
    public IReadOnlyDictionary<string, string> Variables { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<string> Overrides { get; init; } = [];

    /// <summary>Start with the vCPUs stopped (xl create -p, restore -p).</summary>
    public bool Paused { get; init; }

    /// <summary>A save file to restore instead of booting (restore).</summary>
    public string? RestoreFile { get; init; }

    /// <summary>Where to report "running" or the error to the waiting create (null in the foreground).</summary>
    public string? StatusFile { get; init; }

    /// <summary>create -F: stay attached to the terminal (no new session; output on stderr).</summary>
    public bool Foreground { get; init; }
}

/// <summary>
/// One domain's supervisor (xl's per-domain monitor): owns the domain's QEMU and its QMP socket, survives the
/// CLI, serves the control socket, and applies on_poweroff/on_reboot/on_crash. Every boot re-runs the boot
/// preparation, so a reboot re-reads the guest's bootloader config. Holds the owner lock of the domain folder
/// and the disk locks for its whole life; the kernel drops them if it is killed.
/// </summary>
internal sealed partial class Supervisor : IDisposable
{
    public static readonly TimeSpan QmpConnectTimeout = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan QuitGrace = TimeSpan.FromSeconds(5);

    private readonly SupervisorRequest _request;
    private readonly Func<string, string> _resolveRemote;
    private readonly DomainStore _store;
    private readonly Lock _recordGate = new();
    private readonly SemaphoreSlim _opGate = new(1, 1);
    private readonly Dictionary<string, Func<JsonObject, CancellationToken, Task<JsonNode?>>> _ops = new(StringComparer.Ordinal);
    private DomainRecord _record = null!;
    private XlConfig _config = null!;
    private DomainPlan _plan = null!;
    private DomainPaths _paths = null!;
    private QmpClient? _qmp;
    private Process? _qemu;
    private volatile bool _destroyRequested, _rebootRequested, _savedAway;
    private string? _lastShutdownReason;
    private bool _panicked;

    private Supervisor(SupervisorRequest request, Func<string, string> resolveRemote)
    {
        _request = request;
        _resolveRemote = resolveRemote;
        _store = new DomainStore(request.State);
        RegisterOps();
    }

    public string Name => _record.Name;

    /// <summary>Runs the domain until it is gone; the exit status is 0 for an orderly end.</summary>
    public static async Task<int> RunAsync(SupervisorRequest request, Func<string, string> resolveRemote, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(resolveRemote);
        using var s = new Supervisor(request, resolveRemote);
        return await s.RunAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        FileLock? owner = null;
        ControlServer? control = null;
        bool claimed = false;
        Exception? failure = null;
        try
        {
            _config = XlConfig.Parse(_request.ConfigText, _request.ConfigPath, _request.Variables).ApplyOverrides(_request.Overrides);
            string name = _config.Name ?? throw new MalformedDataException(_request.ConfigPath, -1, "no name= given; every domain needs a unique name");
            DomainStore.ValidateName(name);
            _request.State.Ensure();
            _ = DomainPlanner.Plan(_config, 1); // config errors before a name is claimed
            var me = Environment.ProcessId;
            (owner, _record) = _store.Claim(name, id => new DomainRecord
            {
                Name = name,
                Id = id,
                Uuid = Guid.NewGuid().ToString(),
                State = "starting",
                CreatedUtc = DateTimeOffset.UtcNow,
                ConfigPath = _request.ConfigPath,
                ConfigText = _request.ConfigText,
                Variables = _request.Variables,
                Overrides = _request.Overrides,
                SupervisorPid = me,
                SupervisorStartTime = Posix.StartTime(me),
                MemoryMiB = _config.MemoryMiB,
                Vcpus = _config.Vcpus,
            });
            claimed = true;
            var folder = _request.State.DomainFolder(name);
            _paths = new DomainPaths(folder, Path.Combine(_request.State.Logs, name + ".log"), Path.Combine(_request.State.Logs, name + ".console.log"));
            if (!_request.Foreground) Posix.Detach(_paths.Log);
            Log($"domain {name} (id {_record.Id}) supervisor pid {me}");
            _plan = DomainPlanner.Plan(_config, _record.Id);
            LockDisks();
            // Recorded at once, so a create that loses the race for a disk can name this domain.
            UpdateRecord(r => r with { Disks = RecordedDisks() });
            control = new ControlServer(_paths.ControlSocket, HandleAsync, Console.Error);
            control.Start();
            await RunBootsAsync(cancellationToken).ConfigureAwait(false);
            Log($"domain {name} is gone ({_lastShutdownReason ?? "no shutdown reason"})");
            return 0;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Log($"domain {(_record?.Name ?? "?")}: error: {ex.Message}");
            if (ex is not (MalformedDataException or InvalidRequestException or FileNotFoundException or UnavailableException or UnsupportedFeatureException or TimeoutException or OperationCanceledException))
                Log(ex.ToString());
            failure = ex;
            return 1;
        }
        finally
        {
            if (_qemu is { HasExited: false } q)
            {
                try { q.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            }
            if (_qmp is not null) await _qmp.DisposeAsync().ConfigureAwait(false);
            if (control is not null) await control.DisposeAsync().ConfigureAwait(false);
            ReleaseDiskLocks();
            if (claimed) DomainStore.RemoveFolder(_request.State.DomainFolder(_record.Name));
            owner?.Dispose();
            // Reported last, so a create that sees the error finds nothing left behind.
            if (failure is not null && !_reported) WriteStatus(false, failure);
        }
    }

    /// <summary>Boots, follows the guest, and boots again while on_reboot/on_poweroff/on_crash say restart.</summary>
    private async Task RunBootsAsync(CancellationToken cancellationToken)
    {
        bool first = true;
        while (true)
        {
            _rebootRequested = false;
            _lastShutdownReason = null;
            _panicked = false;
            var options = new DomainBooter.BootOptions(Paused: first && _request.Paused, Incoming: first && _request.RestoreFile is not null);
            var boot = first && _request.RestoreFile is not null
                ? PrepareRestoredBoot(_request.RestoreFile, options)
                : DomainBooter.Prepare(_config, _plan, _paths, _record.Uuid, options, _resolveRemote, cancellationToken);
            await StartQemuAsync(boot, cancellationToken).ConfigureAwait(false);
            if (first && _request.RestoreFile is not null) await RestoreIncomingAsync(_request.RestoreFile, cancellationToken).ConfigureAwait(false);
            await ApplyPinningAsync(cancellationToken).ConfigureAwait(false);
            string state = await QueryStateAsync(cancellationToken).ConfigureAwait(false);
            UpdateRecord(r => r with
            {
                State = state,
                Boots = r.Boots + 1,
                Kernel = boot.Kernel,
                Cmdline = boot.Cmdline,
                Entry = boot.Entry,
                QemuArgv = boot.QemuArgv,
                QemuPid = _qemu!.Id,
                QemuStartTime = Posix.StartTime(_qemu.Id),
                Disks = RecordedDisks(),
                Nics = _plan.Nics.Select(n => new DomainNic(n.NetdevId, n.Mac, n.Model, n.IpAddresses)).ToList(),
                Forwards = _plan.Nics.SelectMany(n => n.Forwards.Select(f => new DomainForward(n.NetdevId, f.Protocol == XlForwardProtocol.Tcp ? "tcp" : "udp", f.HostPort, f.GuestPort))).ToList(),
            });
            Log($"boot {_record.Boots}: {boot.Kernel}{(boot.Entry is null ? "" : $" (entry \"{boot.Entry}\")")} {boot.Cmdline}");
            if (first) WriteStatus(true, null);
            // Boot preparation reads whole kernel images (~14 MiB here); hand that memory back to the system for the
            // domain's long idle life (supervisor private memory 19.5 -> 6 MiB measured; bench/README.md).
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            first = false;

            var why = await FollowAsync(cancellationToken).ConfigureAwait(false);
            if (_qmp is not null) { await _qmp.DisposeAsync().ConfigureAwait(false); _qmp = null; }
            UpdateRecord(r => r with { LastShutdownReason = _lastShutdownReason });
            if (_destroyRequested || _savedAway || cancellationToken.IsCancellationRequested) return;
            var action = why switch
            {
                GuestEnd.Reboot => _config.OnReboot,
                GuestEnd.Poweroff => _config.OnPoweroff,
                _ => _config.OnCrash,
            };
            Log($"guest {why.ToString().ToLowerInvariant()} ({_lastShutdownReason ?? "QEMU ended"}); action {action.ToString().ToLowerInvariant()}");
            if (action != XlAction.Restart) return;
            UpdateRecord(r => r with { State = "rebooting" });
        }
    }

    private enum GuestEnd { Poweroff, Reboot, Crash }

    private async Task StartQemuAsync(DomainBoot boot, CancellationToken cancellationToken)
    {
        foreach (var stale in new[] { _paths.QmpSocket, _paths.ConsoleSocket })
        {
            if (File.Exists(stale)) File.Delete(stale);
        }
        var psi = new ProcessStartInfo(DomBoot.Engine.Running.GuestRunner.FindQemu())
        {
            UseShellExecute = false,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
        };
        foreach (var a in boot.QemuArgv.Skip(1)) psi.ArgumentList.Add(a);
        var qemu = Process.Start(psi) ?? throw new UnavailableException("could not start QEMU");
        _qemu = qemu;
        qemu.StandardInput.Close();
        string lastError = "";
        _ = Task.Run(async () =>
        {
            string? line;
            while ((line = await qemu.StandardError.ReadLineAsync(CancellationToken.None).ConfigureAwait(false)) is not null)
            {
                lastError = line.Length > 300 ? line[..300] : line;
                Log("qemu: " + lastError);
            }
        }, CancellationToken.None);
        _ = qemu.StandardOutput.BaseStream.CopyToAsync(Stream.Null, CancellationToken.None);

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var connect = QmpClient.ConnectAsync(_paths.QmpSocket, QmpConnectTimeout, cts.Token);
        var exited = qemu.WaitForExitAsync(cts.Token);
        if (await Task.WhenAny(connect, exited).ConfigureAwait(false) == exited || !connect.IsCompletedSuccessfully)
        {
            await cts.CancelAsync().ConfigureAwait(false);
            try { await connect.ConfigureAwait(false); }
            catch (Exception ex) when (ex is OperationCanceledException or TimeoutException or IOException or MalformedDataException) { }
            if (!qemu.HasExited) qemu.Kill(entireProcessTree: true);
            await qemu.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            await Task.Delay(50, CancellationToken.None).ConfigureAwait(false);
            throw new UnavailableException($"QEMU exited with status {qemu.ExitCode} before its monitor answered: {lastError}");
        }
        _qmp = connect.Result;
    }

    private async Task<string> QueryStateAsync(CancellationToken cancellationToken)
    {
        var status = await _qmp!.ExecuteAsync("query-status", null, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false);
        return StateOf(status?["status"]?.GetValue<string>() ?? "");
    }

    /// <summary>QEMU's run state as xl names domain states.</summary>
    internal static string StateOf(string qemuStatus) => qemuStatus switch
    {
        "running" => "running",
        "paused" or "prelaunch" or "postmigrate" or "inmigrate" or "suspended" or "save-vm" or "restore-vm" or "finish-migrate" or "colo" => "paused",
        "shutdown" => "shutdown",
        "guest-panicked" or "internal-error" or "io-error" => "crashed",
        _ => "running",
    };

    /// <summary>Follows QMP events until QEMU exits; says how the guest ended.</summary>
    private async Task<GuestEnd> FollowAsync(CancellationToken cancellationToken)
    {
        var qemu = _qemu!;
        var qmp = _qmp!;
        var exited = qemu.WaitForExitAsync(CancellationToken.None);
        var events = Task.Run(async () =>
        {
            try
            {
                await foreach (var ev in qmp.Events.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
                {
                    await OnEventAsync(ev).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) { }
        }, CancellationToken.None);
        try
        {
            await exited.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // SIGTERM to the supervisor (or Ctrl-C on create -F) destroys the domain.
            _destroyRequested = true;
            await QuitQemuAsync().ConfigureAwait(false);
        }
        await Task.WhenAny(events, Task.Delay(1000, CancellationToken.None)).ConfigureAwait(false);
        bool reset = _lastShutdownReason is "guest-reset" or "host-qmp-system-reset";
        if (reset || (_rebootRequested && _lastShutdownReason is "guest-shutdown")) return GuestEnd.Reboot;
        if (_panicked || _lastShutdownReason is "guest-panic") return GuestEnd.Crash;
        if (_lastShutdownReason is "guest-shutdown") return GuestEnd.Poweroff;
        if (_lastShutdownReason is null) Log($"QEMU ended without a SHUTDOWN event (exit status {qemu.ExitCode}): treated as a crash");
        return _lastShutdownReason is null ? GuestEnd.Crash : GuestEnd.Poweroff;
    }

    private async Task OnEventAsync(QmpEvent ev)
    {
        switch (ev.Name)
        {
            case "SHUTDOWN":
                _lastShutdownReason = ev.Data?["reason"]?.GetValue<string>() ?? "none";
                break;
            case "STOP":
                UpdateRecord(r => r with { State = r.State is "shutdown" or "crashed" ? r.State : "paused" });
                break;
            case "RESUME":
                UpdateRecord(r => r with { State = "running" });
                break;
            case "GUEST_PANICKED":
                _panicked = true;
                if (_config.OnCrash == XlAction.Preserve)
                {
                    Log("guest panicked; on_crash=preserve keeps it (destroy removes it)");
                    UpdateRecord(r => r with { State = "crashed" });
                }
                else
                {
                    Log("guest panicked");
                    await QuitQemuAsync().ConfigureAwait(false);
                }
                break;
        }
        if (ev.Name == "SHUTDOWN" && _config.OnPoweroff == XlAction.Preserve && _lastShutdownReason == "guest-shutdown")
            UpdateRecord(r => r with { State = "shutdown" });
        OnExtraEvent(ev);
    }

    partial void OnExtraEvent(QmpEvent ev);

    /// <summary>QMP quit, then SIGKILL if QEMU does not go within the grace time.</summary>
    private async Task QuitQemuAsync()
    {
        var qemu = _qemu;
        if (qemu is null || qemu.HasExited) return;
        if (_qmp is { } qmp)
        {
            try { await qmp.ExecuteAsync("quit", null, QuitGrace, CancellationToken.None).ConfigureAwait(false); }
            catch (Exception ex) when (ex is IOException or TimeoutException or QmpCommandException or MalformedDataException or OperationCanceledException) { }
        }
        using var cts = new CancellationTokenSource(QuitGrace);
        try { await qemu.WaitForExitAsync(cts.Token).ConfigureAwait(false); }
        catch (OperationCanceledException) { qemu.Kill(entireProcessTree: true); }
    }

    /// <summary>The config's disks' locks by vdev (block-detach of a config disk releases its lock).</summary>
    private readonly Dictionary<string, FileLock> _configDiskLocks = new(StringComparer.Ordinal);

    /// <summary>Writable disks get an exclusive lock, read-only ones a shared lock; a conflict names the holder.</summary>
    private void LockDisks()
    {
        try
        {
            foreach (var d in _plan.Drives)
            {
                if (d.Disk.Target.Length == 0) continue;
                var l = LockDisk(d.Disk.Target, d.Disk.Writable && !d.Disk.IsCdrom);
                lock (_configDiskLocks) _configDiskLocks[d.Disk.Vdev] = l;
            }
        }
        catch
        {
            ReleaseDiskLocks();
            throw;
        }
    }

    /// <summary>Releases the lock a config disk took (after block-detach); false if VDEV had none.</summary>
    internal bool ReleaseConfigDiskLock(string vdev)
    {
        lock (_configDiskLocks)
        {
            if (!_configDiskLocks.Remove(vdev, out var l)) return false;
            l.Dispose();
            return true;
        }
    }

    private void ReleaseDiskLocks()
    {
        lock (_configDiskLocks)
        {
            foreach (var l in _configDiskLocks.Values) l.Dispose();
            _configDiskLocks.Clear();
        }
        lock (_hotDisks)
        {
            foreach (var h in _hotDisks.Values) h.Lock?.Dispose();
        }
    }

    internal FileLock LockDisk(string target, bool writable)
    {
        string identity = Posix.FileIdentity(target);
        string path = Path.Combine(_request.State.Locks, identity.Replace(':', '-') + ".lock");
        var l = FileLock.TryAcquire(path, writable);
        // A domain whose supervisor was killed no longer holds the lock, but its QEMU still has the disk open.
        var orphans = l is null ? [] : _store.List()
            .Where(e => e.Liveness == DomainLiveness.Orphaned && e.Record.Name != _record.Name)
            .SelectMany(e => e.Record.Disks.Where(x => x.Identity == identity && (writable || (x.Writable && !x.Cdrom))).Select(x => $"domain {e.Record.Name} ({(x.Writable && !x.Cdrom ? "writable" : "read-only")}, unsupervised)"))
            .Distinct().ToList();
        if (l is not null && orphans.Count == 0) return l;
        l?.Dispose();
        var holders = orphans;
        // A racing winner records its disks just after locking them: give it a moment to say who it is.
        for (int attempt = 0; holders.Count == 0 && attempt < 40; attempt++)
        {
            if (attempt > 0) Thread.Sleep(25);
            holders = _store.List()
                .Where(e => e.Liveness != DomainLiveness.Stale && e.Record.Name != _record.Name)
                .SelectMany(e => e.Record.Disks.Where(x => x.Identity == identity).Select(x => $"domain {e.Record.Name} ({(x.Writable && !x.Cdrom ? "writable" : "read-only")})"))
                .Distinct().ToList();
        }
        string who = holders.Count > 0 ? string.Join(", ", holders) : "another domain";
        throw new InvalidRequestException(writable
            ? $"disk {target} is in use by {who}; a disk opened writable cannot be shared"
            : $"disk {target} is in use by {who}; it is opened writable there, so it cannot be shared read-only");
    }

    private List<DomainDisk> RecordedDisks() =>
        _plan.Drives.Select(d => new DomainDisk(d.Disk.Target, d.Disk.Vdev, d.Disk.Format == XlDiskFormat.Qcow2 ? "qcow2" : "raw", d.Disk.Writable, d.Disk.IsCdrom, IdentityOrNull(d.Disk.Target))).ToList();

    private static string? IdentityOrNull(string target)
    {
        if (target.Length == 0) return null;
        try { return Posix.FileIdentity(target); }
        catch (IOException) { return null; }
    }

    internal void UpdateRecord(Func<DomainRecord, DomainRecord> change)
    {
        lock (_recordGate)
        {
            _record = change(_record);
            if (Directory.Exists(_paths.Folder)) _record.Save(DomainStore.RecordPath(_paths.Folder));
        }
    }

    internal DomainRecord Record
    {
        get { lock (_recordGate) return _record; }
    }

    private bool _reported;

    private void WriteStatus(bool ok, Exception? error)
    {
        if (_request.StatusFile is not { } file) return;
        _reported = true;
        var status = new JsonObject { ["ok"] = ok };
        if (ok) { status["name"] = _record.Name; status["id"] = _record.Id; }
        else { status["error"] = error!.Message.ReplaceLineEndings(" "); status["kind"] = ControlServer.Kind(error); }
        try
        {
            var tmp = file + ".tmp";
            File.WriteAllText(tmp, status.ToJsonString());
            File.Move(tmp, file, overwrite: true);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    internal static void Log(string message) =>
        Console.Error.WriteLine($"{DateTimeOffset.UtcNow.ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture)} {message}");

    // --- control operations ------------------------------------------------------------------------------------

    private void RegisterOps()
    {
        _ops["info"] = InfoAsync;
        _ops["pause"] = (_, ct) => QmpOpAsync("stop", ct);
        _ops["unpause"] = (_, ct) => QmpOpAsync("cont", ct);
        _ops["shutdown"] = ShutdownAsync;
        _ops["reboot"] = RebootAsync;
        _ops["destroy"] = DestroyAsync;
        RegisterExtraOps(_ops);
        RegisterSaveOps();
        RegisterDeviceOps();
    }

    /// <summary>Operations defined in other parts of this class (save, devices, vCPUs) add themselves here.</summary>
    partial void RegisterExtraOps(Dictionary<string, Func<JsonObject, CancellationToken, Task<JsonNode?>>> ops);

    private async Task<JsonNode?> HandleAsync(JsonObject request, CancellationToken cancellationToken)
    {
        string op = request["op"] is JsonValue v && v.TryGetValue(out string? s) ? s : "";
        if (!_ops.TryGetValue(op, out var handler)) throw new InvalidRequestException($"unknown control operation {Quote.Text(op)}");
        await _opGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try { return await handler(request, cancellationToken).ConfigureAwait(false); }
        finally { _opGate.Release(); }
    }

    internal QmpClient RequireQmp() =>
        _qmp ?? throw new UnavailableException($"domain {_record.Name} is between boots ({_record.State}); try again");

    private async Task<JsonNode?> QmpOpAsync(string command, CancellationToken cancellationToken)
    {
        await RequireQmp().ExecuteAsync(command, null, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false);
        UpdateRecord(r => r with { State = command == "stop" ? "paused" : "running" });
        return new JsonObject();
    }

    private async Task<JsonNode?> InfoAsync(JsonObject request, CancellationToken cancellationToken)
    {
        string status = "";
        if (_qmp is { } qmp)
        {
            var s = await qmp.ExecuteAsync("query-status", null, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false);
            status = s?["status"]?.GetValue<string>() ?? "";
        }
        return new JsonObject { ["name"] = _record.Name, ["id"] = _record.Id, ["state"] = Record.State, ["qemu_status"] = status, ["boots"] = Record.Boots };
    }

    private async Task<JsonNode?> ShutdownAsync(JsonObject request, CancellationToken cancellationToken)
    {
        if (Record.State == "crashed" || Record.State == "shutdown")
        {
            _destroyRequested = true;
            await QuitQemuAsync().ConfigureAwait(false);
            return new JsonObject();
        }
        await RequireQmp().ExecuteAsync("system_powerdown", null, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false);
        return new JsonObject();
    }

    /// <summary>
    /// Graceful reboot as libvirt's "fake reboot": press the power button and, when the guest has shut down,
    /// boot it again (re-running the bootloader). --force resets the machine at once (QEMU runs with -no-reboot,
    /// so the reset also ends QEMU and the supervisor boots afresh).
    /// </summary>
    private async Task<JsonNode?> RebootAsync(JsonObject request, CancellationToken cancellationToken)
    {
        bool force = request["force"] is JsonValue f && f.TryGetValue(out bool b) && b;
        var qmp = RequireQmp();
        _rebootRequested = true;
        await qmp.ExecuteAsync(force ? "system_reset" : "system_powerdown", null, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false);
        return new JsonObject();
    }

    private async Task<JsonNode?> DestroyAsync(JsonObject request, CancellationToken cancellationToken)
    {
        _destroyRequested = true;
        await QuitQemuAsync().ConfigureAwait(false);
        return new JsonObject();
    }

    /// <summary>Restores saved guest memory into the freshly started (-incoming defer) QEMU. Defined with save.</summary>
    private Task RestoreIncomingAsync(string file, CancellationToken cancellationToken) => RestoreIncomingCoreAsync(file, cancellationToken);

    private partial Task RestoreIncomingCoreAsync(string file, CancellationToken cancellationToken);

    /// <summary>Applies cpus= and earlier vcpu-pin requests to the new QEMU's vCPU threads. Defined with vcpu-pin.</summary>
    private partial Task ApplyPinningAsync(CancellationToken cancellationToken);

    internal void MarkSavedAway() => _savedAway = true;
    internal DomainPaths Paths => _paths;
    internal DomainPlan Plan => _plan;
    internal XlConfig Config => _config;
    internal Process? Qemu => _qemu;
    internal StateDirectory StateDir => _request.State;
    internal Task QuitAsync() => QuitQemuAsync();

    public void Dispose() => _opGate.Dispose();
}
