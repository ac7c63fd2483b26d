using System.Diagnostics;
using System.Text;

namespace DomBoot.TestSupport;

/// <summary>Runs the real tools tests build their inputs with. A missing tool fails the test, naming the setup command.</summary>
public static class Tools
{
    public const string SetupCommand = "scripts/setup.sh";

    /// <summary>Absolute path of <paramref name="tool"/> on PATH (plus /usr/sbin, /sbin); fails the test when absent.</summary>
    public static string Require(string tool)
    {
        var path = Find(tool);
        if (path is null)
            Assert.Fail($"required tool '{tool}' is not installed; run `{SetupCommand}` (it installs every Debian package the tests use)");
        return path!;
    }

    public static string? Find(string tool)
    {
        if (tool.Contains('/')) return File.Exists(tool) ? tool : null;
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
        foreach (var d in dirs)
        {
            var p = Path.Combine(d, tool);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    /// <summary>Runs a tool to completion; fails the test on a non-zero exit unless <paramref name="check"/> is false.</summary>
    public static Result Run(string tool, IEnumerable<string> args, string? stdin = null, bool check = true,
        string? workingDirectory = null, int timeoutMs = 300_000, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(Require(tool))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env is not null) foreach (var kv in env) psi.Environment[kv.Key] = kv.Value;
        using var p = Process.Start(psi)!;
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        if (stdin is not null) p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        if (!p.WaitForExit(timeoutMs))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{tool} {string.Join(' ', args)} timed out after {timeoutMs} ms");
        }
        var r = new Result(p.ExitCode, so.GetAwaiter().GetResult(), se.GetAwaiter().GetResult());
        if (check && r.ExitCode != 0)
            Assert.Fail($"{tool} {string.Join(' ', args)} exited {r.ExitCode}: {r.Stderr}{r.Stdout}");
        return r;
    }

    public static Result Run(string tool, params string[] args) => Run(tool, (IEnumerable<string>)args);

    /// <summary>Runs a shell snippet with bash -c (for pipelines in test set-up only).</summary>
    public static Result Shell(string script, bool check = true) => Run("bash", ["-c", script], check: check);

    public static string Sha256(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(f));
    }

    public static string Sha256(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));

    public static string Utf8(byte[] b) => Encoding.UTF8.GetString(b);
}
