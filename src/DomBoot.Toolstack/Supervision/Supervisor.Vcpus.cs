using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using DomBoot.Engine.Qmp;
using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Config;

namespace DomBoot.Toolstack.Supervision;

/// <summary>
/// vCPU pinning (xl vcpu-pin / vcpu-list, xl.cfg cpus=). QEMU runs one host thread per vCPU (TCG with MTTCG, and
/// KVM); `query-cpus-fast` names each thread, and sched_setaffinity(2) on the thread id pins it. The wanted
/// affinity per vCPU lives in DomainRecord.Pinning (null = every host CPU), so every boot pins again.
/// </summary>
internal sealed partial class Supervisor
{
    private async partial Task ApplyPinningAsync(CancellationToken cancellationToken)
    {
        var qmp = _qmp;
        if (qmp is null) return;
        OnNewQemu();
        IReadOnlyList<string?> pinning;
        try
        {
            pinning = Record.Pinning.Count > 0 ? Record.Pinning : InitialPinning(_plan.Cpus, _plan.Vcpus);
        }
        catch (InvalidRequestException)
        {
            // Stop QEMU before the error is reported: create returns as soon as it sees the failure status.
            if (_qemu is { HasExited: false } q)
            {
                q.Kill(entireProcessTree: true);
                await q.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            }
            throw;
        }
        var threads = await VcpuThreadsAsync(qmp, cancellationToken).ConfigureAwait(false);
        for (int vcpu = 0; vcpu < threads.Count; vcpu++)
        {
            string? want = vcpu < pinning.Count ? pinning[vcpu] : null;
            var cpus = want is null ? HostCpus.Online() : CpuList.Parse(want, "cpus");
            HostCpus.SetAffinity(threads[vcpu], cpus);
        }
        if (pinning.Any(p => p is not null)) Log($"vCPU pinning: {string.Join(" / ", pinning.Select(p => p ?? "all"))}");
        UpdateRecord(r => r with { Pinning = pinning });
    }

    /// <summary>cpus= as per-vCPU lists: one set for all, or list entry i for vCPU i (later vCPUs unpinned).</summary>
    private static List<string?> InitialPinning(XlCpuPinning? cpus, int vcpus)
    {
        var result = new List<string?>();
        var host = HostCpus.Online();
        for (int i = 0; i < vcpus; i++)
        {
            IReadOnlyList<int>? set = cpus is null ? null : cpus.AllVcpus ?? (i < cpus.PerVcpu.Count ? cpus.PerVcpu[i] : null);
            if (set is null) { result.Add(null); continue; }
            // "all" in xl.cfg expands to 0-4095; only the CPUs this host has count.
            var usable = set.Where(host.Contains).ToList();
            if (usable.Count == 0)
                throw new InvalidRequestException($"cpus for vCPU {i} is {CpuList.Format(set)}; none of these CPUs exists on this host (CPUs {CpuList.Format(host)})");
            result.Add(usable.Count == host.Count ? null : CpuList.Format(usable));
        }
        return result;
    }

    /// <summary>Thread id per cpu-index, from query-cpus-fast.</summary>
    private static async Task<List<int>> VcpuThreadsAsync(QmpClient qmp, CancellationToken cancellationToken)
    {
        var answer = await qmp.ExecuteAsync("query-cpus-fast", null, QmpClient.DefaultTimeout, cancellationToken).ConfigureAwait(false);
        var byIndex = new SortedDictionary<int, int>();
        if (answer is JsonArray cpus)
        {
            foreach (var c in cpus.OfType<JsonObject>())
            {
                if (c["cpu-index"] is JsonValue i && i.TryGetValue(out int index) && c["thread-id"] is JsonValue t && t.TryGetValue(out int tid) && index is >= 0 and <= XlConfig.Limits.MaxVcpus)
                    byIndex[index] = tid;
            }
        }
        if (byIndex.Count == 0) throw new UnavailableException("QEMU reported no vCPU threads (query-cpus-fast)");
        return [.. byIndex.Values];
    }

    private void RegisterDeviceOps()
    {
        _ops["vcpu-pin"] = VcpuPinAsync;
        _ops["vcpu-list"] = VcpuListAsync;
        _ops["block-attach"] = BlockAttachAsync;
        _ops["block-detach"] = BlockDetachAsync;
        _ops["block-list"] = BlockListAsync;
    }

    /// <summary>vcpu-pin {vcpu: N | "all", cpus: "0-1,^0" | "all"}: pins now and remembers it for later boots.</summary>
    private async Task<JsonNode?> VcpuPinAsync(JsonObject request, CancellationToken cancellationToken)
    {
        var qmp = RequireQmp();
        var threads = await VcpuThreadsAsync(qmp, cancellationToken).ConfigureAwait(false);
        string vcpuText = request["vcpu"] switch
        {
            JsonValue v when v.TryGetValue(out int n) => n.ToString(CultureInfo.InvariantCulture),
            JsonValue v when v.TryGetValue(out string? s) => s,
            _ => "",
        };
        List<int> which;
        if (vcpuText == "all") which = Enumerable.Range(0, threads.Count).ToList();
        else if (int.TryParse(vcpuText, NumberStyles.None, CultureInfo.InvariantCulture, out int one) && one < threads.Count) which = [one];
        else throw new InvalidRequestException($"vcpu is {Quote.Text(vcpuText)}; expected \"all\" or a vCPU number from 0 to {threads.Count - 1}");
        string cpusText = request["cpus"] is JsonValue cv && cv.TryGetValue(out string? ct) ? ct : "";
        var host = HostCpus.Online();
        var cpus = CpuList.ParseForHost(cpusText, host);
        string? stored = cpus.Count == host.Count ? null : CpuList.Format(cpus);
        var pinning = Record.Pinning.ToList();
        while (pinning.Count < threads.Count) pinning.Add(null);
        foreach (int v in which)
        {
            HostCpus.SetAffinity(threads[v], cpus);
            pinning[v] = stored;
        }
        UpdateRecord(r => r with { Pinning = pinning });
        Log($"vcpu-pin {vcpuText} {cpusText}: vCPU thread(s) {string.Join(',', which.Select(v => threads[v]))} now on CPUs {CpuList.Format(cpus)}");
        return new JsonObject { ["vcpus"] = new JsonArray([.. which.Select(v => (JsonNode)v)]), ["cpus"] = CpuList.Format(cpus) };
    }

    /// <summary>vcpu-list: per vCPU its thread, current CPU and CPU time (/proc), and its actual affinity.</summary>
    private async Task<JsonNode?> VcpuListAsync(JsonObject request, CancellationToken cancellationToken)
    {
        var qmp = RequireQmp();
        var threads = await VcpuThreadsAsync(qmp, cancellationToken).ConfigureAwait(false);
        var host = HostCpus.Online();
        int qemuPid = _qemu?.Id ?? 0;
        bool paused = Record.State is "paused" or "shutdown" or "crashed";
        var rows = new JsonArray();
        for (int v = 0; v < threads.Count; v++)
        {
            var stat = ThreadStat.Read(qemuPid, threads[v]);
            var affinity = HostCpus.GetAffinity(threads[v]);
            rows.Add(new JsonObject
            {
                ["vcpu"] = v,
                ["thread_id"] = threads[v],
                ["cpu"] = stat?.Processor ?? -1,
                ["state"] = paused ? "--p" : stat?.State == 'R' ? "r--" : "-b-",
                ["time_s"] = Math.Round(stat?.CpuSeconds ?? 0, 1),
                ["hard_affinity"] = affinity.Count == host.Count && affinity.All(host.Contains) ? "all" : CpuList.Format(affinity),
                ["soft_affinity"] = "all",
            });
        }
        return new JsonObject { ["name"] = Record.Name, ["id"] = Record.Id, ["vcpus"] = rows };
    }
}

/// <summary>The fields of /proc/PID/task/TID/stat vcpu-list shows.</summary>
internal sealed record ThreadStat(char State, int Processor, double CpuSeconds)
{
    public static ThreadStat? Read(int pid, int tid)
    {
        string text;
        try { text = File.ReadAllText($"/proc/{pid}/task/{tid}/stat"); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
        int close = text.LastIndexOf(')');
        if (close < 0 || close + 2 >= text.Length) return null;
        var rest = text[(close + 2)..].Split(' '); // rest[0] is field 3
        long Field(int n) => n - 3 < rest.Length && long.TryParse(rest[n - 3], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v) ? v : 0;
        // proc(5): 3 state, 14 utime, 15 stime (clock ticks, USER_HZ = 100), 39 processor (CPU last run on)
        return new ThreadStat(rest[0].Length > 0 ? rest[0][0] : '?', (int)Field(39), (Field(14) + Field(15)) / 100.0);
    }
}

/// <summary>CPU lists as xl writes them: "0-3,5,^1", "all".</summary>
internal static class CpuList
{
    public const int MaxCpu = XlCpuPinning.MaxCpu;

    /// <summary>Parses a list without host checks ("all" = 0..MaxCpu).</summary>
    public static List<int> Parse(string text, string what) => ParseCore(text, what, out _);

    /// <summary>
    /// Parses a list for this host: a CPU the host does not have is an error; "all" means every host CPU; an empty
    /// result is an error.
    /// </summary>
    public static List<int> ParseForHost(string text, IReadOnlyList<int> host)
    {
        ArgumentNullException.ThrowIfNull(host);
        var set = ParseCore(text, "cpus", out bool all);
        var missing = set.Where(c => !host.Contains(c)).ToList();
        if (!all && missing.Count > 0)
            throw new InvalidRequestException($"cpus {Quote.Text(text)}: CPU {missing[0]} does not exist on this host (CPUs {Format(host)})");
        var usable = set.Where(host.Contains).ToList();
        if (usable.Count == 0) throw new InvalidRequestException($"cpus {Quote.Text(text)} leaves no CPU to run on (this host has CPUs {Format(host)})");
        return usable;
    }

    private static List<int> ParseCore(string text, string what, out bool all)
    {
        all = false;
        if (string.IsNullOrWhiteSpace(text) || text.Length > 1024)
            throw new InvalidRequestException($"{what} is {Quote.Text(text ?? "")}; expected CPU numbers and ranges like \"0-3,5,^1\" or \"all\"");
        var set = new SortedSet<int>();
        foreach (var raw in text.Split(','))
        {
            string part = raw.Trim();
            bool exclude = part.StartsWith('^');
            if (exclude) part = part[1..];
            int lo, hi;
            if (part == "all") { lo = 0; hi = MaxCpu; all |= !exclude; }
            else
            {
                int dash = part.IndexOf('-', StringComparison.Ordinal);
                int? l = Cpu(dash < 0 ? part : part[..dash]), h = dash < 0 ? l : Cpu(part[(dash + 1)..]);
                if (l is null || h is null || h < l)
                    throw new InvalidRequestException($"{what} is {Quote.Text(text)}; expected CPU numbers and ranges like \"0-3,5,^1\" or \"all\" (0 to {MaxCpu})");
                lo = l.Value;
                hi = h.Value;
            }
            for (int c = lo; c <= hi; c++) { if (exclude) set.Remove(c); else set.Add(c); }
        }
        return [.. set];
    }

    private static int? Cpu(string s) =>
        s.Length is > 0 and <= 4 && s.All(char.IsAsciiDigit) && int.Parse(s, CultureInfo.InvariantCulture) is var n && n <= MaxCpu ? n : null;

    /// <summary>Sorted CPUs as ranges: 0-3,5.</summary>
    public static string Format(IEnumerable<int> cpus)
    {
        var sorted = cpus.Distinct().Order().ToList();
        if (sorted.Count == 0) return "none";
        var parts = new List<string>();
        int start = sorted[0], prev = sorted[0];
        foreach (int c in sorted.Skip(1).Append(int.MinValue))
        {
            if (c == prev + 1) { prev = c; continue; }
            parts.Add(start == prev ? start.ToString(CultureInfo.InvariantCulture) : string.Create(CultureInfo.InvariantCulture, $"{start}-{prev}"));
            start = prev = c;
        }
        return string.Join(',', parts);
    }
}

/// <summary>The host's CPUs and thread affinity (sched_getaffinity/sched_setaffinity on thread ids).</summary>
internal static class HostCpus
{
#pragma warning disable SYSLIB1054 // plain DllImport as in Posix.cs; no unsafe blocks in this project
    [DllImport("libc", EntryPoint = "sched_setaffinity", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int SchedSetAffinity(int pid, nint cpuSetSize, byte[] mask);

    [DllImport("libc", EntryPoint = "sched_getaffinity", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int SchedGetAffinity(int pid, nint cpuSetSize, [Out] byte[] mask);
#pragma warning restore SYSLIB1054

    private const int MaskBytes = (CpuList.MaxCpu + 1) / 8;

    /// <summary>The CPUs this process may run on (its own affinity: the CPUs a vCPU can be given).</summary>
    public static List<int> Online() => GetAffinity(0);

    public static List<int> GetAffinity(int tid)
    {
        var mask = new byte[MaskBytes];
        if (SchedGetAffinity(tid, MaskBytes, mask) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (tid == 0) return Enumerable.Range(0, Environment.ProcessorCount).ToList();
            throw new IOException($"sched_getaffinity({tid}) failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }
        var cpus = new List<int>();
        for (int i = 0; i < MaskBytes * 8; i++)
        {
            if ((mask[i / 8] & (1 << (i % 8))) != 0) cpus.Add(i);
        }
        return cpus;
    }

    public static void SetAffinity(int tid, IReadOnlyList<int> cpus)
    {
        var mask = new byte[MaskBytes];
        foreach (int c in cpus) mask[c / 8] |= (byte)(1 << (c % 8));
        if (SchedSetAffinity(tid, MaskBytes, mask) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"sched_setaffinity(thread {tid}, CPUs {CpuList.Format(cpus)}) failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }
    }
}
