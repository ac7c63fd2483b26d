using System.CommandLine;

namespace DomBoot.Cli.Commands;

internal static class DomainOptions
{
    public static Option<string?> StateDir() => new("--state-dir") { Description = "State directory (default: $DOMBOOT_STATE_DIR, /run/domboot as root, else $XDG_RUNTIME_DIR/domboot)" };

    public static Argument<string> Domain() => new("DOMAIN") { Description = "Domain name or id" };
}
