using DomBoot.Boot.Model;

namespace DomBoot.Boot.Discovery;

/// <summary>The one place discovery calls each config format's evaluator.</summary>
internal static class ConfigEvaluators
{
    public static BootMenu Grub2(string text, string path, IGuestFiles files) => DomBoot.Boot.Grub2.Grub2Interpreter.Evaluate(text, path, files);

    public static BootMenu GrubLegacy(string text, string path, IGuestFiles files) => DomBoot.Boot.GrubLegacy.GrubLegacyConfig.Evaluate(text, path, files);

    public static BootMenu Syslinux(string text, string path, IGuestFiles files) => DomBoot.Boot.Syslinux.SyslinuxConfig.Evaluate(text, path, files);

    public static BootMenu Bls(IGuestFiles files, GuestPath entriesDirectory) =>
        DomBoot.Boot.Bls.BlsMenu.FromDirectory(files, entriesDirectory with { Path = entriesDirectory.Path[..entriesDirectory.Path.LastIndexOf('/')] });
}
