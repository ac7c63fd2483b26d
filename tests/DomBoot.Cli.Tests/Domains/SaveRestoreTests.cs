using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using DomBoot.TestSupport;
using Xunit.Abstractions;

namespace DomBoot.Cli.Tests.Domains;

/// <summary>save / restore against real QEMU with the test guest, and restore's refusal of damaged save files.</summary>
public sealed class SaveRestoreTests(ITestOutputHelper output)
{
    [Fact]
    public void SaveRestore_HeartbeatContinues()
    {
        using var h = new DomainHarness();
        var cfg = h.KernelConfig("sr", extra: "vif = [ 'mac=00:16:3e:5a:00:01' ]", memory: 256);
        h.Ok("create", cfg);
        int idBefore = h.Listed("sr")!.Value.GetProperty("domid").GetInt32();
        h.WaitForConsole("sr", "^GUEST-UP");
        h.WaitForConsole("sr", "^HEARTBEAT 4$");

        string file = h.File("sr.save");
        var sw = Stopwatch.StartNew();
        var saved = h.Ok("save", "sr", file);
        double saveSeconds = sw.Elapsed.TotalSeconds;
        Assert.Contains($"Saving to {file}", saved.Stderr, StringComparison.Ordinal);
        int last = h.LastHeartbeat("sr");
        Assert.Null(h.Listed("sr"));
        Assert.False(Directory.Exists(Path.Combine(h.StateDir, "domains", "sr")));
        Assert.True(File.Exists(file));
        Assert.Empty(Directory.GetFiles(h.Root, "sr.save.tmp-*"));
        Assert.Contains("saved domain sr", File.ReadAllText(Path.Combine(h.StateDir, "logs", "sr.log")), StringComparison.Ordinal);
        Thread.Sleep(1000);
        Assert.Equal(last, h.LastHeartbeat("sr"));

        int mark = h.ConsoleLog("sr").Length;
        sw.Restart();
        var restored = h.Ok("restore", file);
        double restoreSeconds = sw.Elapsed.TotalSeconds;
        Assert.Contains($"Restoring domain from {file}", restored.Stderr, StringComparison.Ordinal);
        Assert.Matches(@"^Restored domain sr \(id \d+\)", restored.Stdout);
        var row = h.Listed("sr")!.Value;
        int idAfter = row.GetProperty("domid").GetInt32();
        Assert.NotEqual(idBefore, idAfter);
        Assert.Equal("running", row.GetProperty("state").GetString());
        // The saved argv is rewritten for the new id: its ssh forward is 22NN of the new id, and QEMU listens there.
        string argv = File.ReadAllText(Path.Combine(h.StateDir, "domains", "sr", "domain.json"));
        Assert.Contains($"hostfwd=tcp:127.0.0.1:{2200 + idAfter}-:22", argv, StringComparison.Ordinal);
        Assert.DoesNotContain($"hostfwd=tcp:127.0.0.1:{2200 + idBefore}-:22", argv, StringComparison.Ordinal);
        using (var tcp = new System.Net.Sockets.TcpClient()) tcp.Connect("127.0.0.1", 2200 + idAfter);

        var line = h.WaitForConsole("sr", @"^HEARTBEAT \d+$", after: mark);
        int first = int.Parse(line["HEARTBEAT ".Length..], CultureInfo.InvariantCulture);
        Assert.InRange(first, last + 1, last + 2);
        h.WaitForConsole("sr", $"^HEARTBEAT {first + 2}$", after: mark);
        Assert.DoesNotContain("GUEST-UP", h.ConsoleLog("sr")[mark..], StringComparison.Ordinal);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"256 MiB guest: save {saveSeconds:0.00} s (CLI, incl. supervisor exit), file {new FileInfo(file).Length} bytes; restore {restoreSeconds:0.00} s; heartbeat {last} -> {first}"));

        foreach (var l in File.ReadAllLines(Path.Combine(h.StateDir, "logs", "sr.log")).Where(l => l.Contains("saved domain", StringComparison.Ordinal) || l.Contains("restored domain", StringComparison.Ordinal)))
            output.WriteLine(l);

        h.Ok("shutdown", "-w", "sr");
        Assert.Null(h.Listed("sr"));
    }

    [Fact]
    public void SaveCheckpoint_KeepsRunning_AndRestoreOfTheLiveNameIsRefused()
    {
        using var h = new DomainHarness();
        h.Ok("create", h.KernelConfig("ck"));
        h.WaitForConsole("ck", "^HEARTBEAT 2$");
        string file = h.File("ck.save");
        h.Ok("save", "-c", "ck", file);
        Assert.True(File.Exists(file));
        Assert.Equal("running", h.Listed("ck")!.Value.GetProperty("state").GetString());
        int after = h.LastHeartbeat("ck");
        h.WaitForConsole("ck", $"^HEARTBEAT {after + 2}$");

        var again = h.Domboot("restore", file);
        Assert.Equal(64, again.ExitCode);
        Assert.Matches(@"^domboot: error: domain ck already exists", again.Stderr);
        h.Ok("destroy", "ck");
        Assert.Null(h.Listed("ck"));

        // restore -p: the domain comes back paused; unpause runs it from where it was saved.
        int mark = h.ConsoleLog("ck").Length;
        h.Ok("restore", "-p", file);
        Assert.Equal("paused", h.Listed("ck")!.Value.GetProperty("state").GetString());
        Thread.Sleep(1200);
        Assert.Equal(0, h.LastHeartbeat("ck", after: mark));
        h.Ok("unpause", "ck");
        h.WaitForConsole("ck", @"^HEARTBEAT \d+$", after: mark);
        Assert.DoesNotContain("GUEST-UP", h.ConsoleLog("ck")[mark..], StringComparison.Ordinal);

        // A domain paused when saved is restored paused (without -p).
        h.Ok("pause", "ck");
        string pausedFile = h.File("ck-paused.save");
        h.Ok("save", "ck", pausedFile);
        Assert.Null(h.Listed("ck"));
        h.Ok("restore", pausedFile);
        Assert.Equal("paused", h.Listed("ck")!.Value.GetProperty("state").GetString());
        h.Ok("destroy", "ck");
    }

    [Fact]
    public void Restore_RejectsDamagedFiles_BeforeStartingQemu()
    {
        using var h = new DomainHarness();
        h.Ok("create", h.KernelConfig("bad"));
        h.WaitForConsole("bad", "^HEARTBEAT 1$");
        string good = h.File("good.save");
        h.Ok("save", "bad", good);
        Assert.Null(h.Listed("bad"));
        byte[] bytes = File.ReadAllBytes(good);
        long streamOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(0x20));
        uint metadataLength = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(0x14));

        var cases = new List<(string Name, byte[] Data, string Message)>();
        foreach (long cut in new long[] { 0, 5, 95, 96, 96 + metadataLength / 2, 96 + metadataLength, streamOffset, streamOffset + 4, bytes.Length / 2, bytes.Length - 17, bytes.Length - 1 })
            cases.Add(($"cut-{cut}", bytes[..(int)cut], cut < 8 ? "not a domboot save file|truncated|needs" : "truncated|needs|bytes"));
        cases.Add(("bad-magic", Patch(bytes, b => b[0] = (byte)'X'), "not a domboot save file"));
        cases.Add(("bad-version", Patch(bytes, b => b[8] = 2), "version is 2"));
        cases.Add(("incomplete", Patch(bytes, b => b[0x0C] = 0), "incomplete"));
        cases.Add(("huge-metadata", Patch(bytes, b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(0x14), uint.MaxValue)), "metadata length"));
        cases.Add(("huge-stream", Patch(bytes, b => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(0x28), ulong.MaxValue)), "stream length"));
        cases.Add(("metadata-flip", Patch(bytes, b => b[100] ^= 0x20), "SHA-256"));
        cases.Add(("bootfile-flip", Patch(bytes, b => b[(int)streamOffset - 1000] ^= 1), "SHA-256"));
        cases.Add(("stream-magic", Patch(bytes, b => b[(int)streamOffset] = 0), "QEVM"));
        cases.Add(("trailer", Patch(bytes, b => b[^1] ^= 1), "trailer"));
        cases.Add(("appended", [.. bytes, 0], "the header says"));

        using var tmp = new TempDir();
        var env = new Dictionary<string, string>(h.Env);
        var fake = DombootProcess.FakeQemuEnvironment(tmp, out string started);
        foreach (var kv in fake) env[kv.Key] = kv.Value;
        foreach (var (name, data, message) in cases)
        {
            string path = h.File(name + ".save");
            File.WriteAllBytes(path, data);
            var r = DombootProcess.Run(["restore", path], env);
            Assert.True(r.ExitCode == 65, $"{name}: exit {r.ExitCode}\n{r.Stderr}");
            var lines = r.Stderr.TrimEnd('\n').Split('\n');
            Assert.True(lines.Length == 1, $"{name}: {r.Stderr}");
            Assert.StartsWith("domboot: error: ", lines[0], StringComparison.Ordinal);
            Assert.Matches(new Regex(message), lines[0]);
            Assert.False(File.Exists(started), $"{name}: QEMU was started");
            Assert.Empty(Directory.GetDirectories(Path.Combine(h.StateDir, "domains")));
            Assert.Equal(data.Length, new FileInfo(path).Length);
        }
        Assert.Empty(h.Ok("list", "--json").Stdout.Trim().Trim('[', ']').Trim());

        // Control: the intact file does get as far as starting (the fake) QEMU, so the checks above are what stopped it.
        var ok = DombootProcess.Run(["restore", good], env);
        Assert.Equal(69, ok.ExitCode);
        Assert.True(File.Exists(started));
        // The failed supervisor reports first and removes its domain folder right after.
        h.WaitUntil(() => Directory.GetDirectories(Path.Combine(h.StateDir, "domains")).Length == 0, "the failed restore's folder to be removed");
    }

    [Fact]
    public void Save_DiskFullMidStream_LeavesNothingAndDomainRunsOn()
    {
        using var h = new DomainHarness();
        string full = h.File("full");
        Directory.CreateDirectory(full);
        string cfg = h.KernelConfig("df");
        long bootFiles = new FileInfo(Cache.Kernel).Length + new FileInfo(h.Initramfs).Length;
        // Room for the header, metadata and boot files, but not for the migration stream.
        long size = bootFiles + (2 << 20);
        Tools.Run("mount", "-t", "tmpfs", "-o", "size=" + size.ToString(CultureInfo.InvariantCulture), "tmpfs", full);
        try
        {
            h.Ok("create", cfg);
            h.WaitForConsole("df", "^HEARTBEAT 3$");
            var r = h.Domboot("save", "df", Path.Combine(full, "df.save"));
            output.WriteLine($"disk-full save: exit {r.ExitCode}: {r.Stderr}");
            Assert.Equal(74, r.ExitCode);
            Assert.Matches(@"domboot: error: domain df: save to .* failed: .*; the domain runs on", r.Stderr);
            Assert.Empty(Directory.GetFileSystemEntries(full));
            Assert.Equal("running", h.Listed("df")!.Value.GetProperty("state").GetString());
            int last = h.LastHeartbeat("df");
            h.WaitForConsole("df", $"^HEARTBEAT {last + 2}$");
            h.Ok("destroy", "df");
        }
        finally
        {
            Tools.Run("umount", full);
        }
    }

    [Fact]
    public async Task Save_QemuKilledMidSave_LeavesNoFile()
    {
        using var h = new DomainHarness();
        h.Ok("create", h.KernelConfig("kq", memory: 1024));
        h.WaitForConsole("kq", "^HEARTBEAT 2$");
        int qemu = h.Pids("kq").Qemu;
        string folder = h.File("out");
        Directory.CreateDirectory(folder);
        string file = Path.Combine(folder, "kq.save");

        var psi = new ProcessStartInfo(DombootProcess.Executable) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "save", "kq", file }) psi.ArgumentList.Add(a);
        foreach (var kv in h.Env) psi.Environment[kv.Key] = kv.Value;
        using var save = Process.Start(psi)!;
        var stderr = save.StandardError.ReadToEndAsync();
        bool killed = KillWhenStreaming(save, folder, "kq.save.tmp-*", h.Initramfs, qemu);
        Assert.True(killed, "the save finished before the temporary file was seen");
        Assert.True(save.WaitForExit(60_000));
        string err = await stderr;
        output.WriteLine($"kill -9 QEMU mid-save: exit {save.ExitCode}: {err}");
        Assert.Equal(69, save.ExitCode);
        Assert.Matches(@"domboot: error: domain kq: (QEMU exited during the save|the save did not finish)", err);
        Assert.Empty(Directory.GetFileSystemEntries(folder));
        // QEMU died without a SHUTDOWN event: a crash, and on_crash defaults to destroy.
        h.WaitUntil(() => h.Listed("kq") is null, "the crashed domain to be gone");
        Assert.Empty(Directory.GetFileSystemEntries(folder));
    }

    [Fact]
    public void Save_SupervisorKilledMidSave_LeavesOnlyAnIncompleteTemporary()
    {
        using var h = new DomainHarness();
        h.Ok("create", h.KernelConfig("ks", memory: 1024));
        h.WaitForConsole("ks", "^HEARTBEAT 2$");
        int supervisor = h.Pids("ks").Supervisor;
        string folder = h.File("out");
        Directory.CreateDirectory(folder);
        string file = Path.Combine(folder, "ks.save");

        var psi = new ProcessStartInfo(DombootProcess.Executable) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "save", "ks", file }) psi.ArgumentList.Add(a);
        foreach (var kv in h.Env) psi.Environment[kv.Key] = kv.Value;
        using var save = Process.Start(psi)!;
        Assert.True(KillWhenStreaming(save, folder, "ks.save.tmp-*", h.Initramfs, supervisor), "the save finished before the stream was seen");
        Assert.True(save.WaitForExit(60_000));
        output.WriteLine($"kill -9 supervisor mid-save: exit {save.ExitCode}: {save.StandardError.ReadToEnd()}");
        Assert.Equal(69, save.ExitCode);
        Assert.False(File.Exists(file));
        // Nobody is left to delete the temporary; restore refuses it, since the complete flag was never set.
        var leftovers = Directory.GetFiles(folder);
        output.WriteLine($"left behind: {string.Join(", ", leftovers.Select(Path.GetFileName))}");
        foreach (var t in leftovers)
        {
            var r = h.Domboot("restore", t);
            Assert.Equal(65, r.ExitCode);
            Assert.Contains("incomplete", r.Stderr, StringComparison.Ordinal);
        }
        h.Ok("destroy", "ks");
        Assert.Null(h.Listed("ks"));
    }

    /// <summary>Kills <paramref name="pid"/> once the save's temporary has grown past the boot files (QEMU is streaming).</summary>
    private static bool KillWhenStreaming(Process save, string folder, string pattern, string initramfs, int pid)
    {
        long threshold = new FileInfo(Cache.Kernel).Length + new FileInfo(initramfs).Length + (4 << 20);
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(60) && !save.HasExited)
        {
            foreach (var t in Directory.GetFiles(folder, pattern))
            {
                long length;
                try { length = new FileInfo(t).Length; }
                catch (IOException) { continue; }
                if (length > threshold)
                {
                    Process.GetProcessById(pid).Kill();
                    return true;
                }
            }
            Thread.Sleep(1);
        }
        return false;
    }

    private static byte[] Patch(byte[] source, Action<byte[]> change)
    {
        var copy = (byte[])source.Clone();
        change(copy);
        return copy;
    }
}
