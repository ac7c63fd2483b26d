using System.Diagnostics;
using System.Globalization;
using System.Text;
using DomBoot.Boot.Extraction;
using DomBoot.Boot.Pygrub;
using DomBoot.Formats.Errors;
using DomBoot.Formats.Kernel;

namespace DomBoot.Cli;

/// <summary>
/// `bootloader --runas=USER`: all guest parsing happens in a child running as USER (setpriv: new uid/gid, no
/// supplementary groups, no new privileges, no capabilities; prlimit: address space, file size, no core), which
/// reads the disk through a descriptor the parent opened and writes kernel and ramdisk into a private folder.
/// The parent only accepts a well-formed simple0 record naming regular files in that folder within the size
/// limits, checks the kernel with the kernel inspector, and copies the bytes into the output directory itself.
/// </summary>
internal static class Deprivileged
{
    public const int MaxRecordBytes = 64 * 1024;
    public const long ChildAddressSpaceBytes = 4L << 30;

    public static BootloaderResult Run(string user, BootloaderOptions o, IReadOnlyList<string> passThrough)
    {
        var (uid, gid) = ResolveUser(user);
        if (o.Disks.Count != 1) throw new InvalidRequestException("--runas takes exactly one disk, as pygrub does");
        if (!Directory.Exists(o.OutputDirectory)) throw new DirectoryNotFoundException($"{o.OutputDirectory}: output directory does not exist");
        var scratch = Directory.CreateTempSubdirectory("domboot-runas-").FullName;
        try
        {
            Exec("chown", [$"{uid}:{gid}", scratch]);
            var self = Environment.ProcessPath ?? throw new UnavailableException("cannot find the domboot executable for the child");
            var script = "exec 3<\"$1\" || exit 66; shift; exec \"$@\"";
            var args = new List<string> { "-c", script, "domboot-runas", o.Disks[0],
                "setpriv", $"--reuid={uid}", $"--regid={gid}", "--clear-groups", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--",
                "prlimit", $"--as={ChildAddressSpaceBytes}", $"--fsize={Math.Max(o.Limits.MaxKernelBytes, o.Limits.MaxInitrdBytes) + (1 << 20)}", "--core=0", "--",
                self, "bootloader", "-q", "--output-format=simple0", $"--output-directory={scratch}" };
            args.AddRange(passThrough);
            args.Add("/dev/fd/3");
            var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
            foreach (var a in args) psi.ArgumentList.Add(a);
            psi.Environment.Clear();
            psi.Environment["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin";
            psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
            foreach (var k in new[] { "DOTNET_ROOT", "DOTNET_ROOT_X64" })
                if (Environment.GetEnvironmentVariable(k) is { } v) psi.Environment[k] = v;
            using var p = Process.Start(psi) ?? throw new UnavailableException("could not start the deprivileged child");
            p.StandardInput.Close();
            var err = p.StandardError.ReadToEndAsync();
            var record = ReadBounded(p.StandardOutput.BaseStream, MaxRecordBytes);
            if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException("deprivileged bootloader child ran longer than 120 s"); }
            var stderr = err.GetAwaiter().GetResult().Trim();
            if (p.ExitCode != 0)
            {
                var last = stderr.Split('\n').LastOrDefault(l => l.StartsWith("domboot: error: ", StringComparison.Ordinal)) ?? stderr.Split('\n').LastOrDefault() ?? "";
                throw new MalformedDataException("deprivileged bootloader", -1, $"child as uid {uid} failed (exit {p.ExitCode}): {last.Replace("domboot: error: ", "", StringComparison.Ordinal)}");
            }
            return Accept(record, scratch, o);
        }
        finally
        {
            try { Directory.Delete(scratch, recursive: true); }
            catch (IOException) { }
        }
    }

    private static BootloaderResult Accept(byte[] record, string scratch, BootloaderOptions o)
    {
        string? kernel = null, ramdisk = null, args = null;
        var text = Encoding.UTF8.GetString(record);
        if (!text.EndsWith("\0\0", StringComparison.Ordinal)) throw new MalformedDataException("child record", record.Length, "does not end with NUL NUL; expected a simple0 record");
        foreach (var item in text[..^2].Split('\0'))
        {
            int sp = item.IndexOf(' ', StringComparison.Ordinal);
            var (key, value) = sp < 0 ? (item, "") : (item[..sp], item[(sp + 1)..]);
            switch (key)
            {
                case "kernel" when kernel is null: kernel = value; break;
                case "ramdisk" when ramdisk is null: ramdisk = value; break;
                case "args" when args is null: args = value; break;
                default: throw new MalformedDataException("child record", -1, $"item {Quote.Text(item)}; expected one each of kernel, ramdisk, args");
            }
        }
        if (kernel is null) throw new MalformedDataException("child record", -1, "has no kernel item");
        var created = new List<string>();
        try
        {
            var k = Copy(kernel, scratch, o.OutputDirectory, "boot_kernel.", o.Limits.MaxKernelBytes, created);
            var image = KernelInspector.Inspect(k);
            var r = ramdisk is null ? null : Copy(ramdisk, scratch, o.OutputDirectory, "boot_ramdisk.", o.Limits.MaxInitrdBytes, created);
            var bytes = PygrubRecord.Format(o.OutputFormat, k, r, args ?? "");
            return new BootloaderResult(bytes, null, "chosen by the deprivileged child", new ExtractedBoot(k, r, args ?? "", image, []), null);
        }
        catch
        {
            foreach (var c in created) File.Delete(c);
            throw;
        }
    }

    /// <summary>Only a regular file directly in the scratch folder, within the limit, is accepted.</summary>
    private static string Copy(string childPath, string scratch, string outputDirectory, string prefix, long limit, List<string> created)
    {
        var full = Path.GetFullPath(childPath);
        if (!string.Equals(Path.GetDirectoryName(full), scratch, StringComparison.Ordinal) || !Path.GetFileName(full).StartsWith(prefix, StringComparison.Ordinal))
            throw new MalformedDataException("child record", -1, $"path {Quote.Text(childPath)} is outside the child's folder");
        var info = new FileInfo(full);
        if (!info.Exists || info.LinkTarget is not null) throw new MalformedDataException("child record", -1, $"{Quote.Text(childPath)} is not a regular file");
        if (info.Length > limit) throw new MalformedDataException("child record", -1, $"{Quote.Text(childPath)} is {info.Length} bytes; expected at most {limit}");
        var target = BootExtractor.CreateUnique(outputDirectory, prefix, created);
        using (var src = new FileStream(full, FileMode.Open, FileAccess.Read))
        using (var dst = new FileStream(target, FileMode.Open, FileAccess.Write))
        {
            var buf = new byte[1 << 20];
            long total = 0;
            int n;
            while ((n = src.Read(buf)) > 0)
            {
                total += n;
                if (total > limit) throw new MalformedDataException("child record", -1, $"{Quote.Text(childPath)} grew past {limit} bytes");
                dst.Write(buf, 0, n);
            }
        }
        return target;
    }

    private static byte[] ReadBounded(Stream s, int max)
    {
        var ms = new MemoryStream();
        var buf = new byte[4096];
        int n;
        while ((n = s.Read(buf)) > 0)
        {
            if (ms.Length + n > max) throw new MalformedDataException("child record", max, $"longer than {max} bytes");
            ms.Write(buf, 0, n);
        }
        return ms.ToArray();
    }

    private static (long Uid, long Gid) ResolveUser(string user)
    {
        string line;
        var r = ExecOut("getent", ["passwd", user]);
        if (r.Length > 0) line = r.Split('\n')[0];
        else if (long.TryParse(user, NumberStyles.None, CultureInfo.InvariantCulture, out long numeric)) return Checked(numeric, numeric);
        else throw new InvalidRequestException($"--runas {Quote.Text(user)}: no such user");
        var f = line.Split(':');
        return Checked(long.Parse(f[2], CultureInfo.InvariantCulture), long.Parse(f[3], CultureInfo.InvariantCulture));
    }

    private static (long, long) Checked(long uid, long gid) =>
        uid == 0 ? throw new InvalidRequestException("--runas root would not drop privileges; name an unprivileged user") : (uid, gid);

    private static void Exec(string tool, string[] args)
    {
        var psi = new ProcessStartInfo(tool) { UseShellExecute = false, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var e = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new IOException($"{tool} failed: {e.Trim()}");
    }

    private static string ExecOut(string tool, string[] args)
    {
        var psi = new ProcessStartInfo(tool) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode == 0 ? o.Trim() : "";
    }
}
