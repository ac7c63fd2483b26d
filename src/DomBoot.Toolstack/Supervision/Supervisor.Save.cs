using DomBoot.Toolstack.Config;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using DomBoot.Engine.Qmp;
using DomBoot.Formats.Errors;

namespace DomBoot.Toolstack.Supervision;

/// <summary>
/// save and restore (xl save / xl restore). Save: stop the vCPUs, write the save file's header, metadata and boot
/// files to FILE.tmp-XXXXXXXX, migrate QEMU to a Unix socket in the domain folder that we read ourselves (so we own
/// every write: a full disk is our error, we know exactly where the stream ends, we fsync), then the trailer and the
/// final header with the complete flag, fsync, rename to FILE. Without -c QEMU then quits and the supervisor ends
/// without applying on_poweroff; with -c (or on any failure while QEMU lives) the vCPUs run again if they ran before.
/// We migrate to unix: rather than exec:cat because QEMU 7.2 reports "completed" before a cat child has written its
/// last buffer, and a shell child can outlive a failed save and recreate the temporary.
/// Restore: QEMU runs the saved argv (boot files extracted into the domain folder, sockets and forwarded ports
/// rewritten for the new domain) with -incoming defer; migrate-incoming listens on a Unix socket and we send the
/// stream slice. The domain ends running unless it was paused when saved or restore -p asked for paused.
/// </summary>
internal sealed partial class Supervisor
{
    public static readonly TimeSpan SaveTimeout = TimeSpan.FromMinutes(10);
    public static readonly TimeSpan StreamConnectTimeout = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan MigratePollInterval = TimeSpan.FromMilliseconds(20);

    private SaveImage? _restoreImage;

    // Temporaries of saves in flight, removed if the supervisor ends (QEMU died, SIGTERM) before the save's own cleanup ran.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> s_inFlight = new(StringComparer.Ordinal);
    private static int s_exitHook;

    private static void TrackTemporary(string path)
    {
        if (Interlocked.Exchange(ref s_exitHook, 1) == 0)
            AppDomain.CurrentDomain.ProcessExit += (_, _) => { foreach (var t in s_inFlight.Keys) TryDelete(t); };
        s_inFlight[path] = 0;
    }

    private void RegisterSaveOps() => _ops["save"] = SaveAsync;

    private async Task<JsonNode?> SaveAsync(JsonObject request, CancellationToken cancellationToken)
    {
        string file = request["file"] is JsonValue v && v.TryGetValue(out string? s) ? s : "";
        if (file.Length == 0 || !Path.IsPathFullyQualified(file)) throw new InvalidRequestException($"save: {Quote.Text(file)} is not an absolute file name");
        bool keep = request["keep"] is JsonValue k && k.TryGetValue(out bool kb) && kb;
        string folder = Path.GetDirectoryName(file) ?? "/";
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{folder}: no such directory");
        if (Directory.Exists(file)) throw new InvalidRequestException($"save: {file} is a directory");

        var qmp = RequireQmp();
        var qemu = _qemu!;
        var sw = Stopwatch.StartNew();
        string before = (await qmp.ExecuteAsync("query-status", null, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false))?["status"]?.GetValue<string>() ?? "";
        if (before is not ("running" or "paused"))
            throw new InvalidRequestException($"domain {Name} is {StateOf(before)} (QEMU status {Quote.Text(before)}); only a running or paused domain can be saved");
        bool wasRunning = before == "running";
        var record = Record;
        var (metadata, bootPaths) = SaveMetadata(record, paused: !wasRunning);
        byte[] metadataBytes = JsonSerializer.SerializeToUtf8Bytes(metadata, SaveImageMetadata.Json);
        if ((uint)metadataBytes.Length > SaveImageHeader.Limits.MaxMetadataBytes)
            throw new UnsupportedFeatureException($"domain {Name}: its save metadata is {metadataBytes.Length} bytes; at most {SaveImageHeader.Limits.MaxMetadataBytes}");
        ulong bootLength = 0;
        foreach (var b in metadata.BootFiles) bootLength = checked(bootLength + (ulong)b.Length);
        if (bootLength > SaveImageHeader.Limits.MaxBootFilesBytes)
            throw new UnsupportedFeatureException($"domain {Name}: its boot files are {bootLength} bytes; at most {SaveImageHeader.Limits.MaxBootFilesBytes}");

        string tmp = file + ".tmp-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        string socketPath = Path.Combine(_paths.Folder, "save.sock");
        Log($"saving domain {Name} to {file} (via {Path.GetFileName(tmp)}){(keep ? ", keeping it running" : "")}");
        UpdateRecord(r => r with { State = "saving" });
        bool done = false, migrating = false;
        long streamLength = 0, fileLength = 0;
        TrackTemporary(tmp);
        try
        {
            if (File.Exists(socketPath)) File.Delete(socketPath);
            using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(socketPath));
            listener.Listen(1);
            var output = new FileStream(tmp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16);
            await using (output.ConfigureAwait(false))
            {
                var header = new SaveImageHeader(SaveImageHeader.CurrentVersion, 0, (uint)metadataBytes.Length, bootLength,
                    checked(SaveImageHeader.Size + (ulong)metadataBytes.Length + bootLength), 0, new byte[32]);
                var headerBytes = new byte[SaveImageHeader.Size];
                header.WriteTo(headerBytes);
                await output.WriteAsync(headerBytes, cancellationToken).ConfigureAwait(false);
                byte[] sha;
                using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
                {
                    hash.AppendData(metadataBytes);
                    await output.WriteAsync(metadataBytes, cancellationToken).ConfigureAwait(false);
                    foreach (var (b, path) in metadata.BootFiles.Zip(bootPaths))
                    {
                        using var input = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
                        SaveImage.CopyRange(input, b.Length, span => { hash.AppendData(span); output.Write(span); });
                    }
                    sha = hash.GetHashAndReset();
                }
                if ((ulong)output.Position != header.StreamOffset) throw new IOException($"{tmp}: wrote {output.Position} bytes before the stream; expected {header.StreamOffset}");

                if (wasRunning) await qmp.ExecuteAsync("stop", null, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false);
                using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                var receive = ReceiveStreamAsync(listener, output, cts.Token);
                try
                {
                    await qmp.ExecuteAsync("migrate", new JsonObject { ["uri"] = "unix:" + socketPath }, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false);
                    migrating = true;
                    await WaitMigrationAsync(qmp, receive, cancellationToken).ConfigureAwait(false);
                    migrating = false;
                    // "completed" is reported when QEMU has written everything; the reader still drains the socket to EOF.
                    streamLength = await receive.WaitAsync(StreamConnectTimeout, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    await cts.CancelAsync().ConfigureAwait(false);
                    try { await receive.ConfigureAwait(false); }
                    catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException or TimeoutException or ObjectDisposedException) { }
                }
                if (streamLength < 8) throw new IOException($"QEMU sent a {streamLength}-byte migration stream; too short to be one");

                var trailer = new byte[SaveImageHeader.TrailerSize];
                SaveImageHeader.TrailerMagic.CopyTo(trailer);
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(trailer.AsSpan(8), (ulong)streamLength);
                await output.WriteAsync(trailer, cancellationToken).ConfigureAwait(false);
                output.Flush(flushToDisk: true);
                // The complete flag reaches the disk only after everything it vouches for.
                (header with { Flags = SaveImageHeader.FlagComplete, StreamLength = (ulong)streamLength, SectionSha256 = sha }).WriteTo(headerBytes);
                output.Position = 0;
                await output.WriteAsync(headerBytes, cancellationToken).ConfigureAwait(false);
                output.Flush(flushToDisk: true);
                fileLength = output.Length;
            }
            File.Move(tmp, file, overwrite: true);
            done = true;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Log($"save of domain {Name} failed: {ex.Message}");
            if (migrating && !qemu.HasExited)
            {
                try { await qmp.ExecuteAsync("migrate_cancel", null, QmpClient.DefaultTimeout, CancellationToken.None).ConfigureAwait(false); }
                catch (Exception cancelError) when (cancelError is IOException or TimeoutException or QmpCommandException or MalformedDataException or OperationCanceledException) { }
            }
            if (qemu.HasExited)
                throw new UnavailableException($"domain {Name}: QEMU exited during the save ({ex.Message}); nothing was saved");
            if (ex is IOException or UnauthorizedAccessException or SocketException)
                throw new IOException($"domain {Name}: save to {file} failed: {ex.Message}{(wasRunning ? "; the domain runs on" : "")}", ex);
            throw;
        }
        finally
        {
            if (!done) TryDelete(tmp);
            s_inFlight.TryRemove(tmp, out _);
            TryDelete(socketPath);
            if (!done) await ResumeAfterSaveAsync(qmp, qemu, wasRunning).ConfigureAwait(false);
        }

        double seconds = sw.Elapsed.TotalSeconds;
        Log(string.Create(CultureInfo.InvariantCulture, $"saved domain {Name} to {file}: {fileLength} bytes ({streamLength} bytes of migration stream) in {seconds:0.000} s"));
        if (!keep)
        {
            MarkSavedAway();
            UpdateRecord(r => r with { State = "dying" });
            await QuitAsync().ConfigureAwait(false);
        }
        else
        {
            await ResumeAfterSaveAsync(qmp, qemu, wasRunning).ConfigureAwait(false);
        }
        return new JsonObject
        {
            ["file"] = file,
            ["bytes"] = fileLength,
            ["stream_bytes"] = streamLength,
            ["seconds"] = Math.Round(seconds, 3),
            ["paused"] = !wasRunning,
            ["kept"] = keep,
        };
    }

    /// <summary>xl's "Failed to save domain, resuming domain": the vCPUs run again if they ran before the save.</summary>
    private async Task ResumeAfterSaveAsync(QmpClient qmp, Process qemu, bool wasRunning)
    {
        if (qemu.HasExited) return;
        try
        {
            if (wasRunning) await qmp.ExecuteAsync("cont", null, QmpClient.DefaultTimeout, CancellationToken.None).ConfigureAwait(false);
            string now = (await qmp.ExecuteAsync("query-status", null, QmpClient.DefaultTimeout, CancellationToken.None).ConfigureAwait(false))?["status"]?.GetValue<string>() ?? "";
            UpdateRecord(r => r with { State = StateOf(now) });
        }
        catch (Exception ex) when (ex is IOException or TimeoutException or QmpCommandException or MalformedDataException or OperationCanceledException)
        {
            Log($"could not resume domain {Name} after the save: {ex.Message}");
        }
    }

    /// <summary>Accepts QEMU's one connection and copies the stream into <paramref name="output"/> until EOF; returns its length.</summary>
    private static async Task<long> ReceiveStreamAsync(Socket listener, FileStream output, CancellationToken cancellationToken)
    {
        using var client = await listener.AcceptAsync(cancellationToken).AsTask().WaitAsync(StreamConnectTimeout, cancellationToken).ConfigureAwait(false);
        using var stream = new NetworkStream(client, ownsSocket: false);
        var buffer = new byte[1 << 20];
        long total = 0;
        while (true)
        {
            int n = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (n == 0) return total;
            await output.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            total = checked(total + n);
            if ((ulong)total > SaveImageHeader.Limits.MaxStreamBytes) throw new IOException($"migration stream exceeds {SaveImageHeader.Limits.MaxStreamBytes} bytes");
        }
    }

    /// <summary>Polls query-migrate until completed; failed/cancelled, a failed receiver or QEMU's exit are errors.</summary>
    private static async Task WaitMigrationAsync(QmpClient qmp, Task<long> receive, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + SaveTimeout;
        while (true)
        {
            if (receive.IsFaulted) await receive.ConfigureAwait(false); // our side failed (disk full, ...): its exception
            var info = await qmp.ExecuteAsync("query-migrate", null, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false);
            string status = info?["status"]?.GetValue<string>() ?? "";
            switch (status)
            {
                case "completed":
                    return;
                case "failed" or "cancelled":
                    if (receive.IsFaulted) await receive.ConfigureAwait(false);
                    string why = info?["error-desc"]?.GetValue<string>() ?? status;
                    throw new IOException($"QEMU's migration {status}: {why}");
            }
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"the save did not complete within {SaveTimeout.TotalSeconds:0} s (migration status {Quote.Text(status)})");
            await Task.Delay(MigratePollInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The save metadata for the current boot, and the host paths of the boot files to embed.</summary>
    private (SaveImageMetadata Metadata, List<string> Paths) SaveMetadata(Domains.DomainRecord r, bool paused)
    {
        // Disks hot-attached since this boot are devices the restored QEMU must have too: added as -drive/-device.
        var argv = r.QemuArgv.ToList();
        lock (_hotDisks)
        {
            foreach (var hot in _hotDisks.Values.Where(h => h.BlockdevNode && h.State == "attached"))
                argv.AddRange(["-drive", DomainPlanner.DriveOption(hot.Spec), "-device", DomainPlanner.DeviceOption(hot.Spec)]);
        }
        var files = new List<SaveImageBootFile>();
        var paths = new List<string>();
        for (int i = 1; i < argv.Count; i++)
        {
            if (argv[i - 1] is not ("-kernel" or "-initrd")) continue;
            string path = argv[i];
            if (argv[i - 1] == "-initrd" && !File.Exists(path))
                throw new UnsupportedFeatureException($"domain {Name}: -initrd {Quote.Text(path)} is not one file (Multiboot modules); saving such a domain is not supported");
            var info = new FileInfo(path);
            if (!info.Exists) throw new FileNotFoundException($"domain {Name}: boot file {path} is gone; cannot save", path);
            if (files.Count == SaveImageHeader.Limits.MaxBootFiles) throw new UnsupportedFeatureException($"domain {Name}: more than {SaveImageHeader.Limits.MaxBootFiles} boot files");
            files.Add(new SaveImageBootFile(i, argv[i - 1], info.Length));
            paths.Add(path);
        }
        var metadata = new SaveImageMetadata
        {
            Name = r.Name,
            Uuid = r.Uuid,
            MemoryMiB = r.MemoryMiB,
            Vcpus = r.Vcpus,
            Paused = paused,
            ConfigPath = r.ConfigPath,
            ConfigText = r.ConfigText,
            Variables = r.Variables,
            Overrides = r.Overrides,
            QemuArgv = argv,
            BootFiles = files,
            Forwards = r.Forwards.Select(f => new SaveImageForward(f.Nic, f.Protocol, f.HostPort, f.GuestPort)).ToList(),
            Kernel = r.Kernel,
            Cmdline = r.Cmdline,
            Entry = r.Entry,
            SavedUtc = DateTimeOffset.UtcNow,
        };
        return (metadata, paths);
    }

    /// <summary>
    /// The first boot of a restored domain: the SAVED argv (not a fresh bootloader run), with the boot files
    /// extracted into this domain's folder, its console and QMP sockets, the new domain id's forwarded ports, the
    /// saved uuid, and -incoming defer (plus -S for restore -p).
    /// </summary>
    private DomainBoot PrepareRestoredBoot(string file, DomainBooter.BootOptions options)
    {
        var image = SaveImage.Open(file);
        _restoreImage = image;
        var m = image.Metadata;
        if (Directory.Exists(_paths.BootFolder)) Directory.Delete(_paths.BootFolder, recursive: true);
        Directory.CreateDirectory(_paths.BootFolder);
        var extracted = image.ExtractBootFiles(_paths.BootFolder);
        var ports = PortMap(m.Forwards);
        var argv = new List<string>();
        for (int i = 0; i < m.QemuArgv.Count; i++)
        {
            string a = extracted.TryGetValue(i, out var path) ? path : m.QemuArgv[i];
            string previous = i > 0 ? m.QemuArgv[i - 1] : "";
            if (a is "-S") continue;
            if (a is "-incoming") { i++; continue; }
            if (previous == "-chardev" && a.StartsWith("socket,id=console0,", StringComparison.Ordinal))
                a = $"socket,id=console0,path={EscapeOption(_paths.ConsoleSocket)},server=on,wait=off,logfile={EscapeOption(_paths.ConsoleLog)},logappend=on";
            else if (previous == "-qmp")
                a = $"unix:{EscapeOption(_paths.QmpSocket)},server=on,wait=off";
            else if (a.Contains("hostfwd=", StringComparison.Ordinal))
                a = HostForward().Replace(a, x => ports.TryGetValue((x.Groups[1].Value, int.Parse(x.Groups[2].Value, CultureInfo.InvariantCulture)), out int p)
                    ? string.Create(CultureInfo.InvariantCulture, $"hostfwd={x.Groups[1].Value}:127.0.0.1:{p}-")
                    : x.Value);
            argv.Add(a);
        }
        if (options.Paused) argv.Add("-S");
        argv.AddRange(["-incoming", "defer"]);
        UpdateRecord(r => r with { Uuid = m.Uuid });
        Log($"restoring domain {m.Name} from {file} (saved {m.SavedUtc:O}, {image.Header.StreamLength} bytes of migration stream)");
        return new DomainBoot(argv, m.Kernel, m.Cmdline, m.Entry, null);
    }

    /// <summary>Old host port → this domain's host port, matched by NIC, protocol and guest port.</summary>
    private Dictionary<(string, int), int> PortMap(IReadOnlyList<SaveImageForward> saved)
    {
        var map = new Dictionary<(string, int), int>();
        foreach (var f in saved)
        {
            var now = _plan.Nics.Where(n => n.NetdevId == f.Nic).SelectMany(n => n.Forwards)
                .FirstOrDefault(x => (x.Protocol == DomBoot.Toolstack.Config.XlForwardProtocol.Tcp ? "tcp" : "udp") == f.Protocol && x.GuestPort == f.GuestPort);
            if (now is not null) map[(f.Protocol, f.HostPort)] = now.HostPort;
        }
        return map;
    }

    [GeneratedRegex(@"hostfwd=(tcp|udp):127\.0\.0\.1:(\d{1,5})-", RegexOptions.CultureInvariant)]
    private static partial Regex HostForward();

    private static string EscapeOption(string s) => s.Replace(",", ",,", StringComparison.Ordinal);

    private partial async Task RestoreIncomingCoreAsync(string file, CancellationToken cancellationToken)
    {
        var image = _restoreImage ?? SaveImage.Open(file);
        var qmp = RequireQmp();
        var qemu = _qemu!;
        var sw = Stopwatch.StartNew();
        string socketPath = Path.Combine(_paths.Folder, "restore.sock");
        TryDelete(socketPath);
        try
        {
            await qmp.ExecuteAsync("migrate-incoming", new JsonObject { ["uri"] = "unix:" + socketPath }, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false);
            using (var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            {
                using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                cts.CancelAfter(StreamConnectTimeout);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cts.Token).ConfigureAwait(false);
                using var stream = new NetworkStream(socket, ownsSocket: false);
                using var input = new FileStream(image.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
                input.Position = (long)image.Header.StreamOffset;
                var buffer = new byte[1 << 20];
                long left = (long)image.Header.StreamLength;
                while (left > 0)
                {
                    int n = await input.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), cancellationToken).ConfigureAwait(false);
                    if (n == 0) throw new MalformedDataException(image.Path, input.Position, "save file ended inside the migration stream");
                    await stream.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                    left -= n;
                }
                socket.Shutdown(SocketShutdown.Send);
            }
            string status;
            var deadline = DateTime.UtcNow + SaveTimeout;
            while (true)
            {
                status = (await qmp.ExecuteAsync("query-status", null, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false))?["status"]?.GetValue<string>() ?? "";
                if (status != "inmigrate") break;
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"QEMU did not load the saved state within {SaveTimeout.TotalSeconds:0} s");
                await Task.Delay(MigratePollInterval, cancellationToken).ConfigureAwait(false);
            }
            // Our save stops the vCPUs first, so QEMU always comes back paused; run it unless it was paused when saved or -p.
            bool wantPaused = _request.Paused || image.Metadata.Paused;
            if (!wantPaused && status == "paused")
                await qmp.ExecuteAsync("cont", null, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false);
            else if (wantPaused && status == "running")
                await qmp.ExecuteAsync("stop", null, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false);
            Log(string.Create(CultureInfo.InvariantCulture, $"restored domain {Name} in {sw.Elapsed.TotalSeconds:0.000} s ({(wantPaused ? "paused" : "running")})"));
        }
        catch (Exception ex) when (ex is IOException or SocketException or QmpCommandException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            if (!qemu.HasExited) qemu.Kill(entireProcessTree: true);
            await qemu.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            throw new UnavailableException($"QEMU could not load the saved state from {image.Path}: {ex.Message} (see {_paths.Log})");
        }
        finally
        {
            TryDelete(socketPath);
        }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
