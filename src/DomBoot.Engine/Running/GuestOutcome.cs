namespace DomBoot.Engine.Running;

/// <summary>How a guest run ended. The CLI's exit status follows <see cref="GuestResult.ExitStatus"/>.</summary>
public enum GuestOutcome
{
    PoweredOff,
    Rebooted,
    Crashed,
    Killed,
    TimedOut,
    Interrupted,
    QemuFailed,
}

public sealed record GuestResult(GuestOutcome Outcome, int QemuExitCode, string Detail, TimeSpan Elapsed)
{
    /// <summary>0 powered off, 2 rebooted, 3 crashed/panicked, 4 killed, 70 QEMU failed, 124 timed out, 130 interrupted.</summary>
    public int ExitStatus => Outcome switch
    {
        GuestOutcome.PoweredOff => 0,
        GuestOutcome.Rebooted => 2,
        GuestOutcome.Crashed => 3,
        GuestOutcome.Killed => 4,
        GuestOutcome.TimedOut => 124,
        GuestOutcome.Interrupted => 130,
        _ => 70,
    };

    public string Describe() => Outcome switch
    {
        GuestOutcome.PoweredOff => "guest powered off",
        GuestOutcome.Rebooted => "guest rebooted (the run ends on reboot)",
        GuestOutcome.Crashed => "guest crashed: " + Detail,
        GuestOutcome.Killed => "guest killed: " + Detail,
        GuestOutcome.TimedOut => "guest timed out: " + Detail,
        GuestOutcome.Interrupted => "interrupted: guest torn down",
        _ => "QEMU failed: " + Detail,
    };
}
