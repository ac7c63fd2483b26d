namespace DomBoot.Toolstack.Supervision;

// Placeholder until save/restore lands (Supervisor.Save.cs replaces this file).
internal sealed partial class Supervisor
{
    private partial Task RestoreIncomingCoreAsync(string file, CancellationToken cancellationToken) =>
        throw new DomBoot.Formats.Errors.UnavailableException($"domain {Name}: restore is not implemented yet");
}
