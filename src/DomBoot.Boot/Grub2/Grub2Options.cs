namespace DomBoot.Boot.Grub2;

/// <summary>Bounds for <see cref="Grub2Interpreter"/>: a hostile grub.cfg may not make the host loop, recurse or allocate without limit.</summary>
public sealed record Grub2Options
{
    /// <summary>Commands executed in total (top level, sourced files, functions, entry bodies).</summary>
    public int MaxSteps { get; init; } = 1_000_000;

    /// <summary>Nesting of source/configfile (a file sourcing itself stops here).</summary>
    public int MaxSourceDepth { get; init; } = 16;

    /// <summary>Largest grub.cfg (or sourced file) in bytes.</summary>
    public long MaxConfigBytes { get; init; } = 16L * 1024 * 1024;

    /// <summary>Nesting of function calls and submenus.</summary>
    public int MaxFunctionDepth { get; init; } = 64;

    /// <summary>Menu entries in the flattened menu.</summary>
    public int MaxEntries { get; init; } = 4096;

    /// <summary>Largest single variable value in characters; also bounds one expanded word.</summary>
    public int MaxVariableBytes { get; init; } = 1024 * 1024;

    /// <summary>Largest grubenv file read by load_env.</summary>
    public int MaxEnvBytes { get; init; } = 64 * 1024;

    /// <summary>Largest BLS snippet (blscfg skips larger ones, as rhboot's blscfg.c does above 1 MiB).</summary>
    public int MaxBlsFileBytes { get; init; } = 1024 * 1024;

    /// <summary>$grub_platform GRUB would run on ("pc", "efi", "xen").</summary>
    public string Platform { get; init; } = "pc";

    /// <summary>$grub_cpu.</summary>
    public string Cpu { get; init; } = "i386";
}
