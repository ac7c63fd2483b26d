using System.CommandLine;

namespace DomBoot.Cli.Commands;

/// <summary>Every top-level verb, in help order.</summary>
internal static class CommandCatalog
{
    public static IEnumerable<Command> All() =>
    [
        DemoCommand.Build(),
        RunCommand.Build(),
        KernelCommand.Build(),
        BootloaderCommand.Build(),
        BootEntriesCommand.Build(),
        BootEntriesCommand.BuildExtract(),
        InitramfsCommand.Build(),
        DiskCommand.Build(),
        FsCommand.Build(),
        CreateCommand.Build(),
        .. DomainCommands.All(),
        ConsoleCommand.Build(),
        .. SaveRestoreCommands.All(),
        .. DeviceCommands.All(),
        PackCommand.Build(),
        PackCommand.BuildUnpack(),
        ServeCommand.Build(),
        FetchCommand.Build(),
    ];
}
