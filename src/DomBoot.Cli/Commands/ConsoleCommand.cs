using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Domains;
using DomBoot.Toolstack.Lifecycle;
using Microsoft.Win32.SafeHandles;

namespace DomBoot.Cli.Commands;

/// <summary>
/// `domboot console DOMAIN [--replay N]` (xl console): attaches this terminal to the domain's serial console; Ctrl-]
/// detaches and the domain keeps running. Also what `create -c` runs after starting the domain.
/// </summary>
internal static class ConsoleCommand
{
    public static Command Build()
    {
        var domain = DomainOptions.Domain();
        var stateDir = DomainOptions.StateDir();
        var replay = new Option<int>("--replay") { Description = "First print the last N lines of the console log (what the guest printed while nobody was attached)", DefaultValueFactory = _ => 0 };
        var command = new Command("console", "Attach to a domain's serial console (xl console); Ctrl-] detaches, the domain keeps running");
        command.Arguments.Add(domain);
        command.Options.Add(replay);
        command.Options.Add(stateDir);
        command.SetAction(p =>
        {
            int lines = p.GetValue(replay);
            if (lines < 0) throw new UsageException($"--replay {lines}: expected a number of lines, 0 or more");
            return Attach(StateDirectory.Resolve(p.GetValue(stateDir)), p.GetValue(domain)!, lines);
        });
        return command;
    }

    public static int Attach(StateDirectory state, string name) => Attach(state, name, 0);

    private static int Attach(StateDirectory state, string name, int replayLines)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var client = ConsoleClient.For(state, name);
        // fd 0 and 1 as plain streams: .NET's console streams would edit lines and translate bytes.
        using var input = new FileStream(new SafeFileHandle(0, ownsHandle: false), FileAccess.Read, 1);
        using var output = new FileStream(new SafeFileHandle(1, ownsHandle: false), FileAccess.Write, 1);
        if (replayLines > 0)
        {
            output.Write(client.ReplayTail(replayLines));
            output.Flush();
        }
        client.ConnectAsync(CancellationToken.None).GetAwaiter().GetResult();

        using var terminal = RawTerminal.Enter();
        // In raw mode the terminal does not turn \n into \r\n.
        string eol = terminal is null ? "\n" : "\r\n";
        void Say(string text) => Console.Error.Write("domboot: " + text + eol);
        void OnSignal(PosixSignalContext _) => terminal?.Restore();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, OnSignal);
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigquit = PosixSignalRegistration.Create(PosixSignal.SIGQUIT, OnSignal);

        Say($"connected to the console of {client.Name} (Ctrl-] detaches)");
        var end = client.RunAsync(input, output, Say, CancellationToken.None).GetAwaiter().GetResult();
        if (end == ConsoleEnd.DomainGone) Say($"domain {client.Name} is gone");
        else if (terminal is not null) Console.Error.Write(eol);
        terminal?.Restore();
        return ExitCodes.Ok;
    }
}

/// <summary>
/// The terminal on stdin in raw mode (`stty raw -echo`) until disposed or restored; the settings `stty -g` saved
/// before come back on every exit path (Dispose, and the signal handlers call Restore).
/// </summary>
internal sealed class RawTerminal : IDisposable
{
    private readonly string _saved;
    private int _restored;

    private RawTerminal(string saved) => _saved = saved;

    /// <summary>Null when stdin is not a terminal (pipes: nothing to set).</summary>
    public static RawTerminal? Enter()
    {
        if (Console.IsInputRedirected) return null;
        var saved = Stty("-g").Trim();
        if (saved.Length == 0 || saved.Contains(' ', StringComparison.Ordinal)) throw new UnavailableException($"stty -g printed {Quote.Text(saved)}; expected the saved terminal settings");
        var terminal = new RawTerminal(saved);
        Stty("raw", "-echo");
        return terminal;
    }

    public void Restore()
    {
        if (Interlocked.Exchange(ref _restored, 1) != 0) return;
        try { Stty(_saved); }
        catch (UnavailableException)
        {
            // The terminal hung up (SIGHUP): nothing left to restore.
        }
    }

    public void Dispose() => Restore();

    /// <summary>Runs stty with our terminal as its stdin (stty works on its stdin); returns what it printed.</summary>
    private static string Stty(params string[] args)
    {
        var psi = new ProcessStartInfo("stty") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi) ?? throw new UnavailableException("could not start stty"); }
        catch (System.ComponentModel.Win32Exception ex) { throw new UnavailableException("stty: " + ex.Message, ex); }
        using (p)
        {
            var so = p.StandardOutput.ReadToEndAsync();
            var se = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new UnavailableException($"stty {string.Join(' ', args)} exited {p.ExitCode}: {se.Trim()}");
            return so.GetAwaiter().GetResult();
        }
    }
}
