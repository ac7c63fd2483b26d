using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Domains;
using DomBoot.Toolstack.Supervision;

namespace DomBoot.Toolstack.Lifecycle;

/// <summary>One row of `list`.</summary>
internal sealed record DomainListRow(string Name, int Id, int MemoryMiB, int Vcpus, string State, double CpuSeconds, bool Supervised, DomainRecord Record);

/// <summary>The CLI side of the life cycle: find a domain, ask its supervisor, and cope when the supervisor is gone.</summary>
internal sealed class DomainControl(StateDirectory state)
{
    public static readonly TimeSpan GoneTimeout = TimeSpan.FromSeconds(30);

    public DomainStore Store { get; } = new(state);

    /// <summary>xl list: running domains by id; stale folders (nothing runs) are removed on the way.</summary>
    public IReadOnlyList<DomainListRow> List()
    {
        var entries = Store.List();
        // Probing is most of list's cost: re-list (under the store lock) only when there is something to remove.
        if (entries.Any(e => e.Liveness == DomainLiveness.Stale)) Store.RemoveStale();
        return entries.Where(e => e.Liveness != DomainLiveness.Stale).Select(e =>
        {
            var r = e.Record;
            double cpu = r.QemuPid > 0 && Posix.IsAlive(r.QemuPid, r.QemuStartTime) ? Posix.CpuSeconds(r.QemuPid) : 0;
            return new DomainListRow(r.Name, r.Id, r.MemoryMiB, r.Vcpus, StateLetters(r, e.Liveness), cpu, e.Liveness == DomainLiveness.Supervised, r);
        }).ToList();
    }

    /// <summary>xl's six state columns: r b p s c d (c = the shutdown reason was a crash).</summary>
    internal static string StateLetters(DomainRecord r, DomainLiveness liveness)
    {
        var s = "------".ToCharArray();
        switch (r.State)
        {
            case "running": s[0] = 'r'; break;
            case "paused": s[2] = 'p'; break;
            case "shutdown": s[3] = 's'; break;
            case "crashed": s[3] = 's'; s[4] = 'c'; break;
            case "rebooting": s[4] = 'r'; break;
            case "starting": s[1] = 'b'; break;
            case "saving": s[2] = 'p'; break;
            case "dying": s[5] = 'd'; break;
        }
        if (liveness == DomainLiveness.Orphaned) s[5] = 'd';
        return new string(s);
    }

    public static string RenderList(IReadOnlyList<DomainListRow> rows)
    {
        var sb = new StringBuilder("Name                                        ID   Mem VCPUs\tState\tTime(s)\n");
        foreach (var r in rows)
            sb.Append(CultureInfo.InvariantCulture, $"{r.Name,-40} {r.Id,5} {r.MemoryMiB,5} {r.Vcpus,5}     {r.State}  {r.CpuSeconds,8:0.0}\n");
        return sb.ToString();
    }

    public static string ListJson(IReadOnlyList<DomainListRow> rows)
    {
        var array = new JsonArray();
        foreach (var r in rows)
        {
            array.Add(new JsonObject
            {
                ["name"] = r.Name,
                ["domid"] = r.Id,
                ["uuid"] = r.Record.Uuid,
                ["memory_mib"] = r.MemoryMiB,
                ["vcpus"] = r.Vcpus,
                ["state"] = r.Record.State,
                ["state_letters"] = r.State,
                ["cpu_time_s"] = Math.Round(r.CpuSeconds, 1),
                ["supervised"] = r.Supervised,
                ["qemu_pid"] = r.Record.QemuPid,
                ["supervisor_pid"] = r.Record.SupervisorPid,
                ["boots"] = r.Record.Boots,
                ["kernel"] = r.Record.Kernel,
                ["cmdline"] = r.Record.Cmdline,
                ["entry"] = r.Record.Entry,
                ["created"] = r.Record.CreatedUtc.ToString("O", CultureInfo.InvariantCulture),
            });
        }
        return array.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Sends one control request to NAME's supervisor. An orphaned domain (supervisor killed) is refused with what to do.</summary>
    public async Task<JsonNode?> CallAsync(string nameOrId, string op, JsonObject? args, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var e = Store.Find(nameOrId);
        if (e.Liveness == DomainLiveness.Orphaned)
            throw new UnavailableException($"domain {e.Record.Name}: its supervisor (pid {e.Record.SupervisorPid}) is gone and QEMU pid {e.Record.QemuPid} runs unsupervised; `domboot destroy {e.Record.Name}` cleans up");
        return await Control.CallAsync(Path.Combine(e.Folder, "control.sock"), op, args, timeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// destroy: asks the supervisor to quit QEMU; if the supervisor is gone, kills the orphaned QEMU itself (checked
    /// by pid and start time, so a recycled pid is never hit) and removes the folder. Waits until the domain is gone.
    /// </summary>
    public async Task DestroyAsync(string nameOrId, CancellationToken cancellationToken)
    {
        var e = Store.Find(nameOrId);
        if (e.Liveness == DomainLiveness.Supervised)
        {
            try
            {
                await Control.CallAsync(Path.Combine(e.Folder, "control.sock"), "destroy", null, Control.DefaultTimeout, cancellationToken).ConfigureAwait(false);
            }
            catch (SupervisorGoneException)
            {
                // It died between the probe and the call: fall through to the orphan path below.
            }
            if (await WaitGoneAsync(e, GoneTimeout, cancellationToken).ConfigureAwait(false)) return;
            e = new DomainEntry(e.Record, DomainLiveness.Orphaned, e.Folder);
        }
        var r = e.Record;
        if (r.QemuPid > 0 && Posix.IsAlive(r.QemuPid, r.QemuStartTime)) Posix.Signal(r.QemuPid, Posix.SigKill);
        if (r.SupervisorPid > 0 && Posix.IsAlive(r.SupervisorPid, r.SupervisorStartTime)) Posix.Signal(r.SupervisorPid, Posix.SigKill);
        var deadline = DateTime.UtcNow + GoneTimeout;
        while ((Posix.IsAlive(r.QemuPid, r.QemuStartTime) || FileLock.IsHeld(DomainStore.OwnerLockPath(e.Folder))) && DateTime.UtcNow < deadline)
            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        Store.RemoveStale();
        if (Directory.Exists(e.Folder) && Store.List().Any(x => x.Folder == e.Folder && x.Liveness != DomainLiveness.Stale))
            throw new IOException($"domain {r.Name} is still there after SIGKILL to QEMU pid {r.QemuPid}");
    }

    /// <summary>True once NAME's folder is gone (its supervisor finished) within the timeout.</summary>
    public static async Task<bool> WaitGoneAsync(DomainEntry e, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(e);
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (!Directory.Exists(e.Folder)) return true;
            var rec = DomainStore.RecordPath(e.Folder);
            if (!FileLock.IsHeld(DomainStore.OwnerLockPath(e.Folder)) && !(e.Record.QemuPid > 0 && Posix.IsAlive(e.Record.QemuPid, e.Record.QemuStartTime))) return true;
            if (File.Exists(rec))
            {
                try
                {
                    // A new domain of the same name (on_poweroff=restart is the same domain; a new create is not).
                    if (DomainRecord.Load(rec).Uuid != e.Record.Uuid) return true;
                }
                catch (Exception ex) when (ex is IOException or MalformedDataException) { }
            }
            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
        return false;
    }

    /// <summary>shutdown [-w]: the ACPI power button; with wait, until the domain is gone or the timeout says the guest ignored it.</summary>
    public async Task ShutdownAsync(string nameOrId, bool wait, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var e = Store.Find(nameOrId);
        await CallAsync(nameOrId, "shutdown", null, Control.DefaultTimeout, cancellationToken).ConfigureAwait(false);
        if (!wait) return;
        if (!await WaitGoneAsync(e, timeout, cancellationToken).ConfigureAwait(false))
            throw new TimeoutException($"domain {e.Record.Name} did not shut down within {timeout.TotalSeconds:0.#} s (the guest ignored the ACPI power button; `domboot destroy {e.Record.Name}` forces it off)");
    }
}
