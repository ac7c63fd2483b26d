using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using DomBoot.Engine.Qmp;
using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Config;
using DomBoot.Toolstack.Domains;

namespace DomBoot.Toolstack.Supervision;

/// <summary>
/// Disk hot-plug (xl block-attach / block-detach / block-list) on the i440fx root bus.
/// <para>Attach: the domboot disk lock first (a disk another domain holds writable is refused, naming it), then
/// QMP blockdev-add (node drive-VDEV) and device_add virtio-blk-pci id=VDEV. The disk is also added to the
/// supervisor's plan, so every later boot (reboot, on_*=restart) starts QEMU with it as a -drive, in attach order
/// after the config's disks, and domain.json lists it with its file identity.</para>
/// <para>Detach: device_del, then wait for DEVICE_DELETED whose device is VDEV (it also arrives once for the
/// virtio backend, without device). The guest must acknowledge the ACPI eject; if it does not within
/// <see cref="DetachTimeout"/> the disk stays attached, marked "detaching", and a later acknowledgement finishes the
/// detach on its own. Then blockdev-del (a disk from the config or from an earlier boot is a legacy -drive: its
/// backend is removed with drive_del if QEMU did not already) and the lock is released.</para>
/// <para>--force: device_del, a short wait, and if the guest still has not let go the disk leaves the plan at once
/// (it is not there after the next boot). For a legacy -drive backend drive_del cuts the guest off the image now
/// (its I/O fails; unflushed guest writes are lost) and the lock is released. A blockdev-add node cannot be taken
/// from a device QEMU still has, so QEMU keeps the image open until the guest acknowledges or QEMU is restarted;
/// until then the domboot lock stays held (block-list shows "forced").</para>
/// <para>Known limit: the lock of a disk from the config is held for the whole life of the supervisor, even after
/// the disk is detached.</para>
/// </summary>
internal sealed partial class Supervisor
{
    public static readonly TimeSpan DetachTimeout = TimeSpan.FromSeconds(15);
    public static readonly TimeSpan ForceDetachGrace = TimeSpan.FromSeconds(3);

    /// <summary>Disks attached at run time, and disks with a detach under way (vdev → state).</summary>
    private readonly Dictionary<string, HotDisk> _hotDisks = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _deviceDeleted = new(StringComparer.Ordinal);

    private sealed class HotDisk(XlDiskSpec spec, FileLock? diskLock)
    {
        public XlDiskSpec Spec { get; } = spec;

        /// <summary>The lock this file took at attach (null for a config disk: the supervisor holds those).</summary>
        public FileLock? Lock { get; set; } = diskLock;

        /// <summary>True while the backend is a blockdev-add node in the running QEMU (false after a reboot: a -drive then).</summary>
        public bool BlockdevNode { get; set; }

        /// <summary>attached, detaching (device_del sent, guest has not answered), forced (out of the plan, QEMU still holds it).</summary>
        public string State { get; set; } = "attached";
    }

    /// <summary>A new QEMU runs the plan's disks as -drive: forced disks are gone for good, pending detaches are void.</summary>
    private void OnNewQemu()
    {
        _deviceDeleted.Clear();
        lock (_hotDisks)
        {
            foreach (var (vdev, hot) in _hotDisks.ToList())
            {
                hot.BlockdevNode = false;
                if (hot.State == "forced")
                {
                    hot.Lock?.Dispose();
                    _hotDisks.Remove(vdev);
                }
                else hot.State = "attached";
            }
        }
    }

    partial void OnExtraEvent(QmpEvent ev)
    {
        if (ev.Name != "DEVICE_DELETED" || ev.Data?["device"] is not JsonValue d || !d.TryGetValue(out string? vdev) || vdev is null) return;
        if (_deviceDeleted.TryRemove(vdev, out var waiter))
        {
            waiter.TrySetResult();
            return;
        }
        bool late;
        lock (_hotDisks) late = _hotDisks.TryGetValue(vdev, out var hot) && hot.State is "detaching" or "forced";
        if (!late) return;
        // The guest acknowledged an unplug a block-detach stopped waiting for: finish it like an ordinary detach.
        _ = Task.Run(async () =>
        {
            await _opGate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                Log($"guest released {vdev} late; finishing its detach");
                await FinishDetachAsync(vdev, removeBackend: true, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or TimeoutException or QmpCommandException or MalformedDataException or UnavailableException or OperationCanceledException)
            {
                Log($"finishing the detach of {vdev} failed: {ex.Message}");
            }
            finally { _opGate.Release(); }
        }, CancellationToken.None);
    }

    /// <summary>block-attach {spec: "xl disk spec"}.</summary>
    private async Task<JsonNode?> BlockAttachAsync(JsonObject request, CancellationToken cancellationToken)
    {
        var qmp = RequireQmp();
        string text = request["spec"] is JsonValue v && v.TryGetValue(out string? s) ? s : "";
        var spec = XlDiskSpec.Parse(text, "block-attach", new XlPosition(1, 1));
        if (spec.IsCdrom) throw new InvalidRequestException($"disk spec {Quote.Text(text)}: a cdrom cannot be hot-plugged (the IDE bus has no hotplug); put it in the config");
        var owner = _plan.Drives.FirstOrDefault(x => x.Disk.Vdev == spec.Vdev);
        if (owner is not null) throw new InvalidRequestException($"domain {Record.Name} already has a disk {spec.Vdev} ({owner.Disk.Target}); choose another vdev");
        lock (_hotDisks)
        {
            if (_hotDisks.TryGetValue(spec.Vdev, out var pending))
                throw new InvalidRequestException($"domain {Record.Name}: {spec.Vdev} is still {pending.State} (the guest has not released it); choose another vdev");
        }

        var diskLock = LockDisk(spec.Target, spec.Writable);
        string node = "drive-" + spec.Vdev;
        bool added = false;
        try
        {
            string format = spec.Format == XlDiskFormat.Qcow2 ? "qcow2" : "raw";
            bool isDevice = spec.Target.StartsWith("/dev/", StringComparison.Ordinal);
            var args = new JsonObject
            {
                ["driver"] = format,
                ["node-name"] = node,
                ["read-only"] = !spec.Writable,
                ["file"] = new JsonObject { ["driver"] = isDevice ? "host_device" : "file", ["filename"] = spec.Target, ["read-only"] = !spec.Writable },
            };
            await qmp.ExecuteAsync("blockdev-add", args, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false);
            added = true;
            await qmp.ExecuteAsync("device_add", new JsonObject { ["driver"] = "virtio-blk-pci", ["drive"] = node, ["id"] = spec.Vdev }, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            if (added)
            {
                try { await qmp.ExecuteAsync("blockdev-del", new JsonObject { ["node-name"] = node }, QmpClient.DefaultTimeout, CancellationToken.None).ConfigureAwait(false); }
                catch (Exception ex) when (ex is QmpCommandException or IOException or TimeoutException) { Log($"blockdev-del {node} after a failed attach: {ex.Message}"); }
            }
            diskLock.Dispose();
            throw;
        }

        lock (_hotDisks) _hotDisks[spec.Vdev] = new HotDisk(spec, diskLock) { BlockdevNode = true };
        SetPlanDrives([.. _plan.Drives, new PlannedDrive(spec, DomainPlanner.DriveOption(spec), DomainPlanner.DeviceOption(spec))]);
        var disk = ToRecordDisk(spec);
        UpdateRecord(r => r with { Disks = [.. r.Disks.Where(x => x.Vdev != spec.Vdev), disk] });
        Log($"block-attach {spec}");
        return DiskJson(disk, "attached");
    }

    /// <summary>block-detach {vdev, force}.</summary>
    private async Task<JsonNode?> BlockDetachAsync(JsonObject request, CancellationToken cancellationToken)
    {
        var qmp = RequireQmp();
        string vdev = request["vdev"] is JsonValue v && v.TryGetValue(out string? s) ? s : "";
        bool force = request["force"] is JsonValue f && f.TryGetValue(out bool b) && b;
        var drive = _plan.Drives.FirstOrDefault(x => x.Disk.Vdev == vdev);
        if (drive is null)
        {
            bool forced;
            lock (_hotDisks) forced = _hotDisks.TryGetValue(vdev, out var h) && h.State == "forced";
            throw new InvalidRequestException(forced
                ? $"domain {Record.Name}: {vdev} was already force-detached; QEMU releases it when the guest acknowledges or the domain reboots"
                : $"domain {Record.Name} has no disk {Quote.Text(vdev)} (block-list shows its disks)");
        }
        if (drive.Disk.IsCdrom) throw new InvalidRequestException($"domain {Record.Name}: {vdev} is a cdrom; the IDE bus has no hot-unplug");

        var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _deviceDeleted[vdev] = waiter;
        bool pending;
        lock (_hotDisks)
        {
            if (!_hotDisks.TryGetValue(vdev, out var hot)) _hotDisks[vdev] = hot = new HotDisk(drive.Disk, null);
            pending = hot.State == "detaching";
        }
        try
        {
            await qmp.ExecuteAsync("device_del", new JsonObject { ["id"] = vdev }, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (QmpCommandException) when (pending)
        {
            // device_del of a device whose unplug is already pending: keep waiting for the guest.
        }
        catch
        {
            _deviceDeleted.TryRemove(vdev, out _);
            lock (_hotDisks) { if (_hotDisks.TryGetValue(vdev, out var h) && h.Lock is null && h.State == "attached") _hotDisks.Remove(vdev); }
            throw;
        }
        lock (_hotDisks) { if (_hotDisks.TryGetValue(vdev, out var h)) h.State = "detaching"; }

        var wait = force ? ForceDetachGrace : DetachTimeout;
        bool deleted = await waiter.Task.WaitAsync(wait, cancellationToken).ContinueWith(t => t.IsCompletedSuccessfully, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default).ConfigureAwait(false);
        _deviceDeleted.TryRemove(vdev, out _);
        deleted |= waiter.Task.IsCompletedSuccessfully;
        if (deleted)
        {
            await FinishDetachAsync(vdev, removeBackend: true, cancellationToken).ConfigureAwait(false);
            Log($"block-detach {vdev}: done");
            return new JsonObject { ["vdev"] = vdev, ["state"] = "detached" };
        }
        if (!force)
        {
            Log($"block-detach {vdev}: no DEVICE_DELETED within {wait.TotalSeconds:0} s");
            throw new TimeoutException($"domain {Record.Name} did not release {vdev} within {wait.TotalSeconds:0} s (the guest must acknowledge the unplug); it stays attached, marked detaching; `domboot block-detach --force {Record.Name} {vdev}` removes it anyway");
        }

        // --force and the guest has not answered.
        bool legacy;
        lock (_hotDisks) legacy = !(_hotDisks.TryGetValue(vdev, out var hd) && hd.BlockdevNode);
        if (legacy && await LegacyDriveExistsAsync(qmp, vdev, cancellationToken).ConfigureAwait(false))
        {
            await HumanAsync(qmp, "drive_del drive-" + vdev, cancellationToken).ConfigureAwait(false);
            await FinishDetachAsync(vdev, removeBackend: false, cancellationToken).ConfigureAwait(false);
            Log($"block-detach --force {vdev}: backend cut off with drive_del; the guest's device stays without media until it acknowledges");
            return new JsonObject { ["vdev"] = vdev, ["state"] = "detached", ["forced"] = true };
        }
        lock (_hotDisks) { if (_hotDisks.TryGetValue(vdev, out var h)) h.State = "forced"; }
        // domain.json keeps listing it (QEMU still has it open) so a refused lock names this domain.
        SetPlanDrives(_plan.Drives.Where(x => x.Disk.Vdev != vdev).ToList());
        Log($"block-detach --force {vdev}: the guest has not released it; out of the domain's disks now, QEMU and the lock keep it until the guest acknowledges or the domain reboots");
        return new JsonObject { ["vdev"] = vdev, ["state"] = "forced", ["forced"] = true };
    }

    /// <summary>After the device is gone: remove its backend, release the lock, drop it from the plan and the record.</summary>
    private async Task FinishDetachAsync(string vdev, bool removeBackend, CancellationToken cancellationToken)
    {
        HotDisk? hot;
        lock (_hotDisks) _hotDisks.TryGetValue(vdev, out hot);
        if (removeBackend && _qmp is { } qmp)
        {
            try
            {
                if (hot?.BlockdevNode == true)
                    await qmp.ExecuteAsync("blockdev-del", new JsonObject { ["node-name"] = "drive-" + vdev }, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false);
                else if (await LegacyDriveExistsAsync(qmp, vdev, cancellationToken).ConfigureAwait(false))
                    await HumanAsync(qmp, "drive_del drive-" + vdev, cancellationToken).ConfigureAwait(false);
            }
            catch (QmpCommandException ex)
            {
                Log($"removing the backend of {vdev}: {ex.Message}");
            }
        }
        lock (_hotDisks)
        {
            hot?.Lock?.Dispose();
            _hotDisks.Remove(vdev);
        }
        ReleaseConfigDiskLock(vdev);
        SetPlanDrives(_plan.Drives.Where(x => x.Disk.Vdev != vdev).ToList());
        UpdateRecord(r => r with { Disks = r.Disks.Where(x => x.Vdev != vdev).ToList() });
    }

    /// <summary>True if QEMU still has the -drive backend drive-VDEV (QEMU deletes some on unplug by itself).</summary>
    private static async Task<bool> LegacyDriveExistsAsync(QmpClient qmp, string vdev, CancellationToken cancellationToken)
    {
        var blocks = await qmp.ExecuteAsync("query-block", null, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false);
        return blocks is JsonArray a && a.OfType<JsonObject>().Any(b => b["device"] is JsonValue d && d.TryGetValue(out string? name) && name == "drive-" + vdev);
    }

    /// <summary>An HMP command (drive_del has no QMP form for -drive backends); HMP reports errors as text.</summary>
    private static async Task HumanAsync(QmpClient qmp, string command, CancellationToken cancellationToken)
    {
        var output = await qmp.ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = command }, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false);
        string text = output is JsonValue v && v.TryGetValue(out string? s) ? s.Trim() : "";
        if (text.Length > 0) throw new QmpCommandException(command, "GenericError", text.Length > 200 ? text[..200] : text);
    }

    /// <summary>block-list: the plan's disks (config, then attached) with their state, plus force-detached ones QEMU still holds.</summary>
    private Task<JsonNode?> BlockListAsync(JsonObject request, CancellationToken cancellationToken)
    {
        var disks = new JsonArray();
        var byVdev = Record.Disks.ToDictionary(d => d.Vdev, StringComparer.Ordinal);
        Dictionary<string, string> states;
        List<XlDiskSpec> forced;
        lock (_hotDisks)
        {
            states = _hotDisks.ToDictionary(e => e.Key, e => e.Value.State, StringComparer.Ordinal);
            forced = _hotDisks.Values.Where(h => h.State == "forced").Select(h => h.Spec).ToList();
        }
        foreach (var d in _plan.Drives)
            disks.Add(DiskJson(byVdev.GetValueOrDefault(d.Disk.Vdev) ?? ToRecordDisk(d.Disk), states.GetValueOrDefault(d.Disk.Vdev, "attached")));
        foreach (var spec in forced) disks.Add(DiskJson(ToRecordDisk(spec), "forced"));
        return Task.FromResult<JsonNode?>(new JsonObject { ["name"] = Record.Name, ["id"] = Record.Id, ["disks"] = disks });
    }

    private static DomainDisk ToRecordDisk(XlDiskSpec spec) =>
        new(spec.Target, spec.Vdev, spec.Format == XlDiskFormat.Qcow2 ? "qcow2" : "raw", spec.Writable, spec.IsCdrom, IdentityOrNull(spec.Target));

    private static JsonObject DiskJson(DomainDisk d, string state) => new()
    {
        ["vdev"] = d.Vdev,
        ["target"] = d.Target,
        ["format"] = d.Format,
        ["access"] = d.Writable ? "rw" : "ro",
        ["devtype"] = d.Cdrom ? "cdrom" : "disk",
        ["state"] = state,
        ["identity"] = d.Identity,
    };

    /// <summary>Replaces the plan's drives; DeviceArgs is rebuilt (drives first, then the NICs) so the next boot has them.</summary>
    private void SetPlanDrives(IReadOnlyList<PlannedDrive> drives)
    {
        var nicArgs = _plan.DeviceArgs.Skip(4 * _plan.Drives.Count).ToList();
        var args = new List<string>();
        foreach (var d in drives) args.AddRange(["-drive", d.DriveOption, "-device", d.DeviceOption]);
        args.AddRange(nicArgs);
        _plan = _plan with { Drives = drives, DeviceArgs = args };
    }
}
