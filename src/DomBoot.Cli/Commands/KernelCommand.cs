using System.CommandLine;
using DomBoot.Formats.Kernel;

namespace DomBoot.Cli.Commands;

/// <summary>`domboot kernel inspect FILE [--json]`.</summary>
internal static class KernelCommand
{
    public static Command Build()
    {
        var file = new Argument<string>("FILE") { Description = "Kernel image: bzImage, ELF vmlinux (optionally gzip'd), Multiboot kernel or UKI" };
        var json = CommonOptions.Json();
        var inspect = new Command("inspect", "Show what a kernel image is and how it boots");
        inspect.Arguments.Add(file);
        inspect.Options.Add(json);
        inspect.SetAction(parseResult =>
        {
            var image = KernelInspector.Inspect(parseResult.GetValue(file)!);
            Console.Out.Write(parseResult.GetValue(json) ? KernelImageJson.ToJson(image) + "\n" : KernelImageText.Render(image));
            return 0;
        });
        var command = new Command("kernel", "Inspect kernel images");
        command.Subcommands.Add(inspect);
        return command;
    }
}
