using System.CommandLine;
using DomBoot.Net.Packing;

namespace DomBoot.Cli.Commands;

/// <summary>`domboot pack --kernel K [--initrd I ...] [--cmdline C] [--os-release F] [--stub S] -o OUT.efi` and `domboot unpack IMAGE -o DIR`.</summary>
internal static class PackCommand
{
    public static Command Build()
    {
        var kernel = new Option<string>("--kernel", "-k") { Description = "Kernel (x86 bzImage) for the .linux section", Required = true };
        var initrd = new Option<string[]>("--initrd", "-i") { Description = "Initrd for .initrd; repeat to concatenate several" };
        var cmdline = new Option<string?>("--cmdline", "-c") { Description = "Kernel command line for .cmdline" };
        var osRelease = new Option<string?>("--os-release") { Description = "os-release file for .osrel" };
        var stub = new Option<string?>("--stub") { Description = $"systemd-stub to build on (default {UkiPackRequest.DefaultStubPath})" };
        var output = new Option<string>("--output", "-o") { Description = "The UKI to write (atomically)", Required = true };
        var command = new Command("pack", "Build a Unified Kernel Image (UKI) from a kernel, initrds and a command line on systemd-stub");
        foreach (var o in new Option[] { kernel, initrd, cmdline, osRelease, stub, output }) command.Options.Add(o);
        command.SetAction(parseResult =>
        {
            var request = UkiPackRequest.FromFiles(parseResult.GetValue(kernel)!, parseResult.GetValue(initrd) ?? [],
                parseResult.GetValue(cmdline), parseResult.GetValue(osRelease), parseResult.GetValue(stub));
            var outPath = parseResult.GetValue(output)!;
            var sections = UkiPacker.PackToFile(request, outPath);
            foreach (var s in sections)
                Console.Out.WriteLine(FormattableString.Invariant($"{s.Name,-9} file 0x{s.PointerToRawData:X8}  rva 0x{s.VirtualAddress:X8}  {s.VirtualSize,10} bytes"));
            Console.Error.WriteLine($"domboot: wrote {outPath}");
            return 0;
        });
        return command;
    }

    public static Command BuildUnpack()
    {
        var image = new Argument<string>("IMAGE") { Description = "A UKI (PE image with a .linux section)" };
        var output = new Option<string>("--output", "-o") { Description = "Directory for linux, initrd, cmdline, osrel, uname", Required = true };
        var command = new Command("unpack", "Write the sections of a UKI to files: linux, initrd, cmdline, osrel, uname");
        command.Arguments.Add(image);
        command.Options.Add(output);
        command.SetAction(parseResult =>
        {
            foreach (var path in UkiUnpacker.UnpackToDirectory(parseResult.GetValue(image)!, parseResult.GetValue(output)!))
                Console.Out.WriteLine(path);
            return 0;
        });
        return command;
    }
}
