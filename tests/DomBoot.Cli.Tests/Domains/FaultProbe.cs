using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace DomBoot.Cli.Tests.Domains;

/// <summary>What really runs for a harness (from /proc, not from domboot's records), for the fault and race tests.</summary>
internal static class FaultProbe
{
    /// <summary>Pids of the QEMU processes whose command line names this harness's state directory (and <paramref name="domain"/>'s -name, if given).</summary>
    public static List<int> QemuPids(DomainHarness h, string? domain = null)
    {
        var result = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) continue;
            string[] argv;
            try { argv = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0'); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            if (argv.Length == 0 || !Path.GetFileName(argv[0]).StartsWith("qemu-system", StringComparison.Ordinal)) continue;
            if (!argv.Any(a => a.Contains(h.StateDir, StringComparison.Ordinal))) continue;
            if (domain is not null && !argv.Contains(domain + ",debug-threads=on")) continue;
            if (DomainHarness.Alive(pid)) result.Add(pid);
        }
        return result;
    }

    public static int CountMatches(string text, string pattern) => Regex.Count(text, pattern, RegexOptions.Multiline | RegexOptions.CultureInvariant);

    public static string Log(DomainHarness h, string name)
    {
        var p = Path.Combine(h.StateDir, "logs", name + ".log");
        return File.Exists(p) ? File.ReadAllText(p, Encoding.UTF8) : "";
    }

    public static bool FolderExists(DomainHarness h, string name) => Directory.Exists(Path.Combine(h.StateDir, "domains", name));

    /// <summary>SIGKILL, as `kill -9` does (.NET's Process.Kill sends SIGKILL on Unix).</summary>
    public static void Kill9(int pid)
    {
        using var p = System.Diagnostics.Process.GetProcessById(pid);
        p.Kill();
    }

    /// <summary>A config whose only disk is <paramref name="disk"/> (xl's key=value disk syntax), booting the test guest.</summary>
    public static string DiskConfig(DomainHarness h, string name, string disk, bool writable, string extra = "") =>
        h.KernelConfig(name, $"disk = [ \"format=raw,vdev=xvda,access={(writable ? "w" : "r")},target={disk}\" ]\n{extra}", memory: 128);
}
