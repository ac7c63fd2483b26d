using DomBoot.Toolstack.Domains;

namespace DomBoot.Cli.Commands;

/// <summary>`domboot console DOMAIN`: placeholder until the console lands.</summary>
internal static class ConsoleCommand
{
    public static int Attach(StateDirectory state, string name)
    {
        ArgumentNullException.ThrowIfNull(state);
        Console.Error.WriteLine($"domboot: console for {name} is not implemented yet");
        return ExitCodes.Unavailable;
    }
}
