using System.Diagnostics;

namespace DomBoot.Cli.Tests.Fs;

/// <summary>Runs `domboot` keeping standard output as bytes (file contents are not text).</summary>
internal static class DombootBytes
{
    public sealed record Result(int ExitCode, byte[] Stdout, string Stderr);

    public static Result Run(params string[] args)
    {
        var psi = new ProcessStartInfo(DombootProcess.Executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        using var ms = new MemoryStream();
        var so = p.StandardOutput.BaseStream.CopyToAsync(ms);
        var se = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"domboot {string.Join(' ', args)} did not finish within 120 s");
        }
        so.GetAwaiter().GetResult();
        return new Result(p.ExitCode, ms.ToArray(), se.GetAwaiter().GetResult());
    }
}
