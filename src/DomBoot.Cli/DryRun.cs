using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Config;
using DomBoot.Toolstack.Domains;
using DomBoot.Toolstack.Supervision;

namespace DomBoot.Cli;

/// <summary>create -n: the exact argv, computed the way the supervisor will, in a throw-away folder.</summary>
internal static class DryRun
{
    public static int NextId(StateDirectory state)
    {
        var used = new DomainStore(state).List().Where(e => e.Liveness != DomainLiveness.Stale).Select(e => e.Record.Id).ToHashSet();
        int last = 0;
        if (File.Exists(state.LastId) && int.TryParse(File.ReadAllText(state.LastId).Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int l)) last = l;
        for (int i = 1; i <= DomainPlanner.MaxDomainId; i++)
        {
            int candidate = (last + i - 1) % DomainPlanner.MaxDomainId + 1;
            if (!used.Contains(candidate)) return candidate;
        }
        return 1;
    }

    public static IReadOnlyList<string>? ExactArgv(XlConfig config, DomainPlan plan, StateDirectory state, out string? why)
    {
        why = null;
        var temp = Path.Combine(Path.GetTempPath(), "domboot-dryrun-" + Guid.NewGuid().ToString("N")[..8]);
        var real = state.DomainFolder(plan.Name);
        try
        {
            Directory.CreateDirectory(temp);
            var paths = new DomainPaths(temp, Path.Combine(state.Logs, plan.Name + ".log"), Path.Combine(state.Logs, plan.Name + ".console.log"));
            // Remote kernels are not fetched by a dry run: the URL is shown as given.
            var boot = DomainBooter.Prepare(config, plan, paths, "00000000-0000-0000-0000-000000000000", new DomainBooter.BootOptions(), u => u, CancellationToken.None);
            return boot.QemuArgv.Select(a => a.Replace(temp, real, StringComparison.Ordinal)).ToList();
        }
        catch (Exception ex) when (ex is MalformedDataException or FileNotFoundException or DirectoryNotFoundException or UnsupportedFeatureException or InvalidRequestException or UnavailableException or IOException)
        {
            why = ex.Message;
            return null;
        }
        finally
        {
            try { Directory.Delete(temp, recursive: true); }
            catch (IOException) { }
        }
    }
}
