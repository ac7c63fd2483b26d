namespace DomBoot.Toolstack.Supervision;

// Placeholder until vCPU pinning lands (Supervisor.Vcpus.cs replaces this file).
internal sealed partial class Supervisor
{
    private partial Task ApplyPinningAsync(CancellationToken cancellationToken) => _qmp is null ? Task.CompletedTask : Task.CompletedTask;
}
