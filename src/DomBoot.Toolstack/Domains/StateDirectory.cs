using System.Globalization;

namespace DomBoot.Toolstack.Domains;

/// <summary>
/// Where domains live while they run: /run/domboot as root, else $XDG_RUNTIME_DIR/domboot, else /tmp/domboot-UID;
/// DOMBOOT_STATE_DIR (or --state-dir) overrides. Layout: domains/NAME/ (one folder per domain: domain.json,
/// qmp.sock, control.sock, console.sock, boot files), logs/ (NAME.log, NAME.console.log, kept after the domain
/// is gone), locks/ (one lock file per disk), lock (the store lock), last-id.
/// </summary>
internal sealed record StateDirectory(string Root)
{
    public const string EnvironmentVariable = "DOMBOOT_STATE_DIR";

    /// <summary>Unix socket paths are at most 107 bytes; the longest we make is domains/NAME/console.sock.</summary>
    public const int MaxSocketPathBytes = 107;

    public string Domains => Path.Combine(Root, "domains");
    public string Logs => Path.Combine(Root, "logs");
    public string Locks => Path.Combine(Root, "locks");
    public string StoreLock => Path.Combine(Root, "lock");
    public string LastId => Path.Combine(Root, "last-id");

    public string DomainFolder(string name) => Path.Combine(Domains, name);

    public static StateDirectory Resolve(string? overridePath)
    {
        if (!string.IsNullOrEmpty(overridePath)) return new StateDirectory(Path.GetFullPath(overridePath));
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } env) return new StateDirectory(Path.GetFullPath(env));
        if (Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root") return new StateDirectory("/run/domboot");
        if (Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is { Length: > 0 } xdg) return new StateDirectory(Path.Combine(xdg, "domboot"));
        return new StateDirectory(Path.Combine(Path.GetTempPath(), "domboot-" + Environment.UserName.ToString(CultureInfo.InvariantCulture)));
    }

    /// <summary>Creates the folders (mode 0700: sockets and logs are the owner's only).</summary>
    public void Ensure()
    {
        foreach (var d in new[] { Root, Domains, Logs, Locks })
        {
            if (!Directory.Exists(d))
            {
                Directory.CreateDirectory(d, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }
    }
}
