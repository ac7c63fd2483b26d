using System.Diagnostics;
using DomBoot.Boot.Model;
using DomBoot.Boot.Pygrub;

namespace DomBoot.Cli;

/// <summary>
/// The interactive boot menu on a terminal: arrow keys move, Enter boots, e edits the command line, and the
/// config's timeout boots the default when no key is pressed. Never used when input or output is not a terminal.
/// </summary>
internal static class TerminalMenu
{
    public static InteractiveChoice? Choose(BootMenu menu)
    {
        if (menu.Entries.Count == 0) return null;
        int selected = Math.Clamp(menu.DefaultIndex, 0, menu.Entries.Count - 1);
        int timeout = menu.TimeoutSeconds ?? 5;
        var clock = Stopwatch.StartNew();
        bool touched = false;
        var err = Console.Error;
        while (true)
        {
            Draw(menu, selected, touched ? null : Math.Max(0, timeout - (int)clock.Elapsed.TotalSeconds));
            if (!touched)
            {
                while (!Console.KeyAvailable && clock.Elapsed.TotalSeconds < timeout) Thread.Sleep(50);
                if (!Console.KeyAvailable) return new InteractiveChoice(selected, null);
                touched = true;
            }
            var key = Console.ReadKey(intercept: true);
            switch (key.Key)
            {
                case ConsoleKey.UpArrow: selected = Math.Max(0, selected - 1); break;
                case ConsoleKey.DownArrow: selected = Math.Min(menu.Entries.Count - 1, selected + 1); break;
                case ConsoleKey.Enter: return new InteractiveChoice(selected, null);
                case ConsoleKey.E:
                    err.Write($"\nargs [{menu.Entries[selected].Args}]: ");
                    var line = Console.ReadLine();
                    return new InteractiveChoice(selected, string.IsNullOrEmpty(line) ? null : line);
            }
        }
    }

    private static void Draw(BootMenu menu, int selected, int? secondsLeft)
    {
        var err = Console.Error;
        err.Write("\x1b[2J\x1b[H");
        err.WriteLine($"domboot boot menu ({menu.ConfigFormat}: {menu.ConfigPath})");
        for (int i = 0; i < menu.Entries.Count; i++)
        {
            var e = menu.Entries[i];
            var title = string.Join(" > ", e.MenuPath.Count > 0 ? e.MenuPath : [e.Title]);
            var safe = new string(title.Select(c => char.IsControl(c) ? '?' : c).ToArray());
            err.WriteLine($"{(i == selected ? "> " : "  ")}{i,2}  {safe}");
        }
        err.WriteLine(secondsLeft is { } s ? $"Booting entry {selected} in {s} s. Arrows move, Enter boots, e edits the command line." : "Arrows move, Enter boots, e edits the command line.");
    }
}
