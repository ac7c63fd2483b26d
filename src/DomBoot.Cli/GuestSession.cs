using System.Globalization;
using System.Runtime.InteropServices;
using DomBoot.Engine.Planning;
using DomBoot.Engine.Running;

namespace DomBoot.Cli;

/// <summary>Runs a planned guest on this terminal: Ctrl-C (SIGINT) and SIGTERM tear it down; the exit status says how it ended.</summary>
internal static class GuestSession
{
    public static int Run(BootPlan plan, RuntimePaths runtime, TimeSpan? timeout)
    {
        using var cts = new CancellationTokenSource();
        void OnSignal(PosixSignalContext ctx) { ctx.Cancel = true; cts.Cancel(); }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        Directory.CreateDirectory(runtime.Directory);
        try
        {
            using var stdout = Console.OpenStandardOutput();
            using var stdin = Console.OpenStandardInput();
            var console = new GuestConsole(stdout, stdin, Console.Error);
            var result = GuestRunner.RunAsync(plan, runtime, console, timeout, cts.Token).GetAwaiter().GetResult();
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"domboot: {result.Describe()} after {result.Elapsed.TotalSeconds:0.00} s (exit {result.ExitStatus})"));
            return result.ExitStatus;
        }
        finally
        {
            try { Directory.Delete(runtime.Directory, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    public static RuntimePaths NewRuntime() =>
        new(Path.Combine(Path.GetTempPath(), $"domboot-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}"));
}
