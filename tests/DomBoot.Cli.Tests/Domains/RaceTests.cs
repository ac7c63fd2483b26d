using System.Text.RegularExpressions;
using DomBoot.TestSupport;

namespace DomBoot.Cli.Tests.Domains;

/// <summary>Racing creates: for one name, or for one writable disk, exactly one wins; ids stay unique.</summary>
public sealed class RaceTests
{
    private static DombootProcess.Result[] Together(DomainHarness h, params string[][] argvs)
    {
        using var start = new Barrier(argvs.Length);
        var tasks = argvs.Select(a => Task.Run(() => { start.SignalAndWait(); return h.Domboot(a); })).ToArray();
        return Task.WhenAll(tasks).GetAwaiter().GetResult();
    }

    private static int IdOf(DombootProcess.Result r) =>
        int.Parse(Regex.Match(r.Stdout, @"Started domain \S+ \(id (\d+)\)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);

    private static readonly string[] Names = ["same", "da", "db"];

    [Fact]
    public void Create_RacingForOneNameOrOneDisk_ExactlyOneWins()
    {
        using var h = new DomainHarness();
        int last = int.Parse(System.IO.File.ReadAllText(System.IO.Path.Combine(h.StateDir, "last-id")), System.Globalization.CultureInfo.InvariantCulture);
        var cfg = h.KernelConfig("same", memory: 128);
        var results = Together(h, [.. Enumerable.Repeat(new[] { "create", cfg }, 4)]);
        var won = Assert.Single(results, r => r.ExitCode == 0);
        var lost = results.Where(r => r.ExitCode != 0).ToList();
        Assert.Equal(3, lost.Count);
        Assert.All(lost, r =>
        {
            Assert.Equal(64, r.ExitCode);
            Assert.Contains("domain same already exists", r.Stderr, StringComparison.Ordinal);
        });
        Assert.Single(FaultProbe.QemuPids(h));
        int first = IdOf(won);
        Assert.Equal(last + 1, first); // the losers of a name race use no id

        var disk = ToolstackGuest.ScratchDisk(h.Root, "race", 4);
        var pair = Together(h, ["create", FaultProbe.DiskConfig(h, "da", disk, writable: true)], ["create", FaultProbe.DiskConfig(h, "db", disk, writable: true)]);
        var diskWinner = Assert.Single(pair, r => r.ExitCode == 0);
        var diskLoser = Assert.Single(pair, r => r.ExitCode != 0);
        Assert.Equal(64, diskLoser.ExitCode);
        Assert.Matches("disk .* is in use by domain d[ab] \\(writable\\)", diskLoser.Stderr);
        Assert.Equal(2, FaultProbe.QemuPids(h).Count);

        // ids: unique, increasing in creation order, no more than one skipped (the disk race's loser had claimed one)
        int second = IdOf(diskWinner);
        Assert.InRange(second, first + 1, first + 2);
        var ids = Names.Select(n => h.Listed(n)).Where(e => e is not null).Select(e => e!.Value.GetProperty("domid").GetInt32()).ToList();
        Assert.Equal(2, ids.Count);
        Assert.Equal(ids.Count, ids.Distinct().Count());
        var third = h.Ok("create", h.KernelConfig("next", memory: 128));
        Assert.InRange(IdOf(third), second + 1, second + 2); // the next after the last one handed out (xl also spends the id of a failed create)
        foreach (var n in new[] { "same", "next", IdOf(diskWinner).ToString(System.Globalization.CultureInfo.InvariantCulture) }) h.Ok("destroy", n);
    }
}
