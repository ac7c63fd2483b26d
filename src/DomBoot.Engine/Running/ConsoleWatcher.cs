namespace DomBoot.Engine.Running;

/// <summary>
/// Recognises, on the serial console, the lines that tell how a guest ended when QEMU itself cannot see it:
/// a Linux panic without a pvpanic driver, and Xen halting or crashing on behalf of dom0 (Xen halts the CPUs
/// instead of powering the machine off).
/// </summary>
public static class ConsoleWatcher
{
    public const int MaxLineChars = 4096;

    private static readonly (string Marker, GuestOutcome Outcome)[] Markers =
    [
        ("Kernel panic - not syncing", GuestOutcome.Crashed),
        ("(XEN) Panic on CPU", GuestOutcome.Crashed),
        ("(XEN) Hardware Dom0 crashed", GuestOutcome.Crashed),
        ("(XEN) Hardware Dom0 halted", GuestOutcome.PoweredOff),
    ];

    public static GuestOutcome? Classify(string line)
    {
        foreach (var (marker, outcome) in Markers)
            if (line.Contains(marker, StringComparison.Ordinal)) return outcome;
        return null;
    }
}
