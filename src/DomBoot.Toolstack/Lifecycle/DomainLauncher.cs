using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Domains;
using DomBoot.Toolstack.Supervision;

namespace DomBoot.Toolstack.Lifecycle;

/// <summary>
/// `create` and `restore` in the background: hands the request to a new supervisor process (`domboot supervise
/// FILE`, which leaves our session) and waits until it reports the domain running or says why not.
/// </summary>
internal static class DomainLauncher
{
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(180);

    private sealed record PendingRequest(string StateRoot, string ConfigPath, string ConfigText, Dictionary<string, string> Variables, List<string> Overrides, bool Paused, string? RestoreFile, string StatusFile);

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Starts the supervisor (<paramref name="self"/> is how to run this program) and returns the domain's name and id.</summary>
    public static async Task<(string Name, int Id)> StartAsync(SupervisorRequest request, IReadOnlyList<string> self, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(self);
        request.State.Ensure();
        var pending = Path.Combine(request.State.Root, "pending");
        Directory.CreateDirectory(pending);
        string stem = Path.Combine(pending, "start-" + Guid.NewGuid().ToString("N"));
        string requestFile = stem + ".json", statusFile = stem + ".status";
        var dto = new PendingRequest(request.State.Root, request.ConfigPath, request.ConfigText, request.Variables.ToDictionary(), request.Overrides.ToList(), request.Paused, request.RestoreFile, statusFile);
        File.WriteAllText(requestFile, JsonSerializer.Serialize(dto, Json));
        try
        {
            var psi = new ProcessStartInfo(self[0]) { UseShellExecute = false };
            foreach (var a in self.Skip(1)) psi.ArgumentList.Add(a);
            psi.ArgumentList.Add("supervise");
            psi.ArgumentList.Add(requestFile);
            using var child = Process.Start(psi) ?? throw new UnavailableException($"could not start {self[0]} supervise");
            var deadline = DateTime.UtcNow + StartTimeout;
            while (true)
            {
                if (File.Exists(statusFile)) return ReadStatus(statusFile);
                if (child.HasExited)
                {
                    if (File.Exists(statusFile)) return ReadStatus(statusFile);
                    throw new UnavailableException($"the domain's supervisor exited with status {child.ExitCode} before reporting (see {request.State.Logs})");
                }
                if (DateTime.UtcNow > deadline)
                    throw new TimeoutException($"the domain did not start within {StartTimeout.TotalSeconds:0} s (its supervisor pid {child.Id} keeps trying; see {request.State.Logs})");
                await Task.Delay(20, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            File.Delete(requestFile);
            File.Delete(statusFile);
        }
    }

    private static (string, int) ReadStatus(string statusFile)
    {
        var status = Control.Parse(File.ReadAllText(statusFile), statusFile);
        if (status["ok"]?.GetValue<bool>() == true) return (status["name"]!.GetValue<string>(), status["id"]!.GetValue<int>());
        throw Control.ErrorOf(status);
    }

    /// <summary>The supervisor's side: reads (and deletes) the request file written by <see cref="StartAsync"/>.</summary>
    public static SupervisorRequest ReadRequest(string requestFile)
    {
        var info = new FileInfo(requestFile);
        if (!info.Exists) throw new FileNotFoundException($"{requestFile}: no such file", requestFile);
        if (info.Length > 4 << 20) throw new MalformedDataException(requestFile, -1, "request is larger than 4 MiB");
        PendingRequest dto;
        try
        {
            dto = JsonSerializer.Deserialize<PendingRequest>(File.ReadAllText(requestFile), Json) ?? throw new MalformedDataException(requestFile, -1, "request is null");
        }
        catch (JsonException ex)
        {
            throw new MalformedDataException(requestFile, -1, "request is not valid: " + ex.Message);
        }
        return new SupervisorRequest
        {
            State = new StateDirectory(dto.StateRoot),
            ConfigPath = dto.ConfigPath,
            ConfigText = dto.ConfigText,
            Variables = dto.Variables,
            Overrides = dto.Overrides,
            Paused = dto.Paused,
            RestoreFile = dto.RestoreFile,
            StatusFile = dto.StatusFile,
        };
    }

    /// <summary>How to run this program again: the apphost, or `dotnet domboot.dll`.</summary>
    public static IReadOnlyList<string> SelfCommand()
    {
        string process = Environment.ProcessPath ?? throw new UnavailableException("cannot tell where the domboot executable is");
        if (Path.GetFileNameWithoutExtension(process) == "dotnet")
        {
            var entry = System.Reflection.Assembly.GetEntryAssembly()?.Location;
            if (string.IsNullOrEmpty(entry)) throw new UnavailableException("cannot tell where domboot.dll is");
            return [process, entry];
        }
        return [process];
    }

    internal static JsonObject ToJson(DomainRecord r) => JsonSerializer.SerializeToNode(r, DomainRecord.Json)!.AsObject();
}
