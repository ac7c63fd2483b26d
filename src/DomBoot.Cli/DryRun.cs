using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Config;
using DomBoot.Toolstack.Domains;
using DomBoot.Toolstack.Supervision;

namespace DomBoot.Cli;

/// <summary>create -n: the exact argv, computed the way the supervisor will, in a throw-away folder.</summary>
internal static class DryRun
{
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
