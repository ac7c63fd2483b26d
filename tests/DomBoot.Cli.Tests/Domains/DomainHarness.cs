using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Domains;

/// <summary>
/// A private state directory for domboot's toolstack, the test guest (ToolstackGuest) and helpers to read domain
/// consoles. Dispose kills whatever the test left running (QEMU and supervisors, by the pids in domain.json) and
/// removes the folder, so a failing test never leaves a guest behind. The path is short: Unix socket paths are
/// limited to 107 bytes.
/// </summary>
internal sealed class DomainHarness : IDisposable
{
    public string Root { get; }
    public string StateDir => Path.Combine(Root, "st");
    public Dictionary<string, string> Env { get; }

    public DomainHarness()
    {
        Tools.Require("qemu-system-x86_64");
        Root = Path.Combine("/tmp", "dbt-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(Root);
        Env = new Dictionary<string, string> { ["DOMBOOT_STATE_DIR"] = StateDir };
        // Ids (and so the 22NN ssh ports) start at a random point per harness: tests run in parallel, each with
        // its own state directory, and must not fight over host ports.
        Directory.CreateDirectory(StateDir);
        System.IO.File.WriteAllText(Path.Combine(StateDir, "last-id"), Random.Shared.Next(100, 9000).ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    public string File(string name) => Path.Combine(Root, name);

    /// <summary>The test guest's initramfs (heartbeats, BLOCKDEVS, acpid power button), copied into this folder.</summary>
    public string Initramfs => ToolstackGuest.Initramfs(Root);

    /// <summary>A config for a direct-boot domain of the test guest; <paramref name="extra"/> adds lines.</summary>
    public string KernelConfig(string name, string extra = "", string cmdlineExtra = "", int memory = 256, int vcpus = 1)
    {
        var path = File(name + ".cfg");
        System.IO.File.WriteAllText(path, $"""
            name = "{name}"
            kernel = "{Cache.Kernel}"
            ramdisk = "{Initramfs}"
            cmdline = "{ToolstackGuest.BaseCmdline}{(cmdlineExtra.Length > 0 ? " " + cmdlineExtra : "")}"
            memory = {memory}
            vcpus = {vcpus}
            {extra}

            """);
        return path;
    }

    public DombootProcess.Result Domboot(params string[] args) => DombootProcess.Run(args, Env);

    /// <summary>Runs domboot and fails the test (with its output) unless it exits 0.</summary>
    public DombootProcess.Result Ok(params string[] args)
    {
        var r = Domboot(args);
        Assert.True(r.ExitCode == 0, $"domboot {string.Join(' ', args)} exited {r.ExitCode}\nstdout: {r.Stdout}\nstderr: {r.Stderr}\nlogs:\n{Logs()}");
        return r;
    }

    public string ConsoleLogPath(string name) => Path.Combine(StateDir, "logs", name + ".console.log");

    public string ConsoleLog(string name)
    {
        var p = ConsoleLogPath(name);
        if (!System.IO.File.Exists(p)) return "";
        using var f = new FileStream(p, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var r = new StreamReader(f);
        return r.ReadToEnd();
    }

    /// <summary>Waits until a console line matches; returns it. Fails with the console and supervisor logs.</summary>
    public string WaitForConsole(string name, string pattern, TimeSpan? timeout = null, int after = 0)
    {
        var re = new Regex(pattern, RegexOptions.CultureInvariant);
        var sw = Stopwatch.StartNew();
        var limit = timeout ?? TimeSpan.FromSeconds(60);
        while (sw.Elapsed < limit)
        {
            var text = ConsoleLog(name);
            if (text.Length > after)
            {
                foreach (var raw in text[after..].Split('\n'))
                {
                    var line = raw.TrimEnd('\r');
                    if (re.IsMatch(line)) return line;
                }
            }
            Thread.Sleep(100);
        }
        Assert.Fail($"no console line matching /{pattern}/ from {name} within {limit.TotalSeconds:0} s\nconsole tail:\n{Tail(ConsoleLog(name), 1500)}\nlogs:\n{Logs()}");
        return "";
    }

    /// <summary>The highest HEARTBEAT n printed so far (0 if none).</summary>
    public int LastHeartbeat(string name, int after = 0)
    {
        var text = ConsoleLog(name);
        int last = 0;
        foreach (Match m in Regex.Matches(text.Length > after ? text[after..] : "", @"HEARTBEAT (\d+)"))
            last = Math.Max(last, int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        return last;
    }

    /// <summary>The domain's record as `list --json` reports it (null if not listed).</summary>
    public JsonElement? Listed(string name)
    {
        var r = Ok("list", "--json");
        using var doc = JsonDocument.Parse(r.Stdout);
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            if (e.GetProperty("name").GetString() == name) return e.Clone();
        }
        return null;
    }

    public void WaitUntil(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var sw = Stopwatch.StartNew();
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        while (sw.Elapsed < limit)
        {
            if (condition()) return;
            Thread.Sleep(100);
        }
        Assert.Fail($"timed out after {limit.TotalSeconds:0} s waiting for {what}\nlogs:\n{Logs()}");
    }

    /// <summary>Every supervisor log (NAME.log) in the state directory, for failure messages.</summary>
    public string Logs()
    {
        var dir = Path.Combine(StateDir, "logs");
        if (!Directory.Exists(dir)) return "(no logs)";
        return string.Join("\n", Directory.GetFiles(dir, "*.log").Where(f => !f.EndsWith(".console.log", StringComparison.Ordinal))
            .Select(f => $"== {Path.GetFileName(f)}\n{Tail(System.IO.File.ReadAllText(f), 3000)}"));
    }

    private static string Tail(string s, int n) => s.Length <= n ? s : s[^n..];

    /// <summary>The pids recorded for a domain (QEMU, supervisor), read from its domain.json.</summary>
    public (int Qemu, int Supervisor) Pids(string name)
    {
        var path = Path.Combine(StateDir, "domains", name, "domain.json");
        using var doc = JsonDocument.Parse(System.IO.File.ReadAllText(path));
        var root = doc.RootElement;
        return (root.GetProperty("qemu_pid").GetInt32(), root.GetProperty("supervisor_pid").GetInt32());
    }

    public static bool Alive(int pid)
    {
        if (pid <= 0) return false;
        try
        {
            var stat = System.IO.File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            return close > 0 && stat.Length > close + 2 && stat[close + 2] != 'Z';
        }
        catch (IOException) { return false; }
    }

    public void Dispose()
    {
        var domains = Path.Combine(StateDir, "domains");
        if (Directory.Exists(domains))
        {
            foreach (var json in Directory.GetFiles(domains, "domain.json", SearchOption.AllDirectories))
            {
                try
                {
                    using var doc = JsonDocument.Parse(System.IO.File.ReadAllText(json));
                    foreach (var key in new[] { "supervisor_pid", "qemu_pid" })
                    {
                        if (doc.RootElement.TryGetProperty(key, out var pid) && pid.GetInt32() > 0 && Alive(pid.GetInt32()))
                        {
                            try { Process.GetProcessById(pid.GetInt32()).Kill(); }
                            catch (ArgumentException) { }
                            catch (InvalidOperationException) { }
                        }
                    }
                }
                catch (Exception ex) when (ex is IOException or JsonException or KeyNotFoundException) { }
            }
        }
        try { Directory.Delete(Root, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
