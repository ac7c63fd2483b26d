using System.CommandLine;
using System.Text.Json;
using DomBoot.Boot.Discovery;
using DomBoot.Boot.Extraction;
using DomBoot.Boot.Selection;

namespace DomBoot.Cli.Commands;

/// <summary>`domboot boot-entries DISK... [--json]` and `domboot extract DISK... -o DIR [--entry E]`.</summary>
internal static class BootEntriesCommand
{
    public static Command Build()
    {
        var disks = new Argument<string[]>("DISK") { Arity = ArgumentArity.OneOrMore, Description = "Guest disk images; the first is hd0/vda" };
        var json = CommonOptions.Json();
        var command = new Command("boot-entries", "List every boot entry the guest's config defines, which is the default and why");
        command.Arguments.Add(disks);
        command.Options.Add(json);
        command.SetAction(parseResult =>
        {
            using var guest = GuestDisks.Open(parseResult.GetValue(disks)!);
            var found = BootDiscovery.Discover(guest, new BootloaderLimits());
            guest.SetDefaultDevice(found.Device);
            var menu = found.Menu;
            string? chosen = null;
            try { chosen = EntrySelector.Select(menu, null, guest).Entry.Index.ToString(System.Globalization.CultureInfo.InvariantCulture); }
            catch (FileNotFoundException) { }
            if (parseResult.GetValue(json))
            {
                var options = new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase, Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() } };
                Console.Out.WriteLine(JsonSerializer.Serialize(new { menu.ConfigFormat, menu.ConfigPath, menu.DefaultIndex, menu.DefaultReason, Boots = chosen, menu.Entries, menu.Warnings }, options));
                return 0;
            }
            Console.Out.WriteLine($"{menu.ConfigFormat} config {menu.ConfigPath}; default {menu.DefaultIndex}: {menu.DefaultReason}");
            foreach (var e in menu.Entries)
            {
                var mark = e.Index.ToString(System.Globalization.CultureInfo.InvariantCulture) == chosen ? "*" : " ";
                Console.Out.WriteLine($"{mark}{e.Index,3}  {string.Join(" > ", e.MenuPath.Count > 0 ? e.MenuPath : [e.Title])}");
                Console.Out.WriteLine($"       kernel {e.Kernel}{(e.Initrds.Count > 0 ? "  initrd " + string.Join(" ", e.Initrds) : "")}");
                foreach (var m in e.Modules) Console.Out.WriteLine($"       module {m.File} {m.Args}");
                Console.Out.WriteLine($"       args   {e.Args}");
            }
            return 0;
        });
        return command;
    }

    public static Command BuildExtract()
    {
        var disks = new Argument<string[]>("DISK") { Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--output-directory", "-o") { Required = true, Description = "Existing directory for the kernel and ramdisk" };
        var entry = new Option<string?>("--entry") { Description = "Entry by index, title, id or path" };
        var command = new Command("extract", "Copy the chosen kernel and initrd out of the guest's disks");
        command.Arguments.Add(disks);
        command.Options.Add(output);
        command.Options.Add(entry);
        command.SetAction(parseResult =>
        {
            using var guest = GuestDisks.Open(parseResult.GetValue(disks)!);
            var found = BootDiscovery.Discover(guest, new BootloaderLimits());
            guest.SetDefaultDevice(found.Device);
            var chosen = EntrySelector.Select(found.Menu, parseResult.GetValue(entry), guest);
            var x = BootExtractor.Extract(guest, chosen.Entry, parseResult.GetValue(output)!, new BootloaderLimits(), multibootAsLinux: false, CancellationToken.None);
            Console.Out.WriteLine($"entry {chosen.Entry.Index} \"{chosen.Entry.Title}\" ({chosen.Reason})");
            Console.Out.WriteLine($"kernel {x.KernelPath}");
            if (x.RamdiskPath is not null) Console.Out.WriteLine($"ramdisk {x.RamdiskPath}");
            foreach (var m in x.Modules) Console.Out.WriteLine($"module {m.Path} {m.Args}");
            Console.Out.WriteLine($"args {x.Args}");
            return 0;
        });
        return command;
    }
}
