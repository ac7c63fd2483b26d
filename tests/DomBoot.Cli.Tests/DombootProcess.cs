using System.Diagnostics;
using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests;

/// <summary>Runs the built `domboot` executable as a user would, capturing its output and exit status.</summary>
internal static class DombootProcess
{
    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "domboot.slnx"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("domboot.slnx not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>The apphost next to this test assembly (the Cli project reference copies it here).</summary>
    public static string Executable
    {
        get
        {
            var local = Path.Combine(AppContext.BaseDirectory, "domboot");
            if (File.Exists(local)) return local;
            Assert.Fail($"domboot executable not found at {local}; build the solution (scripts/test.sh does)");
            return local;
        }
    }

    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(IEnumerable<string> args, IDictionary<string, string>? env = null, int timeoutMs = 240_000)
    {
        var psi = new ProcessStartInfo(Executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env is not null) foreach (var kv in env) psi.Environment[kv.Key] = kv.Value;
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutMs))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"domboot {string.Join(' ', args)} did not finish within {timeoutMs} ms");
        }
        return new Result(p.ExitCode, so.GetAwaiter().GetResult(), se.GetAwaiter().GetResult());
    }

    public static Result Run(params string[] args) => Run((IEnumerable<string>)args);

    /// <summary>A PATH whose qemu-system-x86_64 only records that it was started, to prove validation stops before QEMU.</summary>
    public static Dictionary<string, string> FakeQemuEnvironment(TempDir dir, out string startedMarker)
    {
        var bin = Path.Combine(dir.Path, "fakebin");
        Directory.CreateDirectory(bin);
        startedMarker = Path.Combine(dir.Path, "qemu-was-started");
        var script = Path.Combine(bin, "qemu-system-x86_64");
        File.WriteAllText(script, $"#!/bin/sh\ntouch '{startedMarker}'\nexit 1\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(script, (UnixFileMode)0b111_101_101);
        return new Dictionary<string, string> { ["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH") };
    }
}
