using System.Globalization;
using System.Text.RegularExpressions;
using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Config;

namespace DomBoot.Toolstack.Domains;

/// <summary>How alive a domain is, from its locks and processes (never from what domain.json claims).</summary>
internal enum DomainLiveness
{
    /// <summary>The supervisor holds the domain's owner lock.</summary>
    Supervised,

    /// <summary>The supervisor is gone (killed) but its QEMU still runs.</summary>
    Orphaned,

    /// <summary>Neither runs: a leftover folder, removed by the next list, create or destroy.</summary>
    Stale,
}

/// <summary>A domain found in the state directory.</summary>
internal sealed record DomainEntry(DomainRecord Record, DomainLiveness Liveness, string Folder);

/// <summary>
/// The state directory's domains: race-safe claims of names and ids (under the store lock), and the truth about
/// which domains still run. A domain's folder holds owner.lock, locked by its supervisor for its whole life.
/// </summary>
internal sealed partial class DomainStore(StateDirectory state)
{
    public static readonly TimeSpan StoreLockTimeout = TimeSpan.FromSeconds(20);
    public const int MaxNameLength = 64;

    public StateDirectory State { get; } = state;

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.+-]*$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();

    public static string OwnerLockPath(string folder) => Path.Combine(folder, "owner.lock");
    public static string RecordPath(string folder) => Path.Combine(folder, "domain.json");

    public static void ValidateName(string name)
    {
        if (name.Length is 0 or > MaxNameLength || !NamePattern().IsMatch(name) || name is "." or "..")
            throw new InvalidRequestException($"domain name {Quote.Text(name)}: expected 1 to {MaxNameLength} letters, digits, '.', '_', '+' or '-', not starting with a punctuation mark");
    }

    /// <summary>
    /// Claims NAME for the calling process (the supervisor): creates its folder, takes its owner lock (returned;
    /// keep it for the domain's life), picks the next free id, and writes the first domain.json. Exactly one of
    /// several racing claims for one name wins; the others get "already exists".
    /// </summary>
    public (FileLock Owner, DomainRecord Record) Claim(string name, Func<int, DomainRecord> makeRecord)
    {
        ArgumentNullException.ThrowIfNull(makeRecord);
        ValidateName(name);
        State.Ensure();
        using var storeLock = FileLock.Acquire(State.StoreLock, StoreLockTimeout);
        var folder = State.DomainFolder(name);
        if (Directory.Exists(folder))
        {
            var existing = Probe(folder);
            if (existing is not null && existing.Liveness != DomainLiveness.Stale)
                throw new InvalidRequestException(existing.Liveness == DomainLiveness.Orphaned
                    ? $"domain {name} already exists (id {existing.Record.Id}; its supervisor is gone but QEMU pid {existing.Record.QemuPid} still runs: `domboot destroy {name}` cleans up)"
                    : $"domain {name} already exists (id {existing.Record.Id})");
            RemoveFolder(folder);
        }
        Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        // A list probing the new folder holds a shared lock for a moment; wait that out.
        FileLock? owner = null;
        for (int attempt = 0; attempt < 200 && owner is null; attempt++)
        {
            owner = FileLock.TryAcquire(OwnerLockPath(folder), exclusive: true);
            if (owner is null) Thread.Sleep(5);
        }
        if (owner is null) throw new InvalidRequestException($"domain {name} already exists (its folder is locked)");
        try
        {
            int id = NextId();
            var record = makeRecord(id);
            record.Save(RecordPath(folder));
            File.WriteAllText(State.LastId, id.ToString(CultureInfo.InvariantCulture));
            return (owner, record);
        }
        catch
        {
            owner.Dispose();
            RemoveFolder(folder);
            throw;
        }
    }

    /// <summary>
    /// xl's ids: sequential, the next after the last one handed out, skipping ids still in use, wrapping at the
    /// maximum. Claim calls it under the store lock; a dry run calls it to show the id create would pick.
    /// </summary>
    internal int NextId()
    {
        int last = 0;
        if (File.Exists(State.LastId) && int.TryParse(File.ReadAllText(State.LastId).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int l)) last = l;
        var used = List().Select(e => e.Record.Id).ToHashSet();
        for (int i = 1; i <= DomainPlanner.MaxDomainId; i++)
        {
            int candidate = (last + i - 1) % DomainPlanner.MaxDomainId + 1;
            if (!used.Contains(candidate)) return candidate;
        }
        throw new UnavailableException($"all {DomainPlanner.MaxDomainId} domain ids are in use");
    }

    /// <summary>Every domain folder with a readable record, stale ones included (callers decide what to do with them).</summary>
    public IReadOnlyList<DomainEntry> List()
    {
        if (!Directory.Exists(State.Domains)) return [];
        var result = new List<DomainEntry>();
        foreach (var folder in Directory.EnumerateDirectories(State.Domains).Order(StringComparer.Ordinal))
        {
            if (Probe(folder) is { } e) result.Add(e);
        }
        return result.OrderBy(e => e.Record.Id).ToList();
    }

    /// <summary>The domain called NAME, or with id NAME (xl accepts both), or FileNotFound-style "no such domain".</summary>
    public DomainEntry Find(string nameOrId)
    {
        ArgumentNullException.ThrowIfNull(nameOrId);
        if (nameOrId.Length is > 0 and <= MaxNameLength && NamePattern().IsMatch(nameOrId))
        {
            var folder = State.DomainFolder(nameOrId);
            if (Directory.Exists(folder) && Probe(folder) is { Liveness: not DomainLiveness.Stale } e) return e;
        }
        if (int.TryParse(nameOrId, NumberStyles.None, CultureInfo.InvariantCulture, out int id))
        {
            var byId = List().FirstOrDefault(e => e.Record.Id == id && e.Liveness != DomainLiveness.Stale);
            if (byId is not null) return byId;
        }
        throw new DomainNotFoundException(nameOrId);
    }

    /// <summary>Removes the folders of domains that no longer run (under the store lock, re-checked there).</summary>
    public int RemoveStale()
    {
        if (!Directory.Exists(State.Domains)) return 0;
        int removed = 0;
        foreach (var e in List().Where(e => e.Liveness == DomainLiveness.Stale))
        {
            using var storeLock = FileLock.Acquire(State.StoreLock, StoreLockTimeout);
            if (Probe(e.Folder) is { Liveness: DomainLiveness.Stale })
            {
                RemoveFolder(e.Folder);
                removed++;
            }
        }
        return removed;
    }

    /// <summary>Removes a domain's folder when its supervisor is done with it (the owner lock is dropped after).</summary>
    public static void RemoveFolder(string folder)
    {
        try { Directory.Delete(folder, recursive: true); }
        catch (DirectoryNotFoundException) { }
    }

    private static DomainEntry? Probe(string folder)
    {
        var recordPath = RecordPath(folder);
        DomainRecord record;
        try { record = DomainRecord.Load(recordPath); }
        catch (Exception ex) when (ex is FileNotFoundException or MalformedDataException or IOException)
        {
            // A folder without a readable record: mid-claim (locked) or a crash before the first write (stale).
            if (FileLock.IsHeld(OwnerLockPath(folder))) return null;
            return new DomainEntry(new DomainRecord { Name = Path.GetFileName(folder), Id = 0, Uuid = "", State = "dying", CreatedUtc = DateTimeOffset.UnixEpoch }, DomainLiveness.Stale, folder);
        }
        DomainLiveness liveness =
            FileLock.IsHeld(OwnerLockPath(folder)) ? DomainLiveness.Supervised
            : record.QemuPid > 0 && Posix.IsAlive(record.QemuPid, record.QemuStartTime) ? DomainLiveness.Orphaned
            : DomainLiveness.Stale;
        return new DomainEntry(record, liveness, folder);
    }
}

/// <summary>No domain by that name or id (exit 66 like a missing file).</summary>
internal sealed class DomainNotFoundException(string nameOrId) : FileNotFoundException($"no domain named or numbered {Quote.Text(nameOrId)}");
