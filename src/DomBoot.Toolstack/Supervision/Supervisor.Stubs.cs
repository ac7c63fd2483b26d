namespace DomBoot.Toolstack.Supervision;

// Placeholders until save/restore and vCPU pinning land in their own files (Supervisor.Save.cs, Supervisor.Vcpus.cs).
internal sealed partial class Supervisor
{
    private partial Task RestoreIncomingCoreAsync(string file, CancellationToken cancellationToken) =>
        throw new DomBoot.Formats.Errors.UnavailableException($"domain {Name}: restore is not implemented yet");

    private partial Task ApplyPinningAsync(CancellationToken cancellationToken) => _qmp is null ? Task.CompletedTask : Task.CompletedTask;
}
